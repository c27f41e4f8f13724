//! The Mappings list: one row per mapping, its columns in the order they
//! are left out when the panel is narrow (lowest priority first): WINDOW,
//! BROKER, OWNER, FILTERED, IN FLIGHT, REASON, LAST RESULT, BATCH, MSG/S,
//! FAILED; STATE, QUEUE, FUNCTION, OK and DEAD always stay.

use super::{Entry, ListState, Listed, SortKey, list};
use crate::console::table::{Column, Model, ModelRow};
use crate::console::view::View;
use crate::mapping::{Mapping, State, StateTransitionReason};
use ratatui::style::{Color, Modifier, Style};
use uuid::Uuid;

pub fn state_color(m: &Mapping) -> Color {
    match m.state {
        State::Enabled if m.paused => Color::Yellow,
        State::Enabled => Color::Green,
        State::Disabled => Color::Red,
        _ => Color::Yellow,
    }
}

/// A window as people say it: 500ms, 1s, 5m.
fn window(m: &Mapping) -> String {
    let ms = m.spec.batching_window().as_millis();
    match ms {
        ms if ms % 60_000 == 0 && ms > 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 && ms > 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// The mappings the table shows, filtered by the find text, then sorted.
pub fn listed(view: &View, state: &ListState<Uuid>) -> Listed<Uuid> {
    let shared = view.instance.is_some();
    // The stop code says something only where it is not a user's doing.
    let stopped = view
        .mappings
        .iter()
        .any(|m| m.state_transition_reason != StateTransitionReason::UserInitiated);
    let mut columns = vec![Column::text("STATE", 20)];
    if shared {
        columns.push(Column::text("OWNER", 4));
    }
    if stopped {
        columns.push(Column::text("REASON", 9));
    }
    columns.extend([
        Column::text("BROKER", 3),
        Column::text("QUEUE", 19),
        Column::text("FUNCTION", 18),
        Column::number("BACKLOG", 15),
        Column::number("BATCH", 11),
        Column::text("WINDOW", 2),
        Column::number("MSG/S", 12),
        Column::number("IN FLIGHT", 6),
        Column::number("OK", 17),
        Column::number("FAILED", 13),
        Column::number("DEAD", 16),
        Column::number("FILTERED", 5),
        Column::fill("LAST RESULT", 10),
    ]);
    let model = Model {
        columns,
        rows: Vec::new(),
    };
    let entries = view
        .mappings
        .iter()
        .map(|m| entry(view, m, shared, stopped))
        .collect();
    list(model, entries, state)
}

fn entry(view: &View, m: &Mapping, shared: bool, stopped: bool) -> Entry<Uuid> {
    let stats = view.stats_of(m.uuid);
    let rate = view.rate_now(m.uuid);
    let broker = view.broker_name(m);
    let reason = match m.state_transition_reason {
        StateTransitionReason::UserInitiated => String::new(),
        other => other.to_string(),
    };
    let (backlog, waiting) = view.backlog(m);
    let mut cells = vec![m.shown_state()];
    let mut sort = vec![SortKey::text(m.shown_state())];
    if shared {
        let owner = view.owner(m.uuid);
        sort.push(SortKey::text(&owner));
        cells.push(owner);
    }
    if stopped {
        sort.push(SortKey::text(&reason));
        cells.push(reason.clone());
    }
    let numbers = [
        u64::from(m.spec.batch_size()),
        0, // WINDOW, below
        rate,
        stats.in_flight_batches,
        stats.succeeded,
        stats.failed_batches,
        stats.dead_lettered,
        stats.filtered,
    ];
    cells.extend([
        broker.clone(),
        m.spec.queue_label(),
        m.spec.function_name.clone(),
        backlog.clone(),
        numbers[0].to_string(),
        window(m),
        numbers[2].to_string(),
        numbers[3].to_string(),
        numbers[4].to_string(),
        numbers[5].to_string(),
        numbers[6].to_string(),
        numbers[7].to_string(),
        m.last_processing_result.clone(),
    ]);
    sort.extend([
        SortKey::text(&broker),
        SortKey::text(m.spec.queue()),
        SortKey::text(&m.spec.function_name),
        // An unknown backlog sorts below every known one.
        SortKey::number(waiting.map_or(0, |n| u128::from(n) + 1)),
        SortKey::number(numbers[0]),
        SortKey::number(m.spec.batching_window().as_millis()),
    ]);
    sort.extend(numbers[2..].iter().map(|n| SortKey::number(*n)));
    sort.push(SortKey::text(&m.last_processing_result));
    let haystack = [
        m.shown_state(),
        reason,
        broker,
        m.spec.queues.join(" "),
        m.spec.function_name.clone(),
        m.uuid.to_string(),
        m.last_processing_result.clone(),
    ]
    .join(" ");
    // A mapping that changed in the last two seconds stands out.
    let fresh = view
        .changed_at
        .get(&m.uuid)
        .is_some_and(|t| (view.now - *t).num_seconds() < 2);
    let mut row = ModelRow::new(cells).cell_style(0, Style::new().fg(state_color(m)));
    if fresh {
        row = row.style(Style::new().add_modifier(Modifier::BOLD));
    }
    if m.last_processing_result.starts_with("PROBLEM") {
        let last = row.cells.len() - 1;
        row = row.cell_style(last, Style::new().fg(Color::Red));
    }
    Entry {
        key: m.uuid,
        row,
        sort,
        haystack,
    }
}

/// The mapping a `:` command names: a queue, or a UUID or the start of
/// one, exactly or as the only one it begins.
pub fn resolve<'a>(view: &'a View, name: &str) -> Result<&'a Mapping, String> {
    let exact = view
        .mappings
        .iter()
        .find(|m| m.spec.queue() == name || m.uuid.to_string() == name);
    if let Some(m) = exact {
        return Ok(m);
    }
    let candidates = completions(view, name);
    match candidates.as_slice() {
        [] => Err(format!("no mapping `{name}`: give its queue or its UUID")),
        [one] => resolve(view, one),
        many => Err(format!("`{name}` could be {}: type more", many.join(", "))),
    }
}

/// Queues and UUIDs that begin with `prefix`, queues first.
pub fn completions(view: &View, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = view
        .mappings
        .iter()
        .map(|m| m.spec.queue().to_owned())
        .filter(|q| q.starts_with(prefix))
        .collect();
    out.sort();
    out.dedup();
    if !prefix.is_empty() {
        out.extend(
            view.mappings
                .iter()
                .map(|m| m.uuid.to_string())
                .filter(|u| u.starts_with(prefix)),
        );
    }
    out
}
