//! Drawing: a pure function of [`App`]. The title bar, the panels where
//! [`crate::console::layout`] puts them, the hints of where the keys go,
//! and the open popup (each popup draws itself).

mod flow;
mod panels;

use super::app::App;
use super::keys::bindings;
use super::layout::{Areas, Content, areas, row_at};
use super::lists::Focus;
use super::popup::{self, Mode};
use super::widgets::{centred, hints};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// The screen's parts for this app.
pub fn layout(screen: Rect, app: &App) -> Areas {
    let (batches, errors, letters) = (app.batch_list(), app.error_list(), app.letter_list());
    // The stop code's sentence, wrapped at about the Errors panel's width.
    let stop = app
        .selected_mapping()
        .and_then(|m| {
            m.state_detail
                .as_ref()
                .map(|d| format!("{}: {d}", m.state_transition_reason))
        })
        .map_or(0, |text| usize::from(stop_rows(&text, screen.width / 2)));
    let right = letters
        .model
        .natural_width()
        .max(errors.model.natural_width());
    let right_least = letters.model.least_width().max(errors.model.least_width());
    let content = Content {
        mappings: app.mapping_list().keys.len(),
        errors: errors.keys.len(),
        letters: letters.keys.len(),
        stop,
        widths: (batches.model.natural_width(), right),
        least: (batches.model.least_width(), right_least),
    };
    areas(screen, content, app.zoom.then_some(app.focus))
}

/// The rows a stop code's sentence takes at `width` (borders and a
/// little slack for word wrapping left out), at most 4.
pub fn stop_rows(text: &str, width: u16) -> u16 {
    let usable = usize::from(width.saturating_sub(8)).max(10);
    (text.chars().count().div_ceil(usable) as u16).clamp(1, 4)
}

/// The mappings-table row under a screen position (for mouse clicks).
pub fn mapping_row_at(screen: Rect, app: &App, column: u16, row: u16) -> Option<usize> {
    let table = layout(screen, app).mappings?;
    row_at(table, app.selected_index(), column, row)
}

pub fn draw(frame: &mut Frame, app: &App) {
    let a = layout(frame.area(), app);
    draw_title(frame, a.title, app);
    if let Some(area) = a.mappings {
        panels::mappings(frame, area, app);
    }
    if let Some(area) = a.flow {
        flow::draw(frame, area, app);
    }
    if let Some(area) = a.batches {
        panels::batches(frame, area, app);
    }
    if let Some(area) = a.errors {
        panels::errors(frame, area, app);
    }
    if let Some(area) = a.dead_letters {
        panels::dead_letters(frame, area, app);
    }
    frame.render_widget(hints(&bindings(app.context()), a.hints.width), a.hints);
    let view = &app.view;
    let page = Rect {
        y: a.title.bottom(),
        height: a.hints.y.saturating_sub(a.title.bottom()),
        ..frame.area()
    };
    match &app.mode {
        Mode::Normal => {}
        Mode::Help(help) => popup::help::draw(frame, centred(page, 96, page.height), help),
        Mode::Messages(scroll) => popup::messages::draw(frame, page, &app.messages, *scroll),
        Mode::Confirm(effect) => popup::confirm::draw(frame, effect, view),
        Mode::BatchPrompt(prompt) => popup::batch_size::draw(frame, prompt),
        Mode::Form(form) => popup::form::draw(frame, form),
        Mode::FilterEditor(editor) => {
            popup::filter_editor::draw(frame, page, view, app.selected_mapping(), editor)
        }
        Mode::Find(find) => popup::find::draw(frame, a.prompt, find),
        Mode::Command(line) => popup::command::draw(frame, a.prompt, line),
        Mode::Inspect(open) => popup::inspector::draw_letter(frame, page, view, open),
        Mode::Timeline(open) => popup::timeline::draw(frame, page, open),
        Mode::Progress(at) => popup::progress::draw(frame, page, at),
        Mode::InspectBatch(open) => popup::inspector::draw_batch(frame, page, view, open),
    }
}

fn draw_title(frame: &mut Frame, area: Rect, app: &App) {
    let view = &app.view;
    let mut spans = vec![
        Span::styled(
            " mqtrigger ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(
            " {} mapping{}",
            view.mappings.len(),
            if view.mappings.len() == 1 { "" } else { "s" }
        )),
    ];
    if let Some(endpoint) = &view.endpoint {
        spans.push(Span::raw(format!(" · on {endpoint}")));
    }
    if view.readonly {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            "READ-ONLY",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    if let Some(why) = &view.lost {
        // What is shown is the last picture: say so before anything else.
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            format!(
                "LOST, reconnecting: {}",
                crate::error_text::first_line(why, 120)
            ),
            Style::new().fg(Color::White).bg(Color::Red),
        ));
    }
    if app.zoom {
        spans.push(Span::raw(format!(
            "  [zoom: {}, z back]",
            app.focus.title()
        )));
    }
    let clock = view.now.format("%H:%M:%S").to_string();
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let room = usize::from(area.width).saturating_sub(used + clock.len() + 4);
    if let Some(toast) = &app.toast {
        let text = crate::console::text::one_line(toast);
        // Whole, or cut where the screen ends, saying where the rest is.
        const MORE: &str = " … (:messages)";
        let shown = if text.chars().count() > room {
            let keep: String = text
                .chars()
                .take(room.saturating_sub(MORE.chars().count()))
                .collect();
            format!("{}{MORE}", keep.trim_end())
        } else {
            text
        };
        let failed = app.messages.last().is_some_and(|m| m.failed);
        let style = Style::new().fg(if failed { Color::Red } else { Color::Yellow });
        spans.push(Span::raw("  "));
        spans.push(Span::styled(shown, style));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let pad = usize::from(area.width).saturating_sub(used + clock.len() + 1);
    spans.push(Span::raw(" ".repeat(pad)));
    spans.push(Span::styled(clock, Style::new().fg(Color::DarkGray)));
    frame.render_widget(Line::from(spans), area);
}

/// Whether the panel has the keys (it is focused and no popup is open).
pub fn focused(app: &App, focus: Focus) -> bool {
    matches!(app.mode, Mode::Normal) && app.focus == focus
}
