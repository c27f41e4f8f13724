//! `:`: a command line. Commands are typed values ([`Command`]); Tab
//! completes a command's name, a mapping (its queue, or its UUID from the
//! first characters), or a column to sort by.

use crate::console::widgets::panel;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui_textarea::{CursorMove, TextArea};

/// What a command line asks for. A mapping is named as the operator typed
/// it (a queue, or a UUID or its start); None is the selected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Enable(Option<String>),
    Disable(Option<String>),
    Pause(Option<String>),
    Resume(Option<String>),
    Step(Option<String>),
    Delete(Option<String>),
    BatchSize(u32, Option<String>),
    /// Select a mapping.
    Go(String),
    Replay,
    Republish,
    /// Every dead letter the Dead letters panel lists (after `/`).
    Bulk(crate::engine::bulk::BulkAction),
    /// The listed dead letters to a JSON Lines file (a name, or one made up).
    Export(Option<String>),
    /// Sort the focused list by a column (by its name), or its own order.
    Sort(Option<String>),
    Zoom,
    Messages,
    Dump(String),
    Help,
    Quit,
}

/// The commands: name, arguments, what it does. The help and the
/// completion are made from this.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "enable",
        "[MAPPING]",
        "enable the mapping (the selected one, or the one named)",
    ),
    (
        "disable",
        "[MAPPING]",
        "disable the mapping (no question asked)",
    ),
    (
        "delete",
        "[MAPPING]",
        "delete the mapping (no question asked)",
    ),
    (
        "pause",
        "[MAPPING]",
        "take no new batch; the broker keeps the messages",
    ),
    ("resume", "[MAPPING]", "take batches again"),
    (
        "step",
        "[MAPPING]",
        "let exactly one batch through, then paused",
    ),
    ("batch", "N [MAPPING]", "set BatchSize"),
    ("go", "MAPPING", "select the mapping"),
    (
        "replay",
        "",
        "invoke the function with the selected dead letter's record",
    ),
    (
        "republish",
        "",
        "put the selected dead letter back on its queue",
    ),
    (
        "replay-all",
        "",
        "invoke the function with each dead letter listed (after /), one by one",
    ),
    (
        "republish-all",
        "",
        "put each dead letter listed (after /) back on its queue",
    ),
    (
        "delete-letters",
        "",
        "delete the dead letters listed (after /) from the journal",
    ),
    (
        "export",
        "[FILE]",
        "write the dead letters listed (after /) to a JSON Lines file (W)",
    ),
    (
        "sort",
        "[COLUMN]",
        "sort the focused list by a column (none: its own order)",
    ),
    (
        "zoom",
        "",
        "the focused panel on the whole screen, and back",
    ),
    (
        "messages",
        "",
        "every message the title bar showed, in full",
    ),
    ("dump", "FILE", "write the screen to FILE, as text"),
    (
        "help",
        "",
        "the keys of the focused panel, and these commands",
    ),
    ("q", "", "quit"),
];

/// A mapping is named by the argument at this position of the command.
fn mapping_at(command: &str) -> Option<usize> {
    match command {
        "enable" | "disable" | "delete" | "go" => Some(1),
        "batch" => Some(2),
        _ => None,
    }
}

pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let arg = |i: usize| words.get(i).map(|w| (*w).to_owned());
    let usage = |name: &str| {
        let (_, args, _) = COMMANDS.iter().find(|(n, _, _)| *n == name).unwrap();
        format!("usage: {name} {args}")
    };
    Ok(Some(match words.as_slice() {
        [] => return Ok(None),
        ["q" | "quit"] => Command::Quit,
        ["enable"] | ["enable", _] => Command::Enable(arg(1)),
        ["disable"] | ["disable", _] => Command::Disable(arg(1)),
        ["delete"] | ["delete", _] => Command::Delete(arg(1)),
        ["pause"] | ["pause", _] => Command::Pause(arg(1)),
        ["resume"] | ["resume", _] => Command::Resume(arg(1)),
        ["step"] | ["step", _] => Command::Step(arg(1)),
        ["batch", n] | ["batch", n, _] => {
            if let Some(e) = crate::console::text::batch_size_error(n) {
                return Err(e);
            }
            Command::BatchSize(n.parse().map_err(|_| usage("batch"))?, arg(2))
        }
        ["go", m] => Command::Go((*m).to_owned()),
        ["replay"] => Command::Replay,
        ["replay-all"] => Command::Bulk(crate::engine::bulk::BulkAction::Replay),
        ["republish-all"] => Command::Bulk(crate::engine::bulk::BulkAction::Republish),
        ["delete-letters"] => Command::Bulk(crate::engine::bulk::BulkAction::Delete),
        ["export"] => Command::Export(None),
        ["export", file] => Command::Export(Some((*file).to_owned())),
        ["republish"] => Command::Republish,
        ["sort"] => Command::Sort(None),
        ["sort", column @ ..] => Command::Sort(Some(column.join(" "))),
        ["zoom"] => Command::Zoom,
        ["messages"] => Command::Messages,
        ["dump", file] => Command::Dump((*file).to_owned()),
        ["help"] => Command::Help,
        [name, ..] if COMMANDS.iter().any(|(n, _, _)| n == name) => return Err(usage(name)),
        _ => {
            let names: Vec<&str> = COMMANDS.iter().map(|(n, _, _)| *n).collect();
            return Err(format!(
                "unknown command `{line}`: {} (Tab completes, :help explains)",
                names.join(", ")
            ));
        }
    }))
}

/// The longest text every candidate begins with.
fn common_prefix(candidates: &[String]) -> String {
    let Some(first) = candidates.first() else {
        return String::new();
    };
    let mut end = first.len();
    for c in &candidates[1..] {
        end = end.min(
            first
                .char_indices()
                .zip(c.chars())
                .take_while(|((_, a), b)| a == b)
                .last()
                .map_or(0, |((i, a), _)| i + a.len_utf8()),
        );
    }
    first[..end].to_owned()
}

/// Completes the last word of `line`: the new line, and the candidates
/// when more than one fits. `mappings` gives the queues and UUIDs that
/// begin with a prefix; `columns` the focused list's columns.
pub fn complete(
    line: &str,
    mappings: impl Fn(&str) -> Vec<String>,
    columns: &[&str],
) -> (String, Vec<String>) {
    let ends_in_space = line.ends_with(' ');
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let last = if ends_in_space || words.is_empty() {
        ""
    } else {
        words.pop().unwrap_or_default()
    };
    let position = words.len();
    let candidates: Vec<String> = if position == 0 {
        COMMANDS
            .iter()
            .map(|(n, _, _)| (*n).to_owned())
            .filter(|n| n.starts_with(last))
            .collect()
    } else if mapping_at(words[0]) == Some(position) {
        mappings(last)
    } else if words[0] == "sort" && position == 1 {
        columns
            .iter()
            .filter(|c| c.to_lowercase().starts_with(&last.to_lowercase()))
            .map(|c| (*c).to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let mut head = words.join(" ");
    if !head.is_empty() {
        head.push(' ');
    }
    match candidates.as_slice() {
        [] => (line.to_owned(), Vec::new()),
        [one] => (format!("{head}{one} "), Vec::new()),
        many => {
            let prefix = common_prefix(many);
            let word = if prefix.len() > last.len() {
                prefix
            } else {
                last.to_owned()
            };
            (format!("{head}{word}"), many.to_vec())
        }
    }
}

#[derive(Default)]
pub struct CommandLine {
    pub input: TextArea<'static>,
    pub error: Option<String>,
    /// What Tab found when more than one thing fits.
    pub candidates: Vec<String>,
}

impl CommandLine {
    pub fn text(&self) -> String {
        self.input.lines().join("")
    }

    pub fn key(&mut self, key: crossterm::event::KeyEvent) {
        self.input.input(key);
        self.error = None;
        self.candidates.clear();
    }

    /// Replaces the text (a completion), the cursor at its end.
    pub fn set(&mut self, text: String, candidates: Vec<String>) {
        self.input = TextArea::new(vec![text]);
        self.input.move_cursor(CursorMove::End);
        self.candidates = candidates;
        self.error = None;
    }
}

/// The command line on the line above the hint bar; above it, the
/// candidates of a completion or the error.
pub fn draw(frame: &mut Frame, line: Rect, command: &CommandLine) {
    frame.render_widget(Clear, line);
    let [mark, field] =
        Layout::horizontal([Constraint::Length(1), Constraint::Fill(1)]).areas(line);
    frame.render_widget(Span::raw(":"), mark);
    frame.render_widget(&command.input, field);
    let (text, style) = match (&command.error, command.candidates.is_empty()) {
        (Some(e), _) => (e.clone(), Style::new().fg(Color::Red)),
        (None, false) => (command.candidates.join("  "), Style::new().fg(Color::Cyan)),
        (None, true) => return,
    };
    let rows = (text.chars().count() as u16 / line.width.max(1) + 1).min(4);
    let above = Rect {
        y: line.y.saturating_sub(rows + 2),
        height: rows + 2,
        ..line
    };
    frame.render_widget(Clear, above);
    frame.render_widget(
        Paragraph::new(Line::from(text).style(style))
            .wrap(Wrap { trim: true })
            .block(panel("", false)),
        above,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(prefix: &str) -> Vec<String> {
        ["demo-orders", "demo-payments", "shipments"]
            .iter()
            .filter(|q| q.starts_with(prefix))
            .map(|q| (*q).to_owned())
            .collect()
    }

    #[test]
    fn tab_completes_commands_then_mappings_then_columns() {
        assert_eq!(complete("ena", queues, &[]), ("enable ".into(), vec![]));
        let (line, many) = complete("d", queues, &[]);
        assert_eq!(
            (line.as_str(), many),
            (
                "d",
                vec![
                    "disable".into(),
                    "delete".into(),
                    "delete-letters".into(),
                    "dump".into()
                ]
            )
        );
        let (line, many) = complete("disable de", queues, &[]);
        assert_eq!(line, "disable demo-");
        assert_eq!(many.len(), 2);
        assert_eq!(
            complete("disable demo-o", queues, &[]).0,
            "disable demo-orders "
        );
        assert_eq!(complete("batch 5 sh", queues, &[]).0, "batch 5 shipments ");
        assert_eq!(
            complete("batch sh", queues, &[]).0,
            "batch sh",
            "N comes first"
        );
        assert_eq!(
            complete("sort de", queues, &["STATE", "DEAD"]).0,
            "sort DEAD "
        );
    }

    #[test]
    fn commands_parse_to_what_they_ask() {
        assert_eq!(parse("batch 50"), Ok(Some(Command::BatchSize(50, None))));
        assert_eq!(
            parse("disable demo-orders"),
            Ok(Some(Command::Disable(Some("demo-orders".into()))))
        );
        assert_eq!(
            parse("dump /tmp/screen.txt"),
            Ok(Some(Command::Dump("/tmp/screen.txt".into())))
        );
        assert!(parse("batch 99999").unwrap_err().contains("out of range"));
        assert_eq!(parse("dump").unwrap_err(), "usage: dump FILE");
        assert!(
            parse("frobnicate")
                .unwrap_err()
                .starts_with("unknown command")
        );
        assert_eq!(parse("  "), Ok(None));
    }
}
