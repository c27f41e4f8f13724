//! A bulk action under way (`:replay-all`, `:republish-all`,
//! `:delete-letters`): how many of how many are done, as a bar. The
//! summary (how many done, how many failed and why) comes as a message
//! when it ends, and closes the bar. Esc hides the bar; the action goes on.

use crate::console::widgets::{centred, panel};
use crate::engine::bulk::BulkAction;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::{Clear, Gauge};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub action: BulkAction,
    pub done: usize,
    pub total: usize,
}

pub fn draw(frame: &mut Frame, page: Rect, at: &Progress) {
    let area = centred(page, 64, 3);
    let verb = match at.action {
        BulkAction::Replay => "Replaying",
        BulkAction::Republish => "Republishing",
        BulkAction::Delete => "Deleting",
    };
    let ratio = match at.total {
        0 => 0.0,
        total => at.done as f64 / total as f64,
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Gauge::default()
            .block(panel(format!("{verb} dead letters · Esc hides"), true))
            .gauge_style(Style::new().fg(Color::Green))
            .ratio(ratio.clamp(0.0, 1.0))
            .label(format!("{} of {}", at.done, at.total)),
        area,
    );
}
