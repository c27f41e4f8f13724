//! `f`: the FilterCriteria editor and, beside it, what the pattern would do
//! to the messages the mapping saw lately and to its dead letters.

use super::Reaction;
use crate::console::action::{Action, Effect};
use crate::console::text::{criteria_from_text, patterns_text};
use crate::console::view::View;
use crate::console::widgets::panel;
use crate::filter::Filters;
use crate::mapping::{FilterCriteria, Mapping};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui_textarea::TextArea;

pub struct FilterEditor {
    pub input: TextArea<'static>,
    /// Why the text is not FilterCriteria yet; None when it is.
    pub error: Option<String>,
    /// What the text says, read once per change (not per frame): the
    /// criteria to apply and the matcher the dry run uses; None when the
    /// text is empty (no filter) or wrong.
    read: Option<(FilterCriteria, Filters)>,
}

impl FilterEditor {
    /// Opens on the mapping's patterns, pretty.
    pub fn new(mapping: &Mapping) -> FilterEditor {
        let text = mapping
            .spec
            .filter_criteria
            .as_ref()
            .filter(|_| matches!(mapping.spec.filters(), Ok(Some(_))))
            .map(patterns_text)
            .unwrap_or_default();
        let mut editor = FilterEditor {
            input: TextArea::new(text.lines().map(str::to_owned).collect()),
            error: None,
            read: None,
        };
        editor.check();
        editor
    }

    fn text(&self) -> String {
        self.input.lines().join("\n")
    }

    fn check(&mut self) {
        match criteria_from_text(&self.text()) {
            Ok(read) => {
                self.error = None;
                self.read = read;
            }
            Err(e) => {
                self.error = Some(e);
                self.read = None;
            }
        }
    }

    pub fn on(&mut self, action: Action, selected: Option<uuid::Uuid>) -> Reaction {
        match (action, selected) {
            (Action::PromptKey(key), _) => {
                self.input.input(key);
                self.check();
                Reaction::Stay
            }
            (Action::Apply, Some(uuid)) => match self.criteria() {
                Ok(criteria) => Reaction::Run(Effect::SetFilter(uuid, criteria)),
                Err(_) => Reaction::Stay,
            },
            _ => Reaction::Stay,
        }
    }

    /// The FilterCriteria to apply (None removes the filter), or why not.
    pub fn criteria(&self) -> Result<Option<FilterCriteria>, String> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(self.read.as_ref().map(|(criteria, _)| criteria.clone())),
        }
    }
}

/// Bodies the dry run tries a filter on: the messages of the newest
/// batches, then the dead letters.
pub fn sample_bodies(view: &View, mapping: &Mapping) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (_, event) in view.events.get(&mapping.uuid).into_iter().flatten() {
        for body in crate::event::bodies(event) {
            out.push(("message".to_owned(), body));
        }
    }
    for d in view
        .dead_letters
        .iter()
        .filter(|d| d.mapping == mapping.uuid)
    {
        out.push((format!("dead letter {}", d.id), d.body.clone()));
    }
    out
}

pub fn draw(
    frame: &mut Frame,
    area: Rect,
    view: &View,
    mapping: Option<&Mapping>,
    editor: &FilterEditor,
) {
    frame.render_widget(Clear, area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let block = panel("FilterCriteria: one pattern or a list", true);
    let inner = block.inner(left);
    frame.render_widget(block, left);
    let [text, message] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(2)]).areas(inner);
    frame.render_widget(&editor.input, text);
    let (status, style) = match &editor.error {
        Some(e) => (e.clone(), Style::new().fg(Color::Red)),
        None => ("valid".to_owned(), Style::new().fg(Color::Green)),
    };
    frame.render_widget(
        Paragraph::new(status)
            .style(style)
            .wrap(Wrap { trim: true }),
        message,
    );
    let samples = mapping.map(|m| sample_bodies(view, m)).unwrap_or_default();
    let lines: Vec<Line> = samples
        .into_iter()
        .map(|(what, body)| {
            let verdict = match editor.read.as_ref().map(|(_, filters)| filters) {
                None if editor.error.is_some() => Span::raw("  ?  "),
                None => Span::styled("pass ", Style::new().fg(Color::Green)),
                Some(f) => match f.matching(&body) {
                    Some(i) => {
                        Span::styled(format!("pass {}", i + 1), Style::new().fg(Color::Green))
                    }
                    None => Span::styled("drop ", Style::new().fg(Color::Red)),
                },
            };
            let text = String::from_utf8_lossy(&body).replace('\n', " ");
            Line::from(vec![verdict, Span::raw(format!("  {what}: {text}"))])
        })
        .collect();
    let lines = if lines.is_empty() {
        vec![
            Line::from("no recent messages or dead letters to try")
                .style(Style::new().fg(Color::DarkGray)),
        ]
    } else {
        lines
    };
    frame.render_widget(
        Paragraph::new(lines).block(panel("Dry run (pass N: matched filter N)", false)),
        right,
    );
}
