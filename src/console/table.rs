//! A table that fits its panel: each column as wide as its widest cell (a
//! number or a name is never cut), columns that do not fit left out in the
//! order their priorities say, and the fill columns (sentences: an outcome,
//! a last result, an error) take the width left; only they are cut, with `…`.

use super::text::fit;
use ratatui::layout::Constraint;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row, Table};

/// One column of a [`Model`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// Right-aligned (numbers line up).
    pub numeric: bool,
    /// Columns that do not fit are left out lowest priority first.
    pub priority: u8,
    /// Takes the width left over, and may be cut.
    pub fill: bool,
    /// A fill column narrower than this is left out instead.
    pub least: usize,
}

impl Column {
    pub const fn text(name: &'static str, priority: u8) -> Column {
        Column {
            name,
            numeric: false,
            priority,
            fill: false,
            least: 0,
        }
    }

    pub const fn number(name: &'static str, priority: u8) -> Column {
        Column {
            name,
            numeric: true,
            priority,
            fill: false,
            least: 0,
        }
    }

    pub const fn fill(name: &'static str, priority: u8) -> Column {
        Column {
            name,
            numeric: false,
            priority,
            fill: true,
            least: MIN_FILL,
        }
    }

    /// A fill column that still says something at `least` cells (a short
    /// word first, the detail after it), so it stays in narrow panels.
    pub const fn at_least(mut self, least: usize) -> Column {
        self.least = least;
        self
    }
}

/// A fill column narrower than this is left out instead, unless it says
/// otherwise ([`Column::at_least`]).
const MIN_FILL: usize = 12;

/// Rows of cells under columns, before fitting.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub columns: Vec<Column>,
    pub rows: Vec<ModelRow>,
}

#[derive(Debug, Clone, Default)]
pub struct ModelRow {
    pub cells: Vec<String>,
    /// The row's style, and cells of their own style.
    pub style: Style,
    pub cell_styles: Vec<(usize, Style)>,
}

impl ModelRow {
    pub fn new(cells: Vec<String>) -> ModelRow {
        ModelRow {
            cells,
            ..ModelRow::default()
        }
    }

    pub fn style(mut self, style: Style) -> ModelRow {
        self.style = style;
        self
    }

    pub fn cell_style(mut self, column: usize, style: Style) -> ModelRow {
        self.cell_styles.push((column, style));
        self
    }
}

impl Model {
    /// Each column's width at its widest cell (or its name).
    fn naturals(&self) -> Vec<usize> {
        (0..self.columns.len())
            .map(|i| {
                let widest = self
                    .rows
                    .iter()
                    .filter_map(|r| r.cells.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0);
                widest.max(self.columns[i].name.chars().count())
            })
            .collect()
    }

    /// The narrowest column `i` may be: a fill column's least, another's
    /// widest cell.
    fn narrowest(&self, i: usize, natural: &[usize]) -> usize {
        let column = &self.columns[i];
        if column.fill {
            column.least.min(natural[i])
        } else {
            natural[i]
        }
    }

    /// The width that shows every column at least as important as the
    /// most important sentence (fill) column, that one at its least: under
    /// it, a row no longer says what happened. A table without a sentence
    /// needs its whole width.
    pub fn least_width(&self) -> usize {
        let natural = self.naturals();
        let Some(sentence) = self
            .columns
            .iter()
            .filter(|c| c.fill)
            .map(|c| c.priority)
            .max()
        else {
            return self.natural_width();
        };
        let shown: Vec<usize> = (0..self.columns.len())
            .filter(|&i| self.columns[i].priority >= sentence)
            .collect();
        let cells: usize = shown.iter().map(|&i| self.narrowest(i, &natural)).sum();
        cells + shown.len().saturating_sub(1)
    }

    /// The width the whole table would take with nothing cut.
    pub fn natural_width(&self) -> usize {
        let n = self.naturals();
        n.iter().sum::<usize>() + n.len().saturating_sub(1)
    }

    /// The columns shown in `width` cells, with their widths: by priority
    /// while they fit at their content's width (one space between; a fill
    /// column at its least), then the fill columns get the rest. In the
    /// columns' own order.
    pub fn fit(&self, width: usize) -> Vec<(usize, usize)> {
        let natural = self.naturals();
        let mut order: Vec<usize> = (0..self.columns.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.columns[i].priority));
        let mut chosen: Vec<usize> = Vec::new();
        let mut used = 0;
        for i in order {
            let need = self.narrowest(i, &natural);
            let gap = usize::from(!chosen.is_empty());
            if used + gap + need <= width {
                used += gap + need;
                chosen.push(i);
            }
        }
        // A sentence cut while columns less important than it are shown:
        // those go, least important first, until it is whole.
        let mut fills: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|&i| self.columns[i].fill)
            .collect();
        fills.sort_by_key(|&i| std::cmp::Reverse(self.columns[i].priority));
        for f in fills {
            let least = self.narrowest(f, &natural);
            let whole = |used: usize| width.saturating_sub(used) + least >= natural[f];
            let mut dropped = Vec::new();
            while !whole(used) {
                let victim = chosen
                    .iter()
                    .copied()
                    .filter(|&i| {
                        !self.columns[i].fill && self.columns[i].priority < self.columns[f].priority
                    })
                    .min_by_key(|&i| self.columns[i].priority);
                let Some(v) = victim else { break };
                chosen.retain(|&i| i != v);
                used -= natural[v] + 1;
                dropped.push(v);
            }
            // A column dropped on the way that fits beside the whole
            // sentence comes back, the most important first.
            dropped.sort_by_key(|&i| std::cmp::Reverse(self.columns[i].priority));
            for v in dropped {
                if whole(used + natural[v] + 1) {
                    used += natural[v] + 1;
                    chosen.push(v);
                }
            }
        }
        chosen.sort_unstable();
        let mut widths: Vec<(usize, usize)> = chosen
            .iter()
            .map(|&i| (i, self.narrowest(i, &natural)))
            .collect();
        let spare = width.saturating_sub(used);
        // The fill columns take what is left, so the table spans its panel:
        // each up to its widest cell in turn, then the last one the rest.
        let mut spare = spare;
        for (i, w) in widths.iter_mut().filter(|(i, _)| self.columns[*i].fill) {
            let more = natural[*i].saturating_sub(*w).min(spare);
            *w += more;
            spare -= more;
        }
        if let Some(last) = widths.iter_mut().rev().find(|(i, _)| self.columns[*i].fill) {
            last.1 += spare;
        }
        widths
    }

    /// The names of the columns left out at `width`, in their order.
    pub fn left_out(&self, width: usize) -> Vec<&'static str> {
        let shown: Vec<usize> = self.fit(width).into_iter().map(|(i, _)| i).collect();
        (0..self.columns.len())
            .filter(|i| !shown.contains(i))
            .map(|i| self.columns[i].name)
            .collect()
    }

    /// The ratatui table of the columns that fit `width`.
    pub fn table(&self, width: usize) -> Table<'static> {
        let fitted = self.fit(width);
        let align = |i: usize, text: String, w: usize| -> Line<'static> {
            let text = fit(&text, w);
            if self.columns[i].numeric {
                Line::from(text).right_aligned()
            } else {
                Line::from(text)
            }
        };
        let header = Row::new(
            fitted
                .iter()
                .map(|&(i, w)| Cell::from(align(i, self.columns[i].name.to_owned(), w)))
                .collect::<Vec<_>>(),
        )
        .style(Style::new().add_modifier(Modifier::BOLD));
        let rows: Vec<Row> = self
            .rows
            .iter()
            .map(|r| {
                let cells: Vec<Cell> = fitted
                    .iter()
                    .map(|&(i, w)| {
                        let text = r.cells.get(i).cloned().unwrap_or_default();
                        let mut cell = Cell::from(align(i, text, w));
                        if let Some((_, style)) = r.cell_styles.iter().find(|(c, _)| *c == i) {
                            cell = cell.style(*style);
                        }
                        cell
                    })
                    .collect();
                Row::new(cells).style(r.style)
            })
            .collect();
        let widths: Vec<Constraint> = fitted
            .iter()
            .map(|&(_, w)| Constraint::Length(w as u16))
            .collect();
        Table::new(rows, widths).header(header).column_spacing(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            columns: vec![
                Column::text("STATE", 9),
                Column::text("BROKER", 2),
                Column::text("QUEUE", 8),
                Column::number("OK", 7),
                Column::fill("LAST RESULT", 3),
            ],
            rows: vec![ModelRow::new(vec![
                "Enabled".into(),
                "local-activemq".into(),
                "demo-payments".into(),
                "12345".into(),
                "PROBLEM: Connection error. The broker is away".into(),
            ])],
        }
    }

    #[test]
    fn columns_are_as_wide_as_their_content_and_the_fill_takes_the_rest() {
        let m = model();
        // 7 + 14 + 13 + 5 = 39 and 4 gaps: 43; the rest (57) is the fill's.
        assert_eq!(m.fit(100), vec![(0, 7), (1, 14), (2, 13), (3, 5), (4, 57)]);
    }

    #[test]
    fn narrow_leaves_out_the_lowest_priorities_and_never_cuts_a_name() {
        let m = model();
        // No room for BROKER (priority 2) beside the fill's minimum.
        assert_eq!(m.left_out(50), ["BROKER"]);
        assert_eq!(m.fit(50), vec![(0, 7), (2, 13), (3, 5), (4, 22)]);
        assert_eq!(m.left_out(27), ["BROKER", "LAST RESULT"]);
        let shown = m.fit(27);
        assert!(
            shown
                .iter()
                .all(|&(i, w)| i == 4 || w >= m.columns[i].name.len())
        );
    }
}
