//! The Errors list: the selected mapping's function errors among the
//! attempts the engine keeps (its newest 50), each error once, with how
//! many attempts failed with it and when the last did.

use super::{Entry, ListState, Listed, SortKey, list};
use crate::console::table::{Column, Model, ModelRow};
use crate::console::text::{age, error_summary};
use crate::console::view::{BatchKey, View};
use crate::engine::stats::AttemptOutcome;
use crate::mapping::Mapping;
use chrono::{DateTime, Utc};
use ratatui::style::{Color, Style};

/// One error, folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorGroup {
    /// `errorType: errorMessage`.
    pub summary: String,
    pub count: usize,
    pub last: DateTime<Utc>,
    /// The newest attempt that failed with it (its event is in the inspector).
    pub newest: BatchKey,
}

/// The errors of the kept attempts, newest first.
pub fn groups(view: &View, mapping: &Mapping) -> Vec<ErrorGroup> {
    let mut groups: Vec<ErrorGroup> = Vec::new();
    for row in &view.stats_of(mapping.uuid).recent {
        let AttemptOutcome::Failed(answer) = &row.outcome else {
            continue;
        };
        let summary = error_summary(answer);
        match groups.iter_mut().find(|g| g.summary == summary) {
            Some(g) => g.count += 1,
            // Rows come newest first: the first seen is the last to happen.
            None => groups.push(ErrorGroup {
                summary,
                count: 1,
                last: row.started,
                newest: BatchKey::of(row),
            }),
        }
    }
    groups
}

/// How many attempts the errors were counted among.
pub fn attempts_kept(view: &View, mapping: &Mapping) -> usize {
    view.stats_of(mapping.uuid).recent.len()
}

pub fn listed(view: &View, mapping: Option<&Mapping>, state: &ListState<String>) -> Listed<String> {
    let model = Model {
        columns: vec![
            // How often and how lately come first: a long error is cut
            // (Enter opens its batch, where it is whole) rather than hide
            // its count.
            Column::number("TIMES", 10),
            Column::number("LAST", 9),
            Column::fill("ERROR", 8),
        ],
        rows: Vec::new(),
    };
    let Some(m) = mapping else {
        return list(model, Vec::new(), state);
    };
    let entries = groups(view, m)
        .into_iter()
        .map(|g| {
            let seconds = (view.now - g.last).num_seconds().max(0);
            Entry {
                key: g.summary.clone(),
                haystack: g.summary.clone(),
                row: ModelRow::new(vec![
                    format!("×{}", g.count),
                    format!("{} ago", age(seconds)),
                    g.summary.clone(),
                ])
                .cell_style(2, Style::new().fg(Color::Red)),
                sort: vec![
                    SortKey::number(g.count),
                    SortKey::number(seconds),
                    SortKey::text(g.summary),
                ],
            }
        })
        .collect();
    list(model, entries, state)
}
