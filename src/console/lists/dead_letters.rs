//! The Dead letters list: each letter of the selected mapping in one line
//! (when it died, its message id, why in a word, the last error, its body),
//! and letters that died of the same thing folded into one row with their
//! count, which Enter unfolds.

use super::{ListState, Listed, SortKey};
use crate::console::table::{Column, Model, ModelRow};
use crate::console::text::{
    body_preview, error_summary, last_error_of, message_label, reason_word,
};
use crate::console::view::View;
use crate::mapping::Mapping;
use crate::store::DeadLetter;
use ratatui::style::{Color, Modifier, Style};
use std::collections::HashSet;

/// A row of the list: a folded group, or one letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LetterKey {
    /// Letters of one reason and error (the group's key).
    Group(String),
    Letter(i64),
}

/// How the list folds.
#[derive(Debug, Clone)]
pub struct Folding {
    /// Fold letters of the same reason and error (`g` switches it).
    pub grouped: bool,
    /// Groups shown unfolded.
    pub expanded: HashSet<String>,
}

impl Default for Folding {
    fn default() -> Self {
        Folding {
            grouped: true,
            expanded: HashSet::new(),
        }
    }
}

/// The last error a letter names, as `errorType: errorMessage`.
pub fn letter_error(letter: &DeadLetter) -> String {
    match (&letter.error, last_error_of(&letter.reason)) {
        (Some(raw), _) if !raw.trim().is_empty() => error_summary(raw),
        (_, Some(last)) => last.to_owned(),
        _ => String::new(),
    }
}

fn group_of(letter: &DeadLetter) -> String {
    format!("{}: {}", reason_word(&letter.reason), letter_error(letter))
}

fn columns() -> Vec<Column> {
    vec![
        Column::text("DIED", 10),
        Column::text("MESSAGE", 8),
        Column::text("WHY", 9),
        Column::number("TRIES", 3),
        Column::fill("ERROR", 7),
        Column::fill("BODY", 5),
    ]
}

/// One letter's cells, and what it sorts by.
fn cells(letter: &DeadLetter, indent: bool) -> (Vec<String>, Vec<SortKey>) {
    let mut why = reason_word(&letter.reason).to_owned();
    if !letter.moved {
        why.push_str(" (not moved yet)");
    }
    let label = message_label(letter.message_id.as_deref(), &letter.body);
    let error = letter_error(letter);
    let cells = vec![
        letter.at.format("%H:%M:%S").to_string(),
        if indent {
            format!("  {label}")
        } else {
            label.clone()
        },
        why.clone(),
        letter.attempts.to_string(),
        error.clone(),
        body_preview(&letter.body),
    ];
    let sort = vec![
        SortKey::number(letter.at.timestamp_millis()),
        SortKey::text(label),
        SortKey::text(why),
        SortKey::number(letter.attempts),
        SortKey::text(error),
        SortKey::text(body_preview(&letter.body)),
    ];
    (cells, sort)
}

/// The text `/` looks in: the reason, the error, the id and the body.
fn haystack(letter: &DeadLetter) -> String {
    format!(
        "{} {} {} {}{}",
        letter.reason,
        letter_error(letter),
        message_label(letter.message_id.as_deref(), &letter.body),
        body_preview(&letter.body),
        if letter.moved { "" } else { " not moved" }
    )
}

/// The selected mapping's dead letters (newest first), as the list shows them.
pub fn listed(
    view: &View,
    mapping: Option<&Mapping>,
    state: &ListState<LetterKey>,
    folding: &Folding,
) -> Listed<LetterKey> {
    let mut model = Model {
        columns: columns(),
        rows: Vec::new(),
    };
    let Some(m) = mapping else {
        return Listed {
            model,
            ..Listed::default()
        };
    };
    let mine: Vec<&DeadLetter> = view
        .dead_letters
        .iter()
        .filter(|d| d.mapping == m.uuid)
        .collect();
    let total = mine.len();
    let needle = state.find.to_lowercase();
    let found: Vec<&DeadLetter> = mine
        .into_iter()
        .filter(|d| needle.is_empty() || haystack(d).to_lowercase().contains(&needle))
        .collect();
    // Groups in the order of their newest letter; one letter alone is a group of one.
    let mut groups: Vec<(String, Vec<&DeadLetter>)> = Vec::new();
    for letter in found {
        let key = if folding.grouped {
            group_of(letter)
        } else {
            letter.id.to_string()
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(letter),
            None => groups.push((key, vec![letter])),
        }
    }
    if let Some(sort) = state.sort {
        groups.sort_by(|(_, a), (_, b)| {
            let key = |g: &[&DeadLetter]| cells(g[0], false).1.get(sort.column).cloned();
            let order = key(a).cmp(&key(b));
            if sort.descending {
                order.reverse()
            } else {
                order
            }
        });
    }
    let mut keys = Vec::new();
    for (key, members) in groups {
        if members.len() == 1 {
            let (row, _) = cells(members[0], false);
            keys.push(LetterKey::Letter(members[0].id));
            model.rows.push(styled(ModelRow::new(row), members[0]));
            continue;
        }
        let open = folding.expanded.contains(&key);
        let newest = members[0];
        let (mut row, _) = cells(newest, false);
        row[1] = format!("{} ×{}", if open { "▾" } else { "▸" }, members.len());
        row[5] = format!("{} … and {} more", row[5], members.len() - 1);
        keys.push(LetterKey::Group(key));
        model.rows.push(styled(
            ModelRow::new(row).style(Style::new().add_modifier(Modifier::BOLD)),
            newest,
        ));
        if open {
            for letter in members {
                let (row, _) = cells(letter, true);
                keys.push(LetterKey::Letter(letter.id));
                model.rows.push(styled(ModelRow::new(row), letter));
            }
        }
    }
    Listed { model, keys, total }
}

fn styled(row: ModelRow, letter: &DeadLetter) -> ModelRow {
    let row = row.cell_style(4, Style::new().fg(Color::Red));
    if letter.moved {
        row
    } else {
        row.cell_style(2, Style::new().fg(Color::Yellow))
    }
}

/// The letters a row stands for (a group's, or the one).
pub fn letters_of<'a>(view: &'a View, mapping: &Mapping, key: &LetterKey) -> Vec<&'a DeadLetter> {
    view.dead_letters
        .iter()
        .filter(|d| d.mapping == mapping.uuid)
        .filter(|d| match key {
            LetterKey::Letter(id) => d.id == *id,
            LetterKey::Group(g) => group_of(d) == *g,
        })
        .collect()
}
