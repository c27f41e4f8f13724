//! `?`: every key of the place the operator is, then every panel's keys,
//! and the commands. Made from the key tables, so it is never out of date.

use super::command::COMMANDS;
use crate::console::keys::{Context, GLOBAL, bindings};
use crate::console::widgets::{heading, panel};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help {
    /// Where `?` was pressed.
    pub context: Context,
    pub scroll: u16,
    /// What the panel shows that needs a word, said first (why the
    /// selected mapping's BACKLOG is `—`).
    pub notes: Vec<String>,
}

fn row(keys: &str, what: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!("{keys:>10}  "),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(what.to_owned()),
    ])
}

/// The help's lines.
pub fn lines(help: &Help) -> Vec<Line<'static>> {
    let own: Vec<_> = bindings(help.context)
        .into_iter()
        .filter(|b| !GLOBAL.iter().any(|g| std::ptr::eq(g, *b)))
        .collect();
    let title = match help.context {
        Context::Panel(focus) => format!("{} panel", focus.title()),
        other => format!("{other:?}"),
    };
    let mut out = vec![heading(&title)];
    for note in &help.notes {
        out.push(Line::from(note.clone()));
    }
    if !help.notes.is_empty() {
        out.push(Line::from(""));
    }
    out.extend(own.iter().map(|b| row(b.label, b.help)));
    if matches!(help.context, Context::Panel(_)) {
        out.push(Line::from(""));
        out.push(heading("Every panel"));
        out.extend(GLOBAL.iter().map(|b| row(b.label, b.help)));
        out.push(row("mouse", "the wheel moves, a click selects a mapping"));
        out.push(Line::from(""));
        out.push(heading("Commands (:)"));
        out.extend(
            COMMANDS
                .iter()
                .map(|(name, args, what)| row(format!("{name} {args}").trim(), what)),
        );
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, help: &Help) {
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines(help))
            .wrap(Wrap { trim: false })
            .scroll((help.scroll, 0))
            .block(panel("Keys", true)),
        area,
    );
}
