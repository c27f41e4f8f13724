//! What opens over the panels: each popup its own file, with its state,
//! what its keys do to it, and how it is drawn. [`Mode`] says which one is
//! open; the app routes actions to it.

pub mod batch_size;
pub mod command;
pub mod confirm;
pub mod filter_editor;
pub mod find;
pub mod form;
pub mod help;
pub mod inspector;
pub mod messages;
pub mod progress;
pub mod timeline;

use super::action::{Action, Effect};
use super::keys::Context;
use super::view::View;
use uuid::Uuid;

/// Lines a page key scrolls.
pub const PAGE: i32 = 10;

/// What a popup made of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Reaction {
    /// It stays open (scrolled, typed in, or nothing).
    Stay,
    Close,
    /// It closes, and asks the engine for this.
    Run(Effect),
    /// It closes, and the operator is asked first.
    Ask(Effect),
    /// It stays, and says why it did nothing.
    Say(String),
}

pub enum Mode {
    /// No popup: the keys go to the focused panel.
    Normal,
    Confirm(Effect),
    BatchPrompt(Box<batch_size::BatchPrompt>),
    Help(help::Help),
    /// `:messages`, scrolled this far.
    Messages(u16),
    /// A dead letter.
    Inspect(inspector::LetterInspector),
    /// One attempt of a batch.
    InspectBatch(Box<inspector::BatchInspector>),
    FilterEditor(Box<filter_editor::FilterEditor>),
    Form(Box<form::MappingForm>),
    Find(Box<find::Find>),
    Command(Box<command::CommandLine>),
    /// A message's history.
    Timeline(Box<timeline::TimelineView>),
    /// A bulk action under way.
    Progress(progress::Progress),
}

impl Mode {
    /// Where the keys go while this is open (`panel` when none is).
    pub fn context(&self, panel: Context) -> Context {
        match self {
            Mode::Normal => panel,
            Mode::Confirm(_) => Context::Confirm,
            Mode::BatchPrompt(_) => Context::Prompt,
            Mode::Help(_) | Mode::Messages(_) | Mode::Timeline(_) | Mode::Progress(_) => {
                Context::Page
            }
            Mode::Inspect(_) | Mode::InspectBatch(_) => Context::Inspector,
            Mode::FilterEditor(_) => Context::FilterEditor,
            Mode::Form(_) => Context::Form,
            Mode::Find(_) => Context::Find,
            Mode::Command(_) => Context::Command,
        }
    }
}

impl Mode {
    /// What the open popup does with an action. The `/` and `:` lines act
    /// on the app itself, which routes them; for them, and with no popup,
    /// this is [`Reaction::Stay`]. `selected` is the selected mapping.
    pub fn react(&mut self, action: Action, view: &View, selected: Option<Uuid>) -> Reaction {
        match self {
            Mode::Normal | Mode::Find(_) | Mode::Command(_) | Mode::Progress(_) => Reaction::Stay,
            Mode::Confirm(effect) => match action {
                Action::Confirm => Reaction::Run(effect.clone()),
                _ => Reaction::Stay,
            },
            Mode::BatchPrompt(prompt) => prompt.on(action, selected),
            Mode::Help(help::Help { scroll: at, .. }) | Mode::Messages(at) => {
                inspector::scroll_by(at, &action);
                Reaction::Stay
            }
            Mode::Timeline(open) => {
                inspector::scroll_by(&mut open.scroll, &action);
                Reaction::Stay
            }
            Mode::Inspect(open) => open.on(action, view),
            Mode::InspectBatch(open) => open.on(action),
            Mode::FilterEditor(editor) => editor.on(action, selected),
            Mode::Form(form) => form.on(action),
        }
    }
}
