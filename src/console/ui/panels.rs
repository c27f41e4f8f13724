//! The list panels: Mappings, Batches, Errors, Dead letters. Each draws
//! its list's table, fitted to its width, with a title that says what it
//! shows (how many, sorted how, found by what).

use super::focused;
use crate::console::app::App;
use crate::console::layout::table_offset;
use crate::console::lists::{Focus, ListState, Listed};
use crate::console::table::Model;
use crate::console::widgets::panel;
use crate::mapping::StateTransitionReason;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, TableState, Wrap};

/// The title: the panel's name, its count, then the sort and the find text.
fn title<K>(name: &str, counted: String, listed: &Listed<K>, state: &ListState<K>) -> String {
    let mut title = format!("{name} {counted}");
    let said = state.describe(&listed.model, listed.keys.len(), listed.total);
    if !said.is_empty() {
        title.push_str(" · ");
        title.push_str(&said);
    }
    title
}

/// A list's table in `area` (inside `block`), the selection highlighted
/// and scrolled into view, or `empty` when there are no rows.
fn table(
    frame: &mut Frame,
    area: Rect,
    model: &Model,
    selected: Option<usize>,
    highlight: bool,
    empty: &str,
) {
    if model.rows.is_empty() {
        frame.render_widget(
            Line::from(empty.to_owned()).style(Style::new().fg(Color::DarkGray)),
            area,
        );
        return;
    }
    let table = model
        .table(usize::from(area.width))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let selected = selected.filter(|_| highlight);
    // The same offset a click computes (the panel's border included).
    let outer = Rect {
        y: area.y.saturating_sub(1),
        height: area.height + 2,
        ..area
    };
    let mut state = TableState::default()
        .with_offset(table_offset(outer, selected.unwrap_or(0)))
        .with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

pub fn mappings(frame: &mut Frame, area: Rect, app: &App) {
    let listed = app.mapping_list();
    let n = app.view.mappings.len();
    let name = title("Mappings", format!("({n})"), &listed, &app.mappings);
    let block = panel(name, focused(app, Focus::Mappings));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    table(
        frame,
        inner,
        &listed.model,
        listed.index(&app.mappings.selected),
        true,
        if n == 0 {
            "no mappings yet: n adds one"
        } else {
            "no mapping holds that text (Esc clears)"
        },
    );
}

pub fn batches(frame: &mut Frame, area: Rect, app: &App) {
    let listed = app.batch_list();
    let queue = app
        .selected_mapping()
        .map(|m| m.spec.queue().to_owned())
        .unwrap_or_default();
    let name = title(
        "Batches",
        format!("of {queue} ({})", listed.total),
        &listed,
        &app.batches,
    );
    let block = panel(name, focused(app, Focus::Batches));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    table(
        frame,
        inner,
        &listed.model,
        listed.index(&app.batches.selected),
        focused(app, Focus::Batches),
        "no batches yet",
    );
}

pub fn errors(frame: &mut Frame, area: Rect, app: &App) {
    let listed = app.error_list();
    let kept = app
        .selected_mapping()
        .map(|m| crate::console::lists::errors::attempts_kept(&app.view, m))
        .unwrap_or(0);
    let counted = match kept {
        0 => "(no attempts yet)".to_owned(),
        1 => "in the last attempt".to_owned(),
        n => format!("in the last {n} attempts"),
    };
    let name = title("Errors", counted, &listed, &app.errors);
    let block = panel(name, focused(app, Focus::Errors));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let stop = app.selected_mapping().and_then(|m| {
        (m.state_transition_reason != StateTransitionReason::UserInitiated).then(|| {
            format!(
                "{}: {}",
                m.state_transition_reason,
                m.state_detail.as_deref().unwrap_or_default()
            )
        })
    });
    let rest = match stop {
        Some(stop) => {
            let rows = super::stop_rows(&stop, inner.width);
            let [stop_area, rest] =
                Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas(inner);
            frame.render_widget(
                Paragraph::new(stop)
                    .style(Style::new().fg(Color::Red))
                    .wrap(Wrap { trim: true }),
                stop_area,
            );
            rest
        }
        None => inner,
    };
    table(
        frame,
        rest,
        &listed.model,
        listed.index(&app.errors.selected),
        focused(app, Focus::Errors),
        "no function errors",
    );
}

pub fn dead_letters(frame: &mut Frame, area: Rect, app: &App) {
    let listed = app.letter_list();
    let folded = if app.folding.grouped {
        ", folded by error"
    } else {
        ""
    };
    let name = title(
        "Dead letters",
        format!("({}{folded})", listed.total),
        &listed,
        &app.dead_letters,
    );
    let block = panel(name, focused(app, Focus::DeadLetters));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    table(
        frame,
        inner,
        &listed.model,
        listed.index(&app.dead_letters.selected),
        focused(app, Focus::DeadLetters),
        "no dead letters",
    );
}
