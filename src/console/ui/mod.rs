//! Drawing: a pure function of [`App`].

mod details;
mod inspector;
mod mappings;

pub use inspector::inspected_batch_lines;

use super::app::{App, Focus, Mode};
use super::keys::KEYMAP;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

fn areas(area: Rect) -> [Rect; 4] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(45),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// The mappings-table row under a screen position (for mouse clicks), with
/// the table scrolled as [`mappings_offset`] scrolls it.
pub fn mapping_row_at(screen: Rect, selected: usize, column: u16, row: u16) -> Option<usize> {
    let table = areas(screen)[1];
    // Below the top border and the header, inside the side borders.
    let first = table.y + 2;
    let inside =
        column > table.x && column + 1 < table.right() && row >= first && row + 1 < table.bottom();
    inside.then(|| mappings_offset(table, selected) + usize::from(row - first))
}

/// The first mappings row shown: the table scrolls just enough to show the
/// selected row. Drawing and clicks both use this, so a click lands on the
/// row under the pointer.
pub fn mappings_offset(table: Rect, selected: usize) -> usize {
    // Borders and the header take three lines.
    let shown = usize::from(table.height.saturating_sub(3)).max(1);
    selected.saturating_sub(shown - 1)
}

pub fn draw(frame: &mut Frame, app: &App) {
    let [title, table, lower, footer] = areas(frame.area());
    draw_title(frame, title, app);
    mappings::draw(frame, table, app);
    let [batches, errors] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(lower);
    details::draw_batches(frame, batches, app);
    details::draw_errors(frame, errors, app);
    draw_footer(frame, footer, app);
    match &app.mode {
        Mode::Normal => {}
        Mode::Help => draw_help(frame),
        Mode::Confirm(effect) => {
            use super::action::Effect;
            let text = match effect {
                Effect::Disable(_) => {
                    "Disable this mapping? Its consumer stops; messages stay in the queue. (y/n)"
                }
                Effect::Delete(_) => {
                    "Delete this mapping? Its consumer stops; messages stay in the queue. (y/n)"
                }
                Effect::Replay(..) => {
                    "Invoke the function again with this dead letter's record? The broker is not touched. (y/n)"
                }
                Effect::Republish(..) => "Publish this dead letter back to its source queue? (y/n)",
                Effect::ReplayEvent(..) => {
                    "Invoke the function again with this batch's event? The broker is not touched. (y/n)"
                }
                Effect::Enable(_)
                | Effect::SetBatchSize(..)
                | Effect::Create(_)
                | Effect::Save(..)
                | Effect::SetFilter(..) => "Go ahead? (y/n)",
            };
            let area = popup(frame.area(), 60, 5);
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: true })
                    .block(panel("Confirm", true)),
                area,
            );
        }
        Mode::BatchPrompt { input, error } => {
            let area = popup(frame.area(), 60, 6);
            frame.render_widget(Clear, area);
            let block = panel("BatchSize (1-10000), Enter to apply, Esc to cancel", true);
            let inner = block.inner(area);
            frame.render_widget(block, area);
            let [field, message] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            frame.render_widget(&**input, field);
            if let Some(error) = error {
                frame.render_widget(
                    Paragraph::new(error.as_str()).style(Style::new().fg(Color::Red)),
                    message,
                );
            }
        }
        Mode::Form(form) => draw_form(frame, form),
        Mode::FilterEditor { input, error } => {
            draw_filter_editor(frame, app, input, error.as_deref())
        }
        Mode::Filter { input } => draw_line(frame, "/", input, None),
        Mode::Command { input, error } => draw_line(frame, ":", input, error.as_deref()),
        Mode::Inspect(id) => inspector::draw(frame, frame.area(), app, *id),
        Mode::InspectBatch(inspected) => inspector::draw_batch(frame, frame.area(), app, inspected),
    }
}

/// A one-line prompt over the footer, with an error above it.
fn draw_line(
    frame: &mut Frame,
    prefix: &str,
    input: &ratatui_textarea::TextArea<'static>,
    error: Option<&str>,
) {
    let area = frame.area();
    let line = Rect {
        y: area.bottom().saturating_sub(1),
        height: 1,
        ..area
    };
    frame.render_widget(Clear, line);
    let [mark, field] =
        Layout::horizontal([Constraint::Length(1), Constraint::Fill(1)]).areas(line);
    frame.render_widget(Span::raw(prefix), mark);
    frame.render_widget(input, field);
    if let Some(error) = error {
        let above = Rect {
            y: line.y.saturating_sub(1),
            ..line
        };
        frame.render_widget(Clear, above);
        frame.render_widget(Line::from(error).style(Style::new().fg(Color::Red)), above);
    }
}

/// The FilterCriteria editor and, beside it, what the pattern would do to
/// the messages this mapping saw lately and to its dead letters.
fn draw_filter_editor(
    frame: &mut Frame,
    app: &App,
    input: &ratatui_textarea::TextArea<'static>,
    error: Option<&str>,
) {
    let area = popup(frame.area(), frame.area().width, frame.area().height);
    frame.render_widget(Clear, area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let block = panel(
        "FilterCriteria: one pattern or a list; Ctrl-s applies, Esc discards",
        true,
    );
    let inner = block.inner(left);
    frame.render_widget(block, left);
    let [text, message] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(2)]).areas(inner);
    frame.render_widget(input, text);
    let (status, style) = match error {
        Some(e) => (e.to_owned(), Style::new().fg(Color::Red)),
        None => ("valid".to_owned(), Style::new().fg(Color::Green)),
    };
    frame.render_widget(
        Paragraph::new(status)
            .style(style)
            .wrap(Wrap { trim: true }),
        message,
    );

    let criteria = crate::console::app::criteria_from_text(&input.lines().join("\n"));
    let filters = criteria.ok().flatten().and_then(|c| {
        let patterns: Vec<String> = c["Filters"]
            .as_array()?
            .iter()
            .filter_map(|f| f["Pattern"].as_str().map(str::to_owned))
            .collect();
        crate::filter::Filters::parse(&patterns).ok()
    });
    let lines: Vec<Line> = crate::console::app::sample_bodies(app)
        .into_iter()
        .map(|(what, body)| {
            let verdict = match &filters {
                None if error.is_some() => Span::raw("  ?  "),
                None => Span::styled("pass ", Style::new().fg(Color::Green)),
                Some(f) => match f.matching(&body) {
                    Some(i) => {
                        Span::styled(format!("pass {}", i + 1), Style::new().fg(Color::Green))
                    }
                    None => Span::styled("drop ", Style::new().fg(Color::Red)),
                },
            };
            let text = String::from_utf8_lossy(&body).replace('\n', " ");
            Line::from(vec![verdict, Span::raw(format!("  {what}: {text}"))])
        })
        .collect();
    let empty = lines.is_empty();
    let dry_run = Paragraph::new(lines).block(panel("Dry run (pass N: matched filter N)", false));
    frame.render_widget(dry_run, right);
    if empty {
        let inner = Rect {
            x: right.x + 1,
            y: right.y + 1,
            width: right.width.saturating_sub(2),
            height: 1,
        };
        frame.render_widget(
            Line::from("no recent messages or dead letters to try")
                .style(Style::new().fg(Color::DarkGray)),
            inner,
        );
    }
}

fn draw_form(frame: &mut Frame, form: &crate::console::form::MappingForm) {
    use crate::console::form::LABELS;
    // Below the fields, the focused field's error in full: beside a field
    // there is room for a short sentence only.
    const FULL_ERROR_ROWS: u16 = 3;
    let area = popup(
        frame.area(),
        100,
        LABELS.len() as u16 * 2 + 2 + FULL_ERROR_ROWS,
    );
    frame.render_widget(Clear, area);
    let block = panel("New mapping: Tab/↑↓ move, Enter creates, Esc cancels", true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [fields, full_error] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(FULL_ERROR_ROWS)]).areas(inner);
    if let Some(e) = form.focused_error() {
        frame.render_widget(
            Paragraph::new(e)
                .style(Style::new().fg(Color::Red))
                .wrap(Wrap { trim: true }),
            full_error,
        );
    }
    let rows = Layout::vertical(vec![Constraint::Length(2); LABELS.len()]).split(fields);
    for (i, label) in LABELS.iter().enumerate() {
        let [name, value, error] = Layout::horizontal([
            Constraint::Length(19),
            Constraint::Length(40),
            Constraint::Fill(1),
        ])
        .areas(rows[i]);
        let style = if i == form.focused {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        frame.render_widget(Span::styled(format!("{label:>17}: "), style), name);
        frame.render_widget(&form.fields[i], value);
        if let Some(e) = &form.errors[i] {
            frame.render_widget(
                Paragraph::new(e.as_str())
                    .style(Style::new().fg(Color::Red))
                    .wrap(Wrap { trim: true }),
                error,
            );
        }
    }
}

fn draw_title(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = vec![
        Span::styled(
            " mqtrigger ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(" {} mapping(s)", app.mappings.len())),
    ];
    if let Some(endpoint) = &app.endpoint {
        spans.push(Span::raw(format!("  on {endpoint}")));
    }
    if app.readonly {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            "READ-ONLY",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    if let Some(why) = &app.lost {
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
    if let Some(toast) = &app.toast {
        spans.push(Span::raw("   "));
        spans.push(Span::styled(toast.as_str(), Style::new().fg(Color::Yellow)));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let hints = match app.mode {
        Mode::Normal => {
            "e enable  d disable  +/- batch  b batch size  Tab panel  Enter inspect  ? help  q quit"
        }
        _ => "Esc back",
    };
    frame.render_widget(
        Line::from(hints).style(Style::new().fg(Color::DarkGray)),
        area,
    );
}

fn draw_help(frame: &mut Frame) {
    let lines: Vec<Line> = KEYMAP
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{keys:>10}  "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    let area = popup(frame.area(), 76, KEYMAP.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(panel("Keys", true)), area);
}

/// A bordered panel; the focused one stands out.
pub fn panel(title: &str, focused: bool) -> Block<'_> {
    let style = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new()
    };
    Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(style)
        .title(title)
}

pub fn focused(app: &App, focus: Focus) -> bool {
    matches!(app.mode, Mode::Normal) && app.focus == focus
}

fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}
