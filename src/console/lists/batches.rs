//! The Batches list: the selected mapping's attempts, newest first (the
//! engine keeps the newest 50). A batch's retries share its BATCH id, so
//! the rows of one batch read as its story.

use super::{Entry, ListState, Listed, SortKey, list};
use crate::console::table::{Column, Model, ModelRow};
use crate::console::text::{age, error_summary, human_bytes};
use crate::console::view::{BatchKey, View};
use crate::engine::stats::AttemptOutcome;
use crate::mapping::Mapping;
use ratatui::style::{Color, Style};

pub fn listed(
    view: &View,
    mapping: Option<&Mapping>,
    state: &ListState<BatchKey>,
) -> Listed<BatchKey> {
    let model = Model {
        columns: vec![
            Column::text("BATCH", 9),
            Column::number("TRY", 8),
            Column::number("AGE", 7),
            Column::number("MSGS", 6),
            Column::number("BYTES", 3),
            Column::text("CLOSED", 2),
            Column::number("TOOK", 5),
            // "ok", "invoking" or "✗ Type…": a narrow panel still tells a
            // failed batch from a good one.
            Column::fill("OUTCOME", 4).at_least(8),
        ],
        rows: Vec::new(),
    };
    let Some(m) = mapping else {
        return list(model, Vec::new(), state);
    };
    let entries = view
        .stats_of(m.uuid)
        .recent
        .iter()
        .map(|b| {
            let seconds = (view.now - b.started).num_seconds().max(0);
            let (outcome, style) = match &b.outcome {
                AttemptOutcome::InFlight => ("invoking".to_owned(), Style::new().fg(Color::Yellow)),
                AttemptOutcome::Ok => ("ok".to_owned(), Style::new().fg(Color::Green)),
                AttemptOutcome::Failed(e) => (
                    format!("✗ {}", error_summary(e)),
                    Style::new().fg(Color::Red),
                ),
            };
            let latency = b.latency_ms.map(|l| format!("{l}ms")).unwrap_or_default();
            let cells = vec![
                format!("#{}", b.batch.0),
                b.attempt.to_string(),
                age(seconds),
                b.messages.to_string(),
                human_bytes(b.bytes),
                b.closed_by.label().to_owned(),
                latency,
                outcome.clone(),
            ];
            Entry {
                key: BatchKey::of(b),
                haystack: format!(
                    "#{} {} {}{}",
                    b.batch.0,
                    b.closed_by.label(),
                    if matches!(b.outcome, AttemptOutcome::Failed(_)) {
                        "failed "
                    } else {
                        ""
                    },
                    outcome
                ),
                row: ModelRow::new(cells).cell_style(7, style),
                sort: vec![
                    SortKey::number(b.batch.0),
                    SortKey::number(b.attempt),
                    SortKey::number(seconds),
                    SortKey::number(b.messages),
                    SortKey::number(b.bytes),
                    SortKey::text(b.closed_by.label()),
                    SortKey::number(b.latency_ms.unwrap_or(0)),
                    SortKey::text(outcome),
                ],
            }
        })
        .collect();
    list(model, entries, state)
}
