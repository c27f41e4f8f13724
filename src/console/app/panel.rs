//! What a key does to the focused panel: moving in its list, sorting it,
//! Enter (drilling down), folding dead letters, and the mapping's actions.

use super::App;
use crate::console::action::{Action, Effect};
use crate::console::lists::dead_letters::LetterKey;
use crate::console::lists::{self, Focus};
use crate::console::popup::inspector::{BatchInspector, LetterInspector};
use crate::console::popup::{Mode, batch_size, filter_editor, find, form};
use crate::mapping::{MAX_BATCH_SIZE, MIN_BATCH_SIZE};
use uuid::Uuid;

/// Rows a page key moves.
const PAGE: isize = 10;

impl App {
    pub(super) fn select_mapping(&mut self, uuid: Option<Uuid>) {
        if self.mappings.selected != uuid {
            self.mappings.selected = uuid;
            self.batches.selected = None;
            self.dead_letters.selected = None;
            self.errors.selected = None;
        }
    }

    /// Moves the focused list's selection.
    fn move_by(&mut self, delta: isize) {
        match self.focus {
            Focus::Mappings => {
                let to = self.mapping_list().moved(&self.mappings.selected, delta);
                if to.is_some() {
                    self.select_mapping(to);
                }
            }
            Focus::Batches => {
                let to = self.batch_list().moved(&self.batches.selected, delta);
                self.batches.selected = to.or(self.batches.selected);
            }
            Focus::DeadLetters => {
                let to = self.letter_list().moved(&self.dead_letters.selected, delta);
                self.dead_letters.selected = to.or(self.dead_letters.selected.clone());
            }
            Focus::Errors => {
                let to = self.error_list().moved(&self.errors.selected, delta);
                self.errors.selected = to.or(self.errors.selected.clone());
            }
            Focus::Flow => {}
        }
    }

    pub(super) fn panel_action(&mut self, action: Action) -> Option<Effect> {
        let uuid = self.selected_mapping().map(|m| m.uuid);
        let batch_size = self
            .selected_mapping()
            .map(|m| m.spec.batch_size())
            .unwrap_or(0);
        match action {
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-PAGE),
            Action::PageDown => self.move_by(PAGE),
            Action::First => self.move_by(isize::MIN / 2),
            Action::Last => self.move_by(isize::MAX / 2),
            Action::FocusNext => self.focus = self.focus.next(),
            Action::FocusPrevious => self.focus = self.focus.previous(),
            Action::Zoom => self.zoom = !self.zoom,
            Action::Back => {
                if !self.find_of(self.focus).is_empty() {
                    self.set_find(self.focus, String::new());
                } else {
                    self.zoom = false;
                }
            }
            Action::Help => self.mode = Mode::Help(self.help(self.context())),
            Action::AskFilter if self.focus == Focus::Flow => {
                self.say("the Flow panel has no list to find in".into(), true)
            }
            Action::AskFilter => {
                let text = self.find_of(self.focus).to_owned();
                self.mode = Mode::Find(Box::new(find::Find::new(self.focus, &text)));
            }
            Action::Sort | Action::SortReverse => self.sort(matches!(action, Action::SortReverse)),
            Action::AskCommand => self.mode = Mode::Command(Box::default()),
            Action::Select(index) => {
                let keys = self.mapping_list().keys;
                if let Some(uuid) = keys.get(index) {
                    self.select_mapping(Some(*uuid));
                    self.focus = Focus::Mappings;
                }
            }
            Action::Inspect => return self.inspect(),
            Action::Fold => self.fold(),
            Action::Group => {
                self.folding.grouped = !self.folding.grouped;
                self.dead_letters.selected = None;
            }
            Action::EditFilter => {
                if let Some(m) = self.selected_mapping() {
                    let editor = filter_editor::FilterEditor::new(m);
                    self.mode = Mode::FilterEditor(Box::new(editor));
                }
            }
            Action::AskNew => {
                let form = form::MappingForm::new(self.view.choices.clone());
                self.mode = Mode::Form(Box::new(form));
            }
            Action::Enable => return uuid.map(Effect::Enable),
            Action::PauseOrResume => {
                let m = self.selected_mapping()?;
                return Some(if m.paused {
                    Effect::Resume(m.uuid)
                } else {
                    Effect::Pause(m.uuid)
                });
            }
            Action::Step => return uuid.map(Effect::Step),
            Action::Export if self.focus == Focus::DeadLetters => match self.export(None) {
                Ok(effect) => return Some(effect),
                Err(why) => self.say(why, true),
            },
            Action::History if self.focus == Focus::DeadLetters => {
                let letter = self.selected_letter()?;
                let id =
                    crate::console::text::message_label(letter.message_id.as_deref(), &letter.body);
                return Some(Effect::History(letter.mapping, id));
            }
            Action::AskDisable => {
                if let Some(uuid) = uuid {
                    self.mode = Mode::Confirm(Effect::Disable(uuid));
                }
            }
            Action::AskDelete => {
                if let Some(uuid) = uuid {
                    self.mode = Mode::Confirm(Effect::Delete(uuid));
                }
            }
            Action::AskReplay if self.focus == Focus::Batches => {
                let key = self
                    .batch_list()
                    .index(&self.batches.selected)
                    .map(|i| self.batch_list().keys[i]);
                match (uuid, key.and_then(|k| self.view.event(uuid?, k))) {
                    (Some(u), Some(event)) => {
                        self.mode = Mode::Confirm(Effect::ReplayEvent(u, event))
                    }
                    _ => self.say("only the newest batches keep their event".into(), true),
                }
            }
            Action::AskReplay | Action::AskRepublish => {
                let letter = self.selected_letter().map(|d| (d.mapping, d.id));
                match (letter, action) {
                    (Some((m, id)), Action::AskReplay) => {
                        self.mode = Mode::Confirm(Effect::Replay(m, id))
                    }
                    (Some((m, id)), _) => self.mode = Mode::Confirm(Effect::Republish(m, id)),
                    (None, _) => self.say("no dead letter selected".into(), true),
                }
            }
            Action::BatchUp if batch_size < MAX_BATCH_SIZE => {
                return uuid.map(|u| Effect::SetBatchSize(u, step(batch_size, true)));
            }
            Action::BatchDown if batch_size > MIN_BATCH_SIZE => {
                return uuid.map(|u| Effect::SetBatchSize(u, step(batch_size, false)));
            }
            Action::AskBatchSize if uuid.is_some() => {
                self.mode = Mode::BatchPrompt(Box::new(batch_size::BatchPrompt::new(batch_size)));
            }
            _ => {}
        }
        None
    }

    fn sort(&mut self, reverse: bool) {
        let columns = self.columns_of(self.focus);
        let numeric: Vec<bool> = match self.focus {
            Focus::Mappings => self.mapping_list().model.columns,
            Focus::Batches => self.batch_list().model.columns,
            Focus::DeadLetters => self.letter_list().model.columns,
            Focus::Errors => self.error_list().model.columns,
            Focus::Flow => Vec::new(),
        }
        .iter()
        .map(|c| c.numeric)
        .collect();
        let n = columns.len();
        let is_number = |c: usize| numeric.get(c).copied().unwrap_or(false);
        match (self.focus, reverse) {
            (Focus::Mappings, false) => self.mappings.next_sort(n, is_number),
            (Focus::Batches, false) => self.batches.next_sort(n, is_number),
            (Focus::DeadLetters, false) => self.dead_letters.next_sort(n, is_number),
            (Focus::Errors, false) => self.errors.next_sort(n, is_number),
            (Focus::Mappings, true) => self.mappings.reverse_sort(),
            (Focus::Batches, true) => self.batches.reverse_sort(),
            (Focus::DeadLetters, true) => self.dead_letters.reverse_sort(),
            (Focus::Errors, true) => self.errors.reverse_sort(),
            (Focus::Flow, _) => {}
        }
    }

    /// Enter: a mapping's batches, a batch's event, a dead letter (or a
    /// group unfolded), an error's newest batch.
    fn inspect(&mut self) -> Option<Effect> {
        let mapping = self.selected_mapping()?.clone();
        match self.focus {
            Focus::Mappings => self.focus = Focus::Batches,
            Focus::Batches => {
                let listed = self.batch_list();
                let key = listed
                    .keys
                    .get(listed.index(&self.batches.selected)?)
                    .copied()?;
                match BatchInspector::open(&self.view, &mapping, key) {
                    Some(open) => self.mode = Mode::InspectBatch(Box::new(open)),
                    None => self.say("only the newest batches keep their event".into(), true),
                }
            }
            Focus::DeadLetters => {
                let listed = self.letter_list();
                match listed
                    .keys
                    .get(listed.index(&self.dead_letters.selected)?)?
                {
                    LetterKey::Group(_) => self.fold(),
                    LetterKey::Letter(id) => {
                        self.mode = Mode::Inspect(LetterInspector { id: *id, scroll: 0 })
                    }
                }
            }
            Focus::Errors => {
                let listed = self.error_list();
                let summary = listed.keys.get(listed.index(&self.errors.selected)?)?;
                let group = lists::errors::groups(&self.view, &mapping)
                    .into_iter()
                    .find(|g| g.summary == *summary)?;
                self.batches.find.clear();
                self.batches.selected = Some(group.newest);
                self.focus = Focus::Batches;
            }
            Focus::Flow => {}
        }
        None
    }

    /// Folds or unfolds the selected group of dead letters (or the group
    /// of the selected letter).
    fn fold(&mut self) {
        let Some(m) = self.selected_mapping().cloned() else {
            return;
        };
        let listed = self.letter_list();
        let Some(key) = listed
            .index(&self.dead_letters.selected)
            .and_then(|i| listed.keys.get(i).cloned())
        else {
            return;
        };
        let group = match &key {
            LetterKey::Group(g) => Some(g.clone()),
            LetterKey::Letter(id) => {
                // A letter under an open group: that group.
                listed.keys.iter().find_map(|k| match k {
                    LetterKey::Group(g)
                        if self.folding.expanded.contains(g)
                            && lists::dead_letters::letters_of(&self.view, &m, k)
                                .iter()
                                .any(|d| d.id == *id) =>
                    {
                        Some(g.clone())
                    }
                    _ => None,
                })
            }
        };
        if let Some(g) = group {
            if !self.folding.expanded.remove(&g) {
                self.folding.expanded.insert(g.clone());
            }
            self.dead_letters.selected = Some(LetterKey::Group(g));
        }
    }
}

/// Doubles or halves, as a quick way across 1..=10000.
fn step(size: u32, up: bool) -> u32 {
    if up {
        (size * 2).min(MAX_BATCH_SIZE)
    } else {
        (size / 2).max(MIN_BATCH_SIZE)
    }
}
