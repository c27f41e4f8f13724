//! `/`: the focused list shows only the rows that hold the text typed,
//! as it is typed.

use crate::console::lists::Focus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::Clear;
use ratatui_textarea::{CursorMove, TextArea};

pub struct Find {
    pub input: TextArea<'static>,
    /// The list the text filters.
    pub target: Focus,
}

impl Find {
    /// Starts from the list's find text, the cursor after it.
    pub fn new(target: Focus, text: &str) -> Find {
        let mut input = TextArea::new(vec![text.to_owned()]);
        input.move_cursor(CursorMove::End);
        Find { input, target }
    }

    pub fn text(&self) -> String {
        self.input.lines().join("")
    }
}

/// The prompt on the line above the hint bar.
pub fn draw(frame: &mut Frame, line: Rect, find: &Find) {
    frame.render_widget(Clear, line);
    let [mark, field] =
        Layout::horizontal([Constraint::Length(1), Constraint::Fill(1)]).areas(line);
    frame.render_widget(Span::raw("/"), mark);
    frame.render_widget(&find.input, field);
}
