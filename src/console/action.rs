//! Everything that can change the console's state, and what it asks of the engine.

use crate::engine::EngineEvent;
use crate::mapping::Mapping;
use crate::store::DeadLetter;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub enum Action {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    FocusNext,
    FocusPrevious,
    /// `z`: the focused panel on the whole screen, and back.
    Zoom,
    /// Space in the dead letters: fold or unfold the selected group.
    Fold,
    /// `g` in the dead letters: fold letters of one error, or list each.
    Group,
    /// Tab on the command line.
    Complete,
    Enable,
    AskDisable,
    /// `p`: pause the selected mapping, or resume it when it is paused.
    PauseOrResume,
    /// `.`: one batch through the selected mapping, then paused.
    Step,
    /// `t` (or Enter in an inspector): the message's history.
    History,
    /// `W` in the dead letters: write those listed to a JSON Lines file.
    Export,
    /// `]` and `[` in a batch's inspector: the next or previous message.
    NextMessage,
    PreviousMessage,
    BatchUp,
    BatchDown,
    AskBatchSize,
    AskReplay,
    AskRepublish,
    AskDelete,
    AskFilter,
    /// `f`: edit the selected mapping's FilterCriteria.
    EditFilter,
    /// Ctrl-s in the filter editor.
    Apply,
    /// `w` in the inspector: write the body to a file.
    Save,
    AskNew,
    NextField,
    PrevField,
    AskCommand,
    /// `s`: sort the focused list by its next column.
    Sort,
    /// `S`: the same column, the other way.
    SortReverse,
    /// A click on a row of the mappings table.
    Select(usize),
    Inspect,
    Help,
    Confirm,
    Back,
    /// A key for the prompt's text field.
    PromptKey(crossterm::event::KeyEvent),
    Tick,
    Engine(EngineEvent),
    /// The next item of the engine's stream: a snapshot, an event, the dead
    /// letters, or word that the service cannot be reached.
    Feed(crate::engine::FeedItem),
    /// Fresh state from the store.
    Loaded {
        mappings: Vec<Mapping>,
        dead_letters: Vec<DeadLetter>,
    },
    /// What became of an effect, for the toast.
    Done(Result<String, String>),
    /// How far a bulk action is: done, of how many.
    Progress(usize, usize),
    /// A message's history, fetched for [`Effect::History`], and its mapping.
    Timeline(Box<Result<(crate::engine::history::Timeline, Uuid), String>>),
}

/// A change the console asks of the engine, through its [`super::driver::Driver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Enable(Uuid),
    Disable(Uuid),
    Pause(Uuid),
    Resume(Uuid),
    Step(Uuid),
    SetBatchSize(Uuid, u32),
    Delete(Uuid),
    /// Write bytes (a body, an event) to this file in the working directory.
    Save(String, bytes::Bytes),
    Create(Box<crate::mapping::MappingSpec>),
    /// Replace a mapping's FilterCriteria (None removes it).
    SetFilter(Uuid, Option<crate::mapping::FilterCriteria>),
    /// Re-invoke the function with a dead letter's record (of that mapping).
    Replay(Uuid, i64),
    /// Re-invoke a mapping's function with a batch's whole event.
    ReplayEvent(Uuid, bytes::Bytes),
    /// Put a dead letter (of that mapping) back on its source queue.
    Republish(Uuid, i64),
    /// `:dump FILE`: write the screen, as text, to a file.
    Dump(String),
    /// Fetch a message's history (mapping, message id).
    History(Uuid, String),
    /// Act on these dead letters of a mapping, one by one.
    Bulk(Uuid, Vec<i64>, crate::engine::bulk::BulkAction),
}
