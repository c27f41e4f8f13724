//! The lists the panels show, and what the operator does to each: which
//! row is selected (by its key, so a row stays selected while the list
//! moves), the `/` text that filters it, and the column it is sorted by.
//! Each list's rows are worked out here from the [`View`], as a table
//! [`Model`] the panel fits to its width.

pub mod batches;
pub mod dead_letters;
pub mod errors;
pub mod mappings;

use super::table::{Model, ModelRow};

/// The panels, in the order Tab visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Focus {
    Mappings,
    Batches,
    DeadLetters,
    Errors,
    Flow,
}

impl Focus {
    pub const ALL: [Focus; 5] = [
        Focus::Mappings,
        Focus::Batches,
        Focus::DeadLetters,
        Focus::Errors,
        Focus::Flow,
    ];

    pub fn next(self) -> Focus {
        let i = Focus::ALL.iter().position(|f| *f == self).unwrap_or(0);
        Focus::ALL[(i + 1) % Focus::ALL.len()]
    }

    pub fn previous(self) -> Focus {
        let i = Focus::ALL.iter().position(|f| *f == self).unwrap_or(0);
        Focus::ALL[(i + Focus::ALL.len() - 1) % Focus::ALL.len()]
    }

    pub fn title(self) -> &'static str {
        match self {
            Focus::Mappings => "Mappings",
            Focus::Batches => "Batches",
            Focus::DeadLetters => "Dead letters",
            Focus::Errors => "Errors",
            Focus::Flow => "Flow",
        }
    }
}

/// How a column's cells compare.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    Number(i64),
    Text(String),
}

impl SortKey {
    pub fn text(s: impl Into<String>) -> SortKey {
        SortKey::Text(s.into().to_lowercase())
    }

    pub fn number(n: impl TryInto<i64>) -> SortKey {
        SortKey::Number(n.try_into().unwrap_or(i64::MAX))
    }
}

/// The column a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub descending: bool,
}

/// One list's state.
#[derive(Debug, Clone)]
pub struct ListState<K> {
    pub selected: Option<K>,
    /// `/`: only rows holding this text (any case) are shown.
    pub find: String,
    /// None: the list's own order.
    pub sort: Option<Sort>,
}

impl<K> Default for ListState<K> {
    fn default() -> Self {
        ListState {
            selected: None,
            find: String::new(),
            sort: None,
        }
    }
}

impl<K> ListState<K> {
    /// `s`: the next column, numbers largest first and text A to Z; after
    /// the last column, the list's own order again.
    pub fn next_sort(&mut self, columns: usize, numeric: impl Fn(usize) -> bool) {
        self.sort = match self.sort {
            None => Some(Sort {
                column: 0,
                descending: numeric(0),
            }),
            Some(s) if s.column + 1 < columns => Some(Sort {
                column: s.column + 1,
                descending: numeric(s.column + 1),
            }),
            Some(_) => None,
        };
    }

    /// `S`: the same column, the other way.
    pub fn reverse_sort(&mut self) {
        if let Some(s) = &mut self.sort {
            s.descending = !s.descending;
        }
    }

    /// What the panel's title says of the sort and the find text.
    pub fn describe(&self, model: &Model, shown: usize, of: usize) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.sort
            && let Some(column) = model.columns.get(s.column)
        {
            parts.push(format!(
                "sort: {} {}",
                column.name,
                if s.descending { "▼" } else { "▲" }
            ));
        }
        if !self.find.is_empty() {
            parts.push(format!("/{} {shown} of {of}", self.find));
        }
        parts.join(" · ")
    }
}

/// A list worked out for drawing: its table, and each row's key.
#[derive(Debug, Clone)]
pub struct Listed<K> {
    pub model: Model,
    pub keys: Vec<K>,
    /// Rows before the find text left some out.
    pub total: usize,
}

impl<K> Default for Listed<K> {
    fn default() -> Self {
        Listed {
            model: Model::default(),
            keys: Vec::new(),
            total: 0,
        }
    }
}

impl<K: PartialEq + Clone> Listed<K> {
    /// Where the selected row is now: the first row when none is chosen or
    /// the chosen one is gone.
    pub fn index(&self, selected: &Option<K>) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        Some(
            selected
                .as_ref()
                .and_then(|k| self.keys.iter().position(|x| x == k))
                .unwrap_or(0),
        )
    }

    /// The key `delta` rows away from the selection, within the list.
    pub fn moved(&self, selected: &Option<K>, delta: isize) -> Option<K> {
        let i = self.index(selected)? as isize;
        let j = (i + delta).clamp(0, self.keys.len() as isize - 1) as usize;
        self.keys.get(j).cloned()
    }
}

/// A row before sorting and finding: its key, what it shows, what it sorts
/// by (one key per column), and the text `/` looks in.
pub struct Entry<K> {
    pub key: K,
    pub row: ModelRow,
    pub sort: Vec<SortKey>,
    pub haystack: String,
}

/// Applies a list's find text and sort to its entries.
pub fn list<K>(mut model: Model, entries: Vec<Entry<K>>, state: &ListState<K>) -> Listed<K> {
    let total = entries.len();
    let needle = state.find.to_lowercase();
    let mut entries: Vec<Entry<K>> = entries
        .into_iter()
        .filter(|e| needle.is_empty() || e.haystack.to_lowercase().contains(&needle))
        .collect();
    if let Some(sort) = state.sort {
        // Stable: rows that compare equal keep the list's own order.
        entries.sort_by(|a, b| {
            let order = a.sort.get(sort.column).cmp(&b.sort.get(sort.column));
            if sort.descending {
                order.reverse()
            } else {
                order
            }
        });
    }
    let mut keys = Vec::with_capacity(entries.len());
    for e in entries {
        keys.push(e.key);
        model.rows.push(e.row);
    }
    Listed { model, keys, total }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::table::Column;

    #[test]
    fn find_and_sort_keep_the_selection_by_key() {
        let model = Model {
            columns: vec![Column::text("NAME", 1), Column::number("N", 1)],
            rows: vec![],
        };
        let entry = |k: &str, n: i64| Entry {
            key: k.to_owned(),
            row: ModelRow::new(vec![k.into(), n.to_string()]),
            sort: vec![SortKey::text(k), SortKey::number(n)],
            haystack: k.to_owned(),
        };
        let entries = || vec![entry("b", 1), entry("a", 3), entry("c", 2)];
        let mut state = ListState::<String>::default();
        state.next_sort(2, |c| c == 1);
        assert_eq!(list(model.clone(), entries(), &state).keys, ["a", "b", "c"]);
        state.next_sort(2, |c| c == 1);
        let listed = list(model.clone(), entries(), &state);
        assert_eq!(listed.keys, ["a", "c", "b"], "N largest first");
        assert_eq!(state.describe(&listed.model, 3, 3), "sort: N ▼");
        state.selected = Some("c".into());
        assert_eq!(listed.index(&state.selected), Some(1));
        assert_eq!(listed.moved(&state.selected, 5), Some("b".into()));
        state.find = "B".into();
        let found = list(model, entries(), &state);
        assert_eq!((found.keys.len(), found.total), (1, 3));
        assert_eq!(found.index(&state.selected), Some(0), "gone: the first");
    }
}
