//! The console's small drawing pieces, shared by the panels and popups.

use super::keys::Binding;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

/// A bordered panel; the focused one stands out.
pub fn panel(title: impl Into<Line<'static>>, focused: bool) -> Block<'static> {
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

/// A rectangle of at most `width` × `height`, centred in `area`.
pub fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// The hint bar: `key what` for each binding with a hint, as many as fit
/// in `width`, whole, in the order given; `? help` always has its place.
pub fn hints(bindings: &[&Binding], width: u16) -> Line<'static> {
    let key = Style::new().fg(Color::Black).bg(Color::Gray);
    let what = Style::new().fg(Color::Gray);
    let label = |b: &Binding| -> String {
        if b.label == "+ -" {
            "+/-".to_owned()
        } else {
            b.label.split(' ').next().unwrap_or(b.label).to_owned()
        }
    };
    let cost = |b: &Binding| label(b).chars().count() + b.hint.chars().count() + 3;
    let shown: Vec<&Binding> = bindings
        .iter()
        .copied()
        .filter(|b| !b.hint.is_empty())
        .collect();
    let help = shown.iter().find(|b| b.label == "?").map_or(0, |b| cost(b));
    let mut room = usize::from(width).saturating_sub(help);
    let mut spans = Vec::new();
    for b in shown {
        let c = cost(b);
        if b.label == "?" {
            room += help;
        } else if c > room {
            continue;
        }
        if c > room {
            continue;
        }
        spans.push(Span::styled(format!(" {} ", label(b)), key));
        spans.push(Span::styled(format!("{} ", b.hint), what));
        room -= c;
    }
    Line::from(spans)
}

/// Bold text for headings inside a popup.
pub fn heading(text: &str) -> Line<'static> {
    Line::from(Span::styled(
        text.to_owned(),
        Style::new().add_modifier(Modifier::BOLD),
    ))
}
