//! The selected mapping's live batches, and its errors: the stop code with
//! what to fix, and the dead letters with their reasons.

use super::{focused, panel};
use crate::console::app::{App, Focus, Outcome};
use crate::mapping::StateTransitionReason;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{
    List, ListItem, ListState, Paragraph, Row, Sparkline, Table, TableState, Wrap,
};

pub fn draw_batches(frame: &mut Frame, area: Rect, app: &App) {
    let block = panel("Batches", focused(app, Focus::Batches));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [rate_area, table_area] =
        Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(inner);
    let rate: Vec<u64> = app
        .selected_mapping()
        .and_then(|m| app.rates.get(&m.uuid))
        .map(|r| r.per_second.iter().copied().collect())
        .unwrap_or_default();
    let [label, spark] =
        Layout::horizontal([Constraint::Length(8), Constraint::Fill(1)]).areas(rate_area);
    frame.render_widget(Paragraph::new("msg/s\n60s"), label);
    frame.render_widget(
        Sparkline::default()
            .data(&rate)
            .style(Style::new().fg(Color::Cyan)),
        spark,
    );
    let rows = app.selected_batches().iter().map(|b| {
        let age = (app.now - b.started).num_seconds().max(0);
        let (outcome, style) = match &b.outcome {
            Outcome::InFlight => ("in flight".to_owned(), Style::new().fg(Color::Yellow)),
            Outcome::Ok => ("ok".to_owned(), Style::new().fg(Color::Green)),
            Outcome::Failed(e) => (
                format!("failed: {}", e.lines().next().unwrap_or_default()),
                Style::new().fg(Color::Red),
            ),
        };
        Row::new(vec![
            b.messages.to_string(),
            human_bytes(b.bytes),
            format!("{age}s"),
            b.closed_by.label().to_owned(),
            b.attempt.to_string(),
            b.latency_ms.map(|l| format!("{l}ms")).unwrap_or_default(),
            outcome,
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(3),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "MSGS", "BYTES", "AGE", "CLOSED", "TRY", "LATENCY", "OUTCOME",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(
        (focused(app, Focus::Batches) && !app.selected_batches().is_empty())
            .then(|| app.batch_index()),
    );
    frame.render_stateful_widget(table, table_area, &mut state);
}

pub fn draw_errors(frame: &mut Frame, area: Rect, app: &App) {
    let block = panel("Errors and dead letters", focused(app, Focus::DeadLetters));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(m) = app.selected_mapping() else {
        return;
    };
    let stop = (m.state_transition_reason != StateTransitionReason::UserInitiated).then(|| {
        format!(
            "{}: {}",
            m.state_transition_reason,
            m.state_detail.as_deref().unwrap_or_default()
        )
    });
    let stop_height = if stop.is_some() { 3 } else { 0 };
    let stats = app.stats_of(m.uuid);
    let error_lines = stats.errors.len().min(2) as u16;
    let [stop_area, counts_area, errors_area, list_area] = Layout::vertical([
        Constraint::Length(stop_height),
        Constraint::Length(1),
        Constraint::Length(error_lines),
        Constraint::Min(1),
    ])
    .areas(inner);
    // One bin per redelivery the engine allows, zeros included.
    let counts: Vec<String> = (0..=app.max_redeliveries as usize)
        .map(|i| format!("{i}:{}", stats.by_redeliveries.get(i).copied().unwrap_or(0)))
        .collect();
    frame.render_widget(
        Line::from(format!("acked after redeliveries  {}", counts.join(" "))),
        counts_area,
    );
    let errors: Vec<Line> = stats
        .errors
        .iter()
        .take(2)
        .map(|e| {
            Line::from(format!("error: {}", e.lines().next().unwrap_or_default()))
                .style(Style::new().fg(Color::Red))
        })
        .collect();
    frame.render_widget(Paragraph::new(errors), errors_area);
    if let Some(stop) = stop {
        frame.render_widget(
            Paragraph::new(stop)
                .style(Style::new().fg(Color::Red))
                .wrap(Wrap { trim: true }),
            stop_area,
        );
    }
    let letters = app.selected_dead_letters();
    if letters.is_empty() {
        frame.render_widget(
            Line::from("no dead letters").style(Style::new().fg(Color::DarkGray)),
            list_area,
        );
        return;
    }
    let items = letters.iter().map(|d| {
        let pending = if d.moved { "" } else { "[not moved yet] " };
        ListItem::new(format!(
            "{} {} ×{} {pending}{}",
            d.at.format("%H:%M:%S"),
            d.message_id.as_deref().unwrap_or("-"),
            d.attempts,
            d.reason
        ))
    });
    let list = List::new(items.collect::<Vec<_>>())
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state =
        ListState::default().with_selected(Some(app.dead_letter_index().min(letters.len() - 1)));
    frame.render_stateful_widget(list, list_area, &mut state);
}

pub fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1}MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1}KB", n as f64 / 1024.0),
        n => format!("{n}B"),
    }
}
