//! The mappings panel: one row per mapping.

use super::{focused, panel};
use crate::console::app::{App, Focus};
use crate::mapping::State;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Cell, Row, Table, TableState};

pub fn state_color(state: State) -> Color {
    match state {
        State::Enabled => Color::Green,
        State::Disabled => Color::Red,
        _ => Color::Yellow,
    }
}

/// A mapping's owner among the instances on a shared store: the short id
/// `mqtrigger instances` shows, `*` for the instance this console drives.
fn owner(app: &App, mapping: uuid::Uuid) -> String {
    match app.stats.owners.get(&mapping) {
        Some(owner) if app.instance == Some(*owner) => {
            format!("{}*", crate::api::client::short_id(*owner))
        }
        Some(owner) => crate::api::client::short_id(*owner),
        None => "none".into(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let shared = app.instance.is_some();
    let mut header = vec![
        "STATE",
        "REASON",
        "BROKER",
        "QUEUE",
        "FUNCTION",
        "BATCH",
        "WINDOW",
        "MSG/S",
        "IN FLIGHT",
        "OK",
        "FAILED",
        "DEAD",
        "FILTERED",
        "LAST RESULT",
    ];
    if shared {
        header.insert(1, "OWNER");
    }
    let header = Row::new(header).style(Style::new().add_modifier(Modifier::BOLD));
    let visible = app.visible();
    let mut title = format!("Mappings (by {})", app.sort.label());
    if let Some(criteria) = app
        .selected_mapping()
        .and_then(|m| m.spec.filter_criteria.as_ref())
    {
        let patterns: Vec<&str> = criteria["Filters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["Pattern"].as_str())
            .collect();
        title.push_str(&format!(" · filter: {}", patterns.join(" OR ")));
    }
    if !app.filter.is_empty() {
        title.push_str(&format!(
            " /{} ({} of {})",
            app.filter,
            visible.len(),
            app.mappings.len()
        ));
    }
    let rows = visible.iter().map(|m| {
        let stats = app.stats_of(m.uuid);
        // A mapping that changed in the last two seconds stands out.
        let fresh = app
            .changed_at
            .get(&m.uuid)
            .is_some_and(|t| (app.now - *t).num_seconds() < 2);
        let mark = if fresh {
            Style::new().add_modifier(Modifier::BOLD).fg(Color::Yellow)
        } else {
            Style::new()
        };
        let rate = app
            .rates
            .get(&m.uuid)
            .and_then(|r| r.per_second.back().copied())
            .unwrap_or(0);
        let window = m.spec.batching_window();
        let mut cells = vec![
            Cell::from(m.state.to_string()).style(Style::new().fg(state_color(m.state))),
            Cell::from(m.state_transition_reason.to_string()).style(mark),
            Cell::from(
                app.choices
                    .config
                    .broker(&m.spec.event_source_arn)
                    .map(|b| b.name.clone())
                    .unwrap_or_default(),
            ),
            Cell::from(m.spec.queue().to_owned()),
            Cell::from(m.spec.function_name.clone()),
            Cell::from(m.spec.batch_size().to_string()).style(mark),
            Cell::from(format!("{}ms", window.as_millis())),
            Cell::from(rate.to_string()),
            Cell::from(stats.in_flight_batches.to_string()),
            Cell::from(stats.succeeded.to_string()),
            Cell::from(stats.failed_batches.to_string()),
            Cell::from(stats.dead_lettered.to_string()),
            Cell::from(stats.filtered.to_string()),
            Cell::from(m.last_processing_result.clone()).style(mark),
        ];
        if shared {
            cells.insert(1, Cell::from(owner(app, m.uuid)));
        }
        Row::new(cells)
    });
    // Fixed widths but the last: an under-determined layout can be solved
    // differently from one run to the next.
    let mut widths = vec![
        Constraint::Length(9),
        Constraint::Length(22),
        Constraint::Length(12),
        Constraint::Length(24),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    if shared {
        widths.insert(1, Constraint::Length(9));
    }
    let table = Table::new(rows, widths)
        .header(header)
        .block(panel(&title, focused(app, Focus::Mappings)))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default()
        .with_offset(super::mappings_offset(area, app.selected))
        .with_selected((!visible.is_empty()).then_some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}
