//! Where a key becomes an action. The help screen is generated from KEYMAP.

use super::action::Action;
use super::app::Mode;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// (keys, what they do), in the order the help screen shows them.
pub const KEYMAP: &[(&str, &str)] = &[
    ("↑ ↓ j k", "move"),
    ("Tab", "next panel"),
    ("Enter", "inspect the selected batch's event or dead letter"),
    ("w", "in the inspector: save the body to a file"),
    ("e", "enable the mapping"),
    ("d", "disable the mapping (asks first)"),
    ("+ -", "BatchSize up or down"),
    ("b", "type an exact BatchSize"),
    ("n", "add a mapping (a form; Tab moves, Enter creates)"),
    ("x", "delete the mapping (asks first)"),
    ("f", "edit FilterCriteria, with a dry run; Ctrl-s applies"),
    (
        "r",
        "replay the dead letter or batch to the function (asks first)",
    ),
    ("R", "republish the dead letter to its queue (asks first)"),
    ("/", "filter the mappings (Esc clears)"),
    ("s", "sort by queue, state, function, dead letters"),
    (
        ":",
        "command: enable|disable|delete [UUID], batch N, replay, q",
    ),
    ("mouse", "wheel moves, click selects a mapping"),
    ("?", "this help"),
    ("Esc", "back"),
    ("q", "quit"),
];

pub fn action(mode: &Mode, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    match mode {
        Mode::FilterEditor { .. } => match key.code {
            KeyCode::Char('s') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                Some(Action::Apply)
            }
            KeyCode::Esc => Some(Action::Back),
            _ => Some(Action::PromptKey(key)),
        },
        Mode::Form(_) => match key.code {
            KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Tab | KeyCode::Down => Some(Action::NextField),
            KeyCode::BackTab | KeyCode::Up => Some(Action::PrevField),
            _ => Some(Action::PromptKey(key)),
        },
        Mode::BatchPrompt { .. } | Mode::Filter { .. } | Mode::Command { .. } => match key.code {
            KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Esc => Some(Action::Back),
            _ => Some(Action::PromptKey(key)),
        },
        Mode::Confirm(_) => match key.code {
            KeyCode::Char('y') | KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Char('n') | KeyCode::Esc => Some(Action::Back),
            _ => None,
        },
        Mode::Help => match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Enter => {
                Some(Action::Back)
            }
            _ => None,
        },
        Mode::Inspect(_) | Mode::InspectBatch(_) => match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => Some(Action::Back),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::Char('w') => Some(Action::Save),
            KeyCode::Char('r') => Some(Action::AskReplay),
            KeyCode::Char('R') => Some(Action::AskRepublish),
            _ => None,
        },
        Mode::Normal => match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::Tab => Some(Action::FocusNext),
            KeyCode::Enter => Some(Action::Inspect),
            KeyCode::Char('e') => Some(Action::Enable),
            KeyCode::Char('d') => Some(Action::AskDisable),
            KeyCode::Char('+') => Some(Action::BatchUp),
            KeyCode::Char('-') => Some(Action::BatchDown),
            KeyCode::Char('b') => Some(Action::AskBatchSize),
            KeyCode::Char('x') => Some(Action::AskDelete),
            KeyCode::Char('n') => Some(Action::AskNew),
            KeyCode::Char('f') => Some(Action::EditFilter),
            KeyCode::Char('/') => Some(Action::AskFilter),
            KeyCode::Char(':') => Some(Action::AskCommand),
            KeyCode::Char('s') => Some(Action::Sort),
            KeyCode::Char('r') => Some(Action::AskReplay),
            KeyCode::Char('R') => Some(Action::AskRepublish),
            KeyCode::Char('?') => Some(Action::Help),
            KeyCode::Esc => Some(Action::Back),
            _ => None,
        },
    }
}
