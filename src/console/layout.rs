//! Where each panel goes, by what it holds: the Mappings panel as tall as
//! its rows (at least 3, at most 40% of the screen, scrolling beyond), the
//! Flow charts a third of the rest, then the Batches beside the Errors and
//! Dead letters (each side as wide as what it holds allows). The Errors and
//! the Dead letters share their side by their rows: when both fit, the
//! Errors are as tall as their rows and the Dead letters take the rest;
//! when they do not, each gets a share of the height in proportion to its
//! rows, so neither cuts rows while the other shows empty ones. `z` gives
//! the focused panel the whole screen. Drawing and mouse clicks both ask
//! this.

use super::lists::Focus;
use ratatui::layout::{Constraint, Layout, Rect};

/// The rows of content each panel has, which its height follows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Content {
    pub mappings: usize,
    pub errors: usize,
    /// The rows of the Dead letters panel (folded rows count once).
    pub letters: usize,
    /// Rows the Errors panel gives to the stop code's sentence.
    pub stop: usize,
    /// How wide the Batches, and the Errors and Dead letters, would be with
    /// nothing cut: the screen is shared between them in that proportion.
    pub widths: (usize, usize),
    /// How wide each side must be to show its tables' important columns
    /// and their sentence ([`Model::least_width`]): a side under that takes
    /// it from the other, when the other keeps its own.
    ///
    /// [`Model::least_width`]: super::table::Model::least_width
    pub least: (usize, usize),
}

/// The screen's parts. A panel not shown (another one is zoomed) is None.
#[derive(Debug, Clone, Copy, Default)]
pub struct Areas {
    pub title: Rect,
    pub mappings: Option<Rect>,
    pub flow: Option<Rect>,
    pub batches: Option<Rect>,
    pub errors: Option<Rect>,
    pub dead_letters: Option<Rect>,
    /// The line a `/` or `:` prompt takes: just above the hints.
    pub prompt: Rect,
    pub hints: Rect,
}

impl Areas {
    pub fn of(&self, focus: Focus) -> Option<Rect> {
        match focus {
            Focus::Mappings => self.mappings,
            Focus::Flow => self.flow,
            Focus::Batches => self.batches,
            Focus::Errors => self.errors,
            Focus::DeadLetters => self.dead_letters,
        }
    }
}

/// Borders and a header row take this many lines of a table's panel.
const TABLE_CHROME: u16 = 3;

pub fn areas(screen: Rect, content: Content, zoom: Option<Focus>) -> Areas {
    let [title, body, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(screen);
    let prompt = Rect {
        y: hints.y.saturating_sub(1),
        height: 1,
        ..hints
    };
    let mut areas = Areas {
        title,
        prompt,
        hints,
        ..Areas::default()
    };
    if let Some(focus) = zoom {
        match focus {
            Focus::Mappings => areas.mappings = Some(body),
            Focus::Flow => areas.flow = Some(body),
            Focus::Batches => areas.batches = Some(body),
            Focus::Errors => areas.errors = Some(body),
            Focus::DeadLetters => areas.dead_letters = Some(body),
        }
        return areas;
    }
    let most = (body.height * 2 / 5).max(TABLE_CHROME + 3);
    let mappings = (content.mappings.max(3) as u16 + TABLE_CHROME).min(most);
    let [top, lower] =
        Layout::vertical([Constraint::Length(mappings), Constraint::Fill(1)]).areas(body);
    let flow = (lower.height / 3).clamp(4, 12);
    let [flow_area, rest] =
        Layout::vertical([Constraint::Length(flow), Constraint::Fill(1)]).areas(lower);
    // Each side by what it holds, neither under a third of the screen.
    let (l, r) = content.widths;
    let share = (l * 100)
        .checked_div(l + r)
        .map_or(50, |s| s.clamp(35, 65) as u16);
    let left = side_width(rest.width, share, content.least);
    let [left, right] =
        Layout::horizontal([Constraint::Length(left), Constraint::Fill(1)]).areas(rest);
    let errors = errors_height(right.height, &content);
    let [errors_area, letters] =
        Layout::vertical([Constraint::Length(errors), Constraint::Fill(1)]).areas(right);
    areas.mappings = Some(top);
    areas.flow = Some(flow_area);
    areas.batches = Some(left);
    areas.errors = Some(errors_area);
    areas.dead_letters = Some(letters);
    areas
}

/// The Batches side's width out of `total` columns: `share` percent of
/// them, unless that leaves either side under its least (borders added),
/// and there is room for both.
fn side_width(total: u16, share: u16, (least_left, least_right): (usize, usize)) -> u16 {
    let proportional = (u32::from(total) * u32::from(share) / 100) as u16;
    let need = |least: usize| u16::try_from(least).unwrap_or(u16::MAX).saturating_add(2);
    let (left, right) = (need(least_left), need(least_right));
    if left.saturating_add(right) > total {
        return proportional;
    }
    proportional.clamp(left, total - right)
}

/// The Errors panel's height on a side of `height` rows that it shares with
/// the Dead letters below it.
fn errors_height(height: u16, content: &Content) -> u16 {
    let errors = (content.errors.max(1) + content.stop) as u16 + TABLE_CHROME;
    let letters = content.letters.max(1) as u16 + TABLE_CHROME;
    if errors + letters <= height {
        return errors;
    }
    // Both cut: each its share of the rows, and at least one row each.
    let least = TABLE_CHROME + 1;
    let share = u32::from(height) * u32::from(errors) / u32::from(errors + letters);
    let most = height.saturating_sub(least).max(least);
    (share as u16).clamp(least.min(errors), most)
}

/// The first row a table shows: it scrolls just enough to show the
/// selected row. Drawing and clicks both use this, so a click lands on the
/// row under the pointer.
pub fn table_offset(area: Rect, selected: usize) -> usize {
    let shown = usize::from(area.height.saturating_sub(TABLE_CHROME)).max(1);
    selected.saturating_sub(shown - 1)
}

/// The table row under a screen position, if there is one: below the top
/// border and the header, inside the side borders.
pub fn row_at(area: Rect, selected: usize, column: u16, row: u16) -> Option<usize> {
    let first = area.y + 2;
    let inside =
        column > area.x && column + 1 < area.right() && row >= first && row + 1 < area.bottom();
    inside.then(|| table_offset(area, selected) + usize::from(row - first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(w: u16, h: u16) -> Rect {
        Rect::new(0, 0, w, h)
    }

    #[test]
    fn the_mappings_take_their_rows_and_at_most_two_fifths() {
        let three = areas(
            screen(200, 50),
            Content {
                mappings: 3,
                errors: 2,
                ..Content::default()
            },
            None,
        );
        assert_eq!(
            three.mappings.unwrap().height,
            6,
            "3 rows, a header, 2 borders"
        );
        let many = areas(
            screen(200, 50),
            Content {
                mappings: 300,
                ..Content::default()
            },
            None,
        );
        assert_eq!(many.mappings.unwrap().height, 19, "2/5 of 48");
        let errors = three.errors.unwrap();
        assert_eq!(errors.height, 5, "2 errors, a header, 2 borders");
        let letters = three.dead_letters.unwrap();
        assert_eq!(letters.y, errors.bottom());
        assert_eq!(letters.bottom(), three.hints.y, "down to the hints");
    }

    #[test]
    fn at_80_by_24_every_panel_still_has_rows() {
        let a = areas(
            screen(80, 24),
            Content {
                mappings: 3,
                errors: 2,
                ..Content::default()
            },
            None,
        );
        for (name, area) in [
            ("mappings", a.mappings),
            ("batches", a.batches),
            ("errors", a.errors),
            ("dead letters", a.dead_letters),
        ] {
            assert!(area.unwrap().height > TABLE_CHROME, "{name}: {area:?}");
        }
        assert!(a.flow.unwrap().height >= 4);
    }

    #[test]
    fn errors_and_dead_letters_share_their_side_by_their_rows() {
        let content = |errors, letters| Content {
            mappings: 3,
            errors,
            letters,
            ..Content::default()
        };
        // 80×24: three errors and two dead letters fit on their side.
        let a = areas(screen(80, 24), content(3, 2), None);
        let (errors, letters) = (a.errors.unwrap(), a.dead_letters.unwrap());
        assert_eq!(letters.bottom(), a.hints.y, "down to the hints");
        assert_eq!(errors.height, 6, "3 errors, a header, 2 borders");
        assert!(letters.height >= 5, "2 dead letters: {letters:?}");
        // Many of both: each gets a share, neither less than one row.
        let a = areas(screen(80, 24), content(30, 10), None);
        let (errors, letters) = (a.errors.unwrap(), a.dead_letters.unwrap());
        assert!(errors.height > letters.height, "{errors:?} {letters:?}");
        assert!(letters.height > TABLE_CHROME, "{letters:?}");
        // Many dead letters, one error: the error is whole.
        let a = areas(screen(80, 24), content(1, 50), None);
        assert_eq!(a.errors.unwrap().height, 4);
    }

    #[test]
    fn a_side_under_its_least_takes_columns_from_the_other() {
        let content = |least| Content {
            mappings: 3,
            widths: (70, 130),
            least,
            ..Content::default()
        };
        // 35% of 80 is 28: the Batches need 32 and 2 borders.
        let a = areas(screen(80, 24), content((32, 40)), None);
        assert_eq!(a.batches.unwrap().width, 34);
        // The other side keeps its own least.
        let a = areas(screen(80, 24), content((32, 50)), None);
        assert_eq!(a.batches.unwrap().width, 28);
        assert_eq!(a.errors.unwrap().width, 52);
        // No room for both: the proportion stands.
        let a = areas(screen(80, 24), content((50, 50)), None);
        assert_eq!(a.batches.unwrap().width, 28);
    }

    #[test]
    fn zoom_gives_one_panel_the_screen() {
        let a = areas(
            screen(120, 40),
            Content::default(),
            Some(Focus::DeadLetters),
        );
        assert_eq!(a.dead_letters, Some(Rect::new(0, 1, 120, 38)));
        assert!(a.mappings.is_none() && a.batches.is_none());
    }
}
