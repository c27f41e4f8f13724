//! The key tables: for each place, its keys, the hint bar's word for each
//! and the help's sentence. Order matters: the hint bar shows them so.

use super::{Binding, Key, bind};
use crate::console::action::Action;
use crossterm::event::KeyCode;

use Key::{Char, Code, Ctrl};

/// Every panel's keys, after its own.
pub const GLOBAL: &[Binding] = &[
    bind(
        &[Code(KeyCode::Up), Char('k')],
        "↑ k",
        "",
        "move up",
        || Action::Up,
    ),
    bind(
        &[Code(KeyCode::Down), Char('j')],
        "↓ j",
        "",
        "move down",
        || Action::Down,
    ),
    bind(&[Code(KeyCode::PageUp)], "PgUp", "", "a page up", || {
        Action::PageUp
    }),
    bind(
        &[Code(KeyCode::PageDown)],
        "PgDn",
        "",
        "a page down",
        || Action::PageDown,
    ),
    bind(&[Code(KeyCode::Home)], "Home", "", "the first row", || {
        Action::First
    }),
    bind(&[Code(KeyCode::End)], "End", "", "the last row", || {
        Action::Last
    }),
    bind(
        &[Char('/')],
        "/",
        "find",
        "show only the rows holding a text (Esc clears)",
        || Action::AskFilter,
    ),
    bind(
        &[Char('s')],
        "s",
        "sort",
        "sort by the next column (the title says which)",
        || Action::Sort,
    ),
    bind(&[Char('S')], "S", "", "sort the other way", || {
        Action::SortReverse
    }),
    bind(
        &[Char('z')],
        "z",
        "zoom",
        "this panel on the whole screen, and back",
        || Action::Zoom,
    ),
    bind(
        &[Code(KeyCode::Tab)],
        "Tab",
        "panel",
        "the next panel",
        || Action::FocusNext,
    ),
    bind(
        &[Code(KeyCode::BackTab)],
        "S-Tab",
        "",
        "the panel before",
        || Action::FocusPrevious,
    ),
    bind(
        &[Char(':')],
        ":",
        "cmd",
        "a command; Tab completes (:help lists them)",
        || Action::AskCommand,
    ),
    bind(&[Char('?')], "?", "help", "the keys of this panel", || {
        Action::Help
    }),
    bind(
        &[Code(KeyCode::Esc)],
        "Esc",
        "",
        "clear the find text, or leave the zoom",
        || Action::Back,
    ),
    bind(
        &[Char('q')],
        "q",
        "quit",
        "quit (a service attached to goes on)",
        || Action::Quit,
    ),
];

pub const MAPPINGS: &[Binding] = &[
    bind(
        &[Code(KeyCode::Enter)],
        "Enter",
        "batches",
        "the mapping's batches",
        || Action::Inspect,
    ),
    bind(&[Char('e')], "e", "enable", "enable the mapping", || {
        Action::Enable
    }),
    bind(
        &[Char('d')],
        "d",
        "disable",
        "disable the mapping (asks first)",
        || Action::AskDisable,
    ),
    PAUSE,
    STEP,
    bind(
        &[Char('+'), Char('-')],
        "+ -",
        "batch",
        "double or halve BatchSize",
        || Action::BatchUp,
    ),
    bind(&[Char('b')], "b", "size", "type an exact BatchSize", || {
        Action::AskBatchSize
    }),
    bind(
        &[Char('f')],
        "f",
        "filter",
        "edit FilterCriteria, with a dry run; Ctrl-s applies",
        || Action::EditFilter,
    ),
    bind(
        &[Char('n')],
        "n",
        "new",
        "add a mapping (a form; Tab moves, Enter creates)",
        || Action::AskNew,
    ),
    bind(
        &[Char('x')],
        "x",
        "delete",
        "delete the mapping (asks first)",
        || Action::AskDelete,
    ),
];

/// `p` and `.`, in the Mappings and the Batches (where a step's batch shows).
const PAUSE: Binding = bind(
    &[Char('p')],
    "p",
    "pause",
    "pause the mapping: no new batch, the broker keeps the messages; again resumes",
    || Action::PauseOrResume,
);
const STEP: Binding = bind(
    &[Char('.')],
    ".",
    "step",
    "let exactly one batch through, then paused again",
    || Action::Step,
);

pub const BATCHES: &[Binding] = &[
    PAUSE,
    STEP,
    bind(
        &[Code(KeyCode::Enter)],
        "Enter",
        "inspect",
        "the whole event the function saw, and its log",
        || Action::Inspect,
    ),
    bind(
        &[Char('r')],
        "r",
        "replay",
        "invoke the function with this batch's event again (asks first)",
        || Action::AskReplay,
    ),
];

pub const DEAD_LETTERS: &[Binding] = &[
    bind(
        &[Code(KeyCode::Enter)],
        "Enter",
        "inspect",
        "inspect the letter, or unfold the group",
        || Action::Inspect,
    ),
    bind(
        &[Char('t')],
        "t",
        "history",
        "the message's history: each attempt, and how it ended",
        || Action::History,
    ),
    bind(
        &[Char('W')],
        "W",
        "export",
        "write the letters listed (after /) to a JSON Lines file here",
        || Action::Export,
    ),
    bind(
        &[Char(' ')],
        "Space",
        "fold",
        "fold or unfold the group",
        || Action::Fold,
    ),
    bind(
        &[Char('g')],
        "g",
        "group",
        "fold letters of the same error, or list each",
        || Action::Group,
    ),
    bind(
        &[Char('r')],
        "r",
        "replay",
        "invoke the function with the letter's record (asks first)",
        || Action::AskReplay,
    ),
    bind(
        &[Char('R')],
        "R",
        "republish",
        "put the letter back on its queue (asks first)",
        || Action::AskRepublish,
    ),
];

pub const ERRORS: &[Binding] = &[bind(
    &[Code(KeyCode::Enter)],
    "Enter",
    "batch",
    "the newest batch that failed with this error",
    || Action::Inspect,
)];

pub const FLOW: &[Binding] = &[];

pub const CONFIRM: &[Binding] = &[
    bind(
        &[Char('y'), Code(KeyCode::Enter)],
        "y Enter",
        "yes",
        "go ahead",
        || Action::Confirm,
    ),
    bind(
        &[Char('n'), Code(KeyCode::Esc)],
        "n Esc",
        "no",
        "cancel",
        || Action::Back,
    ),
];

pub const PROMPT: &[Binding] = &[
    bind(&[Code(KeyCode::Enter)], "Enter", "apply", "apply", || {
        Action::Confirm
    }),
    bind(&[Code(KeyCode::Esc)], "Esc", "cancel", "cancel", || {
        Action::Back
    }),
];

pub const FIND: &[Binding] = &[
    bind(
        &[Code(KeyCode::Enter)],
        "Enter",
        "keep",
        "keep the find text and go back to the list",
        || Action::Confirm,
    ),
    bind(
        &[Code(KeyCode::Esc)],
        "Esc",
        "clear",
        "clear the find text",
        || Action::Back,
    ),
];

pub const COMMAND: &[Binding] = &[
    bind(
        &[Code(KeyCode::Tab)],
        "Tab",
        "complete",
        "complete the command or the mapping",
        || Action::Complete,
    ),
    bind(
        &[Code(KeyCode::Enter)],
        "Enter",
        "run",
        "run the command",
        || Action::Confirm,
    ),
    bind(&[Code(KeyCode::Esc)], "Esc", "cancel", "cancel", || {
        Action::Back
    }),
];

pub const FILTER_EDITOR: &[Binding] = &[
    bind(
        &[Ctrl('s')],
        "Ctrl-s",
        "apply",
        "apply the FilterCriteria",
        || Action::Apply,
    ),
    bind(
        &[Code(KeyCode::Esc)],
        "Esc",
        "discard",
        "discard the change",
        || Action::Back,
    ),
];

pub const FORM: &[Binding] = &[
    bind(
        &[Code(KeyCode::Tab), Code(KeyCode::Down)],
        "Tab ↓",
        "next",
        "the next field",
        || Action::NextField,
    ),
    bind(
        &[Code(KeyCode::BackTab), Code(KeyCode::Up)],
        "S-Tab ↑",
        "previous",
        "the field before",
        || Action::PrevField,
    ),
    bind(
        &[Code(KeyCode::Enter)],
        "Enter",
        "create",
        "create the mapping",
        || Action::Confirm,
    ),
    bind(&[Code(KeyCode::Esc)], "Esc", "cancel", "cancel", || {
        Action::Back
    }),
];

pub const PAGE: &[Binding] = &[
    bind(
        &[Code(KeyCode::Up), Char('k')],
        "↑ k",
        "scroll",
        "scroll up",
        || Action::Up,
    ),
    bind(
        &[Code(KeyCode::Down), Char('j')],
        "↓ j",
        "",
        "scroll down",
        || Action::Down,
    ),
    bind(
        &[
            Code(KeyCode::Esc),
            Char('q'),
            Char('?'),
            Code(KeyCode::Enter),
        ],
        "Esc",
        "close",
        "close",
        || Action::Back,
    ),
];

pub const INSPECTOR: &[Binding] = &[
    bind(
        &[Code(KeyCode::Up), Char('k')],
        "↑ k",
        "scroll",
        "scroll up",
        || Action::Up,
    ),
    bind(
        &[Code(KeyCode::Down), Char('j')],
        "↓ j",
        "",
        "scroll down",
        || Action::Down,
    ),
    bind(&[Code(KeyCode::PageUp)], "PgUp", "", "a page up", || {
        Action::PageUp
    }),
    bind(
        &[Code(KeyCode::PageDown)],
        "PgDn",
        "",
        "a page down",
        || Action::PageDown,
    ),
    bind(
        &[Char('w')],
        "w",
        "save",
        "save the body (or the event) to a file here",
        || Action::Save,
    ),
    bind(
        &[Char('r')],
        "r",
        "replay",
        "invoke the function with it again (asks first)",
        || Action::AskReplay,
    ),
    bind(
        &[Char('R')],
        "R",
        "republish",
        "a dead letter: put it back on its queue (asks first)",
        || Action::AskRepublish,
    ),
    bind(
        &[Code(KeyCode::Enter), Char('t')],
        "Enter",
        "history",
        "the message's history (in a batch: the selected one)",
        || Action::History,
    ),
    bind(
        &[Char(']')],
        "] [",
        "message",
        "in a batch: select the next message ([ the one before)",
        || Action::NextMessage,
    ),
    bind(
        &[Char('[')],
        "[",
        "",
        "in a batch: the message before",
        || Action::PreviousMessage,
    ),
    bind(
        &[Code(KeyCode::Esc), Char('q')],
        "Esc",
        "back",
        "back",
        || Action::Back,
    ),
];
