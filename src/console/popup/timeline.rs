//! A message's history (`t`, or Enter in an inspector): when it arrived
//! (and whether redelivered), each attempt of its batch (when, which try,
//! how long, what the function said), and its end (acked, filtered, or
//! dead-lettered where). The engine keeps it (`engine::history`); this
//! draws what the driver fetched when the key was pressed.

use crate::console::text::error_summary;
use crate::console::widgets::panel;
use crate::engine::history::{Timeline, What};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

/// An open history.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineView {
    pub timeline: Timeline,
    /// The mapping's queue, for the title.
    pub queue: String,
    pub scroll: u16,
}

/// One step in words, and the colour that says whether it went well.
fn said(what: &What) -> (String, Color) {
    match what {
        What::Arrived { redelivered: false } => ("arrived".into(), Color::Reset),
        What::Arrived { redelivered: true } => {
            ("arrived again, marked redelivered".into(), Color::Yellow)
        }
        What::Sent { attempt, messages } => (
            format!("try {attempt} sent to the function ({messages} message(s) in the batch)"),
            Color::Reset,
        ),
        What::Succeeded {
            attempt,
            latency_ms,
        } => (
            format!("try {attempt} succeeded in {latency_ms} ms"),
            Color::Green,
        ),
        What::Failed {
            attempt,
            latency_ms,
            error,
        } => (
            format!(
                "try {attempt} failed after {latency_ms} ms: {}",
                error_summary(error)
            ),
            Color::Red,
        ),
        What::Acked => ("acked: done".into(), Color::Green),
        What::Filtered => (
            "matched no filter: acked without invoking the function".into(),
            Color::Cyan,
        ),
        What::DeadLettered {
            destination,
            reason,
        } => (
            format!("dead-lettered to {destination}: {reason}"),
            Color::Red,
        ),
        What::SettleFailed { reason } => (
            format!("the broker did not take its settling ({reason}); it delivers it again"),
            Color::Yellow,
        ),
    }
}

/// The history's lines: a step a line, its time to the millisecond and
/// its batch.
pub fn lines(t: &Timeline) -> Vec<Line<'static>> {
    let mut out: Vec<Line> = t
        .steps
        .iter()
        .map(|step| {
            let (text, color) = said(&step.what);
            let batch = step
                .batch
                .map(|b| format!("{b:<6}"))
                .unwrap_or_else(|| " ".repeat(6));
            Line::from(vec![
                Span::styled(
                    format!("{} ", step.at.format("%H:%M:%S%.3f")),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::raw(format!("{batch} ")),
                Span::styled(text, Style::new().fg(color)),
            ])
        })
        .collect();
    if t.end().is_none() {
        out.push(Line::from(Span::styled(
            "(not ended yet: the broker still holds it)",
            Style::new().fg(Color::DarkGray),
        )));
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, open: &TimelineView) {
    frame.render_widget(Clear, area);
    let title = format!("History of {} in {}", open.timeline.id, open.queue);
    frame.render_widget(
        Paragraph::new(lines(&open.timeline))
            .wrap(Wrap { trim: false })
            .scroll((open.scroll, 0))
            .block(panel(title, true)),
        area,
    );
}
