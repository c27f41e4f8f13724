//! The `/` and `:` lines: they change the app itself (a list's find
//! text, the selection, the sort, the zoom), so the app routes them here.

use super::App;
use crate::console::action::{Action, Effect};
use crate::console::keys::Context;
use crate::console::lists::{self, Focus};
use crate::console::popup::Mode;
use crate::console::popup::command::{self, Command};
use uuid::Uuid;

impl App {
    pub(super) fn find_action(&mut self, action: Action) -> Option<Effect> {
        let Mode::Find(find) = &mut self.mode else {
            return None;
        };
        let target = find.target;
        match action {
            Action::PromptKey(key) => {
                find.input.input(key);
                let text = find.text();
                self.set_find(target, text);
            }
            Action::Confirm => self.close(),
            Action::Back => {
                self.set_find(target, String::new());
                self.close();
            }
            _ => {}
        }
        None
    }

    pub(super) fn command_action(&mut self, action: Action) -> Option<Effect> {
        let Mode::Command(line) = &mut self.mode else {
            return None;
        };
        match action {
            Action::PromptKey(key) => line.key(key),
            Action::Complete => {
                let text = line.text();
                let columns = self.columns_of(self.focus);
                let view = &self.view;
                let (completed, candidates) = command::complete(
                    &text,
                    |prefix| lists::mappings::completions(view, prefix),
                    &columns,
                );
                if let Mode::Command(line) = &mut self.mode {
                    line.set(completed, candidates);
                }
            }
            Action::Confirm => {
                let text = line.text();
                let ran = command::parse(&text).and_then(|c| match c {
                    Some(c) => self.run(c),
                    None => Ok(None),
                });
                match ran {
                    Ok(effect) => {
                        // A command that opened a popup keeps it.
                        if matches!(self.mode, Mode::Command(_)) {
                            self.close();
                        }
                        return effect;
                    }
                    Err(e) => {
                        if let Mode::Command(line) = &mut self.mode {
                            line.error = Some(e);
                        }
                    }
                }
            }
            _ => {}
        }
        None
    }

    pub(super) fn set_find(&mut self, target: Focus, text: String) {
        match target {
            Focus::Mappings => self.mappings.find = text,
            Focus::Batches => self.batches.find = text,
            Focus::DeadLetters => self.dead_letters.find = text,
            Focus::Errors => self.errors.find = text,
            Focus::Flow => {}
        }
    }

    pub(super) fn find_of(&self, target: Focus) -> &str {
        match target {
            Focus::Mappings => &self.mappings.find,
            Focus::Batches => &self.batches.find,
            Focus::DeadLetters => &self.dead_letters.find,
            Focus::Errors => &self.errors.find,
            Focus::Flow => "",
        }
    }

    /// The column names of a panel's list.
    pub(super) fn columns_of(&self, focus: Focus) -> Vec<&'static str> {
        let model = match focus {
            Focus::Mappings => self.mapping_list().model,
            Focus::Batches => self.batch_list().model,
            Focus::DeadLetters => self.letter_list().model,
            Focus::Errors => self.error_list().model,
            Focus::Flow => return Vec::new(),
        };
        model.columns.iter().map(|c| c.name).collect()
    }

    /// A mapping named on the command line, or the selected one.
    fn target(&self, name: Option<&str>) -> Result<Uuid, String> {
        match name {
            Some(name) => lists::mappings::resolve(&self.view, name).map(|m| m.uuid),
            None => self
                .selected_mapping()
                .map(|m| m.uuid)
                .ok_or_else(|| "no mapping selected".to_owned()),
        }
    }

    fn run(&mut self, command: Command) -> Result<Option<Effect>, String> {
        let letter = || {
            self.selected_letter()
                .map(|d| (d.mapping, d.id))
                .ok_or_else(|| "no dead letter selected".to_owned())
        };
        Ok(Some(match command {
            Command::Quit => {
                self.quit = true;
                return Ok(None);
            }
            Command::Enable(m) => Effect::Enable(self.target(m.as_deref())?),
            Command::Disable(m) => Effect::Disable(self.target(m.as_deref())?),
            Command::Delete(m) => Effect::Delete(self.target(m.as_deref())?),
            Command::Pause(m) => Effect::Pause(self.target(m.as_deref())?),
            Command::Resume(m) => Effect::Resume(self.target(m.as_deref())?),
            Command::Step(m) => Effect::Step(self.target(m.as_deref())?),
            Command::BatchSize(n, m) => Effect::SetBatchSize(self.target(m.as_deref())?, n),
            Command::Go(m) => {
                let uuid = self.target(Some(&m))?;
                self.mappings.find.clear();
                self.select_mapping(Some(uuid));
                self.focus = Focus::Mappings;
                return Ok(None);
            }
            Command::Replay => {
                let (m, id) = letter()?;
                Effect::Replay(m, id)
            }
            Command::Republish => {
                let (m, id) = letter()?;
                Effect::Republish(m, id)
            }
            Command::Bulk(action) => {
                let (mapping, ids) = self.listed_letters()?;
                self.mode = Mode::Confirm(Effect::Bulk(mapping, ids, action));
                return Ok(None);
            }
            Command::Export(file) => return self.export(file).map(Some),
            Command::Sort(column) => {
                self.sort_by(column.as_deref())?;
                return Ok(None);
            }
            Command::Zoom => {
                self.zoom = !self.zoom;
                return Ok(None);
            }
            Command::Messages => {
                self.mode = Mode::Messages(0);
                return Ok(None);
            }
            Command::Help => {
                self.mode = Mode::Help(self.help(Context::Panel(self.focus)));
                return Ok(None);
            }
            Command::Dump(file) => Effect::Dump(file),
        }))
    }

    /// `:sort COLUMN`: the focused list by that column, or its own order.
    fn sort_by(&mut self, column: Option<&str>) -> Result<(), String> {
        let model = match self.focus {
            Focus::Mappings => self.mapping_list().model,
            Focus::Batches => self.batch_list().model,
            Focus::DeadLetters => self.letter_list().model,
            Focus::Errors => self.error_list().model,
            Focus::Flow => return Err("the Flow panel has no list to sort".into()),
        };
        let sort = match column {
            None => None,
            Some(name) => {
                let i = model
                    .columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        let names: Vec<&str> = model.columns.iter().map(|c| c.name).collect();
                        format!("no column `{name}` here: {}", names.join(", "))
                    })?;
                Some(lists::Sort {
                    column: i,
                    descending: model.columns[i].numeric,
                })
            }
        };
        match self.focus {
            Focus::Mappings => self.mappings.sort = sort,
            Focus::Batches => self.batches.sort = sort,
            Focus::DeadLetters => self.dead_letters.sort = sort,
            Focus::Errors => self.errors.sort = sort,
            Focus::Flow => {}
        }
        Ok(())
    }
}
