//! `:messages`: every message the title bar showed, whole, newest first.

use crate::console::widgets::panel;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

/// Messages kept for `:messages`.
pub const KEPT: usize = 200;

/// One message, as the title bar showed it and in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub at: DateTime<Utc>,
    pub text: String,
    pub failed: bool,
}

pub fn draw(frame: &mut Frame, area: Rect, messages: &[Message], scroll: u16) {
    let lines: Vec<Line> = if messages.is_empty() {
        vec![Line::from("no messages yet")]
    } else {
        messages
            .iter()
            .rev()
            .map(|m| Line::from(format!("{}  {}", m.at.format("%H:%M:%S"), m.text)))
            .collect()
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(panel(format!("Messages ({})", messages.len()), true)),
        area,
    );
}
