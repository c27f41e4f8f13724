//! `b`: type an exact BatchSize, checked as you type by Lambda's rule.

use super::Reaction;
use crate::console::action::{Action, Effect};
use crate::console::text::batch_size_error;
use crate::console::widgets::{centred, panel};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Clear, Paragraph};
use ratatui_textarea::TextArea;

pub struct BatchPrompt {
    pub input: TextArea<'static>,
    pub error: Option<String>,
}

impl BatchPrompt {
    /// Empty, the current size as a hint: typed digits are the new size,
    /// never appended to the old one (7, then 0, is not 70).
    pub fn new(current: u32) -> BatchPrompt {
        let mut input = TextArea::default();
        input.set_placeholder_text(format!("{current} now; type the new BatchSize"));
        BatchPrompt { input, error: None }
    }

    pub fn on(&mut self, action: Action, selected: Option<uuid::Uuid>) -> Reaction {
        match (action, self.confirm_on_enter(), selected) {
            (Action::PromptKey(key), _, _) => {
                self.key(key);
                Reaction::Stay
            }
            (Action::Confirm, Some(n), Some(uuid)) => Reaction::Run(Effect::SetBatchSize(uuid, n)),
            _ => Reaction::Stay,
        }
    }

    /// The size typed, if it is one (nothing is changed).
    fn confirm_on_enter(&self) -> Option<u32> {
        let text = self.text();
        batch_size_error(&text)
            .is_none()
            .then(|| text.trim().parse().ok())
            .flatten()
    }

    pub fn key(&mut self, key: crossterm::event::KeyEvent) {
        self.input.input(key);
        self.error = batch_size_error(&self.text());
    }

    fn text(&self) -> String {
        self.input.lines().join("")
    }
}

pub fn draw(frame: &mut Frame, prompt: &BatchPrompt) {
    let area = centred(frame.area(), 60, 6);
    frame.render_widget(Clear, area);
    let block = panel("BatchSize (1-10000)", true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [field, message] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    frame.render_widget(&prompt.input, field);
    if let Some(error) = &prompt.error {
        frame.render_widget(
            Paragraph::new(error.as_str()).style(Style::new().fg(Color::Red)),
            message,
        );
    }
}
