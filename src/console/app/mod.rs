//! The console's state, and the one place it changes: [`App::update`]. It
//! routes: the engine's stream to the [`View`], a key's action to the open
//! popup or else to the focused panel's list, and a `:` command to what it
//! names. What each popup does with a key is in its own file.

mod command;
mod panel;

use super::action::{Action, Effect};
use super::keys::Context;
use super::lists::dead_letters::{Folding, LetterKey};
use super::lists::{self, Focus, ListState, Listed};
use super::popup::messages::{KEPT, Message};
use super::popup::{Mode, Reaction, timeline};
use super::view::{BatchKey, Choices, View};
use crate::mapping::Mapping;
use crate::store::DeadLetter;
use uuid::Uuid;

pub use crate::engine::stats::AttemptOutcome as Outcome;

pub struct App {
    pub view: View,
    pub focus: Focus,
    /// The focused panel fills the screen.
    pub zoom: bool,
    pub mode: Mode,
    pub mappings: ListState<Uuid>,
    pub batches: ListState<BatchKey>,
    pub errors: ListState<String>,
    pub dead_letters: ListState<LetterKey>,
    pub folding: Folding,
    /// What the title bar said, oldest first (`:messages`).
    pub messages: Vec<Message>,
    /// The newest message, in the title bar until the next.
    pub toast: Option<String>,
    pub quit: bool,
}

impl Default for App {
    fn default() -> Self {
        App {
            view: View::default(),
            focus: Focus::Mappings,
            zoom: false,
            mode: Mode::Normal,
            mappings: ListState::default(),
            batches: ListState::default(),
            errors: ListState::default(),
            dead_letters: ListState::default(),
            folding: Folding::default(),
            messages: Vec::new(),
            toast: None,
            quit: false,
        }
    }
}

impl App {
    pub fn new(choices: Choices, max_redeliveries: u32) -> App {
        let mut app = App::default();
        app.view.choices = choices;
        app.view.max_redeliveries = max_redeliveries;
        app
    }

    /// The console for the engine `described` says.
    pub fn for_engine(described: super::driver::Described) -> App {
        let mut app = App::new(described.choices, described.max_redeliveries);
        app.view.endpoint = described.endpoint;
        app.view.readonly = described.readonly;
        app.view.instance = described.instance;
        if let Some(notice) = described.notice {
            app.say(notice, false);
        }
        app
    }

    /// Where the keys go now.
    pub fn context(&self) -> Context {
        self.mode.context(Context::Panel(self.focus))
    }

    pub fn mapping_list(&self) -> Listed<Uuid> {
        lists::mappings::listed(&self.view, &self.mappings)
    }

    pub fn batch_list(&self) -> Listed<BatchKey> {
        lists::batches::listed(&self.view, self.selected_mapping(), &self.batches)
    }

    pub fn error_list(&self) -> Listed<String> {
        lists::errors::listed(&self.view, self.selected_mapping(), &self.errors)
    }

    pub fn letter_list(&self) -> Listed<LetterKey> {
        lists::dead_letters::listed(
            &self.view,
            self.selected_mapping(),
            &self.dead_letters,
            &self.folding,
        )
    }

    /// The dead letters the Dead letters panel lists for the selected
    /// mapping (after `/`), every letter of a folded group included: what
    /// a bulk action is about. Their mapping, and their ids.
    pub(super) fn listed_letters(&self) -> Result<(Uuid, Vec<i64>), String> {
        let m = self
            .selected_mapping()
            .ok_or_else(|| "no mapping selected".to_owned())?;
        let ids: Vec<i64> = self
            .letter_list()
            .keys
            .iter()
            .flat_map(|key| lists::dead_letters::letters_of(&self.view, m, key))
            .map(|d| d.id)
            .collect();
        if ids.is_empty() {
            return Err(format!("{} lists no dead letter", m.spec.queue()));
        }
        Ok((m.uuid, ids))
    }

    /// `W`, `:export [FILE]`: the listed dead letters as JSON Lines, a
    /// letter a line (`engine::bulk::export_line`), oldest first.
    pub(super) fn export(&self, file: Option<String>) -> Result<Effect, String> {
        let (mapping, ids) = self.listed_letters()?;
        let mut text = String::new();
        for letter in self.view.dead_letters.iter().rev() {
            if letter.mapping == mapping && ids.contains(&letter.id) {
                text.push_str(&crate::engine::bulk::export_line(letter));
                text.push('\n');
            }
        }
        let queue = self
            .view
            .mapping(mapping)
            .map(|m| m.spec.queue().to_owned())
            .unwrap_or_default();
        let file = file.unwrap_or_else(|| {
            format!(
                "dead-letters-{queue}-{}.jsonl",
                self.view.now.format("%Y%m%d-%H%M%S")
            )
        });
        Ok(Effect::Save(file, bytes::Bytes::from(text)))
    }

    /// The mappings the table shows, in its order.
    pub fn visible(&self) -> Vec<&Mapping> {
        self.mapping_list()
            .keys
            .iter()
            .filter_map(|u| self.view.mapping(*u))
            .collect()
    }

    /// The selected mapping's row in the table.
    pub fn selected_index(&self) -> usize {
        self.mapping_list()
            .index(&self.mappings.selected)
            .unwrap_or(0)
    }

    /// The help of where the operator is, with a word on what the
    /// Mappings panel shows that needs one.
    pub fn help(&self, context: super::keys::Context) -> super::popup::help::Help {
        let mut notes = Vec::new();
        if context == super::keys::Context::Panel(Focus::Mappings)
            && let Some(m) = self.selected_mapping()
        {
            notes.push(match self.view.backlog_unknown(m) {
                Some(why) => format!("BACKLOG of {} is —: {why}", m.spec.queue()),
                None => format!(
                    "BACKLOG of {}: the messages waiting in the queue, as the broker last said (↑ ↓: more or fewer than a minute ago)",
                    m.spec.queue()
                ),
            });
        }
        super::popup::help::Help {
            context,
            scroll: 0,
            notes,
        }
    }

    pub fn selected_mapping(&self) -> Option<&Mapping> {
        let listed = self.mapping_list();
        let i = listed.index(&self.mappings.selected)?;
        self.view.mapping(listed.keys[i])
    }

    /// A mapping's counts (zeros for one the engine has not counted yet).
    pub fn stats_of(&self, mapping: Uuid) -> &crate::engine::MappingStats {
        self.view.stats_of(mapping)
    }

    /// The selected row of the dead letters, as a letter (a group's newest).
    pub(super) fn selected_letter(&self) -> Option<&DeadLetter> {
        let m = self.selected_mapping()?;
        let listed = self.letter_list();
        let key = &listed.keys[listed.index(&self.dead_letters.selected)?];
        lists::dead_letters::letters_of(&self.view, m, key)
            .into_iter()
            .next()
    }

    /// Says something in the title bar, and keeps it for `:messages` and
    /// the log.
    pub(super) fn say(&mut self, text: String, failed: bool) {
        if failed {
            tracing::warn!(target: "mqtrigger::console", "{text}");
        } else {
            tracing::info!(target: "mqtrigger::console", "{text}");
        }
        self.messages.push(Message {
            at: self.view.now,
            text: text.clone(),
            failed,
        });
        if self.messages.len() > KEPT {
            self.messages.remove(0);
        }
        self.toast = Some(text);
    }

    pub fn update(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit => self.quit = true,
            Action::Tick => self.view.tick(chrono::Utc::now()),
            Action::Loaded {
                mappings,
                dead_letters,
            } => {
                self.view.mappings = mappings;
                self.view.dead_letters = dead_letters;
            }
            Action::Engine(event) => self.view.engine_event(event),
            Action::Feed(item) => self.view.feed(item),
            Action::Done(result) => {
                // A bulk action's summary ends its progress bar.
                if matches!(self.mode, Mode::Progress(..)) {
                    self.close();
                }
                match result {
                    Ok(text) => self.say(text, false),
                    Err(text) => self.say(format!("failed: {text}"), true),
                }
            }
            Action::Progress(done, total) => {
                if let Mode::Progress(at) = &mut self.mode {
                    at.done = done;
                    at.total = total;
                }
            }
            Action::Timeline(fetched) => match *fetched {
                Ok((timeline, mapping)) => {
                    let queue = self
                        .view
                        .mapping(mapping)
                        .map(|m| m.spec.queue().to_owned())
                        .unwrap_or_default();
                    self.mode = Mode::Timeline(Box::new(timeline::TimelineView {
                        timeline,
                        queue,
                        scroll: 0,
                    }))
                }
                Err(text) => self.say(format!("no history: {text}"), true),
            },
            other if matches!(self.mode, Mode::Normal) => return self.panel_action(other),
            other => return self.popup_action(other),
        }
        None
    }

    fn close(&mut self) {
        self.mode = Mode::Normal;
    }

    /// A popup is open: Esc closes it (the `/` line also clears its text);
    /// `/` and `:` act on the app; any other popup reacts by itself.
    fn popup_action(&mut self, action: Action) -> Option<Effect> {
        if matches!(action, Action::Back) && !matches!(self.mode, Mode::Find(_)) {
            self.close();
            return None;
        }
        match self.mode {
            Mode::Find(_) => return self.find_action(action),
            Mode::Command(_) => return self.command_action(action),
            _ => {}
        }
        let selected = self.selected_mapping().map(|m| m.uuid);
        match self.mode.react(action, &self.view, selected) {
            Reaction::Stay => {}
            Reaction::Close => self.close(),
            Reaction::Run(effect) => {
                self.close();
                // A bulk action shows its progress while it runs.
                if let Effect::Bulk(_, ids, action) = &effect {
                    self.mode = Mode::Progress(super::popup::progress::Progress {
                        action: *action,
                        done: 0,
                        total: ids.len(),
                    });
                }
                return Some(effect);
            }
            Reaction::Ask(effect) => self.mode = Mode::Confirm(effect),
            Reaction::Say(text) => self.say(text, true),
        }
        None
    }
}
