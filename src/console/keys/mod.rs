//! Where a key becomes an action: one table of bindings per place the
//! operator can be (a panel, or a popup), which also makes the hint bar
//! and the `?` help. A key does what its place's table says, and nothing a
//! table does not say.

use super::action::Action;
use super::lists::Focus;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where the keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Panel(Focus),
    Confirm,
    /// A one-line prompt that takes text: the BatchSize.
    Prompt,
    /// `/`: the focused list's find text.
    Find,
    /// `:`: a command line, with completion.
    Command,
    FilterEditor,
    Form,
    /// The help or the messages: a page to read.
    Page,
    Inspector,
}

/// A key, as a binding names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Code(KeyCode),
}

impl Key {
    fn matches(self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Char(c) => !ctrl && event.code == KeyCode::Char(c),
            Key::Ctrl(c) => ctrl && event.code == KeyCode::Char(c),
            Key::Code(code) => !ctrl && event.code == code,
        }
    }
}

/// One binding: its keys, what the hint bar says (empty: not shown
/// there), what the help says, and the action.
pub struct Binding {
    pub keys: &'static [Key],
    pub label: &'static str,
    pub hint: &'static str,
    pub help: &'static str,
    /// Made when the key is pressed (an Action may hold data, so the
    /// tables hold the way to make one).
    pub action: fn() -> Action,
}

pub(crate) const fn bind(
    keys: &'static [Key],
    label: &'static str,
    hint: &'static str,
    help: &'static str,
    action: fn() -> Action,
) -> Binding {
    Binding {
        keys,
        label,
        hint,
        help,
        action,
    }
}

mod tables;

pub use tables::*;

/// The bindings of a place; a panel's own first, then every panel's.
pub fn bindings(context: Context) -> Vec<&'static Binding> {
    let own: &[Binding] = match context {
        Context::Panel(Focus::Mappings) => MAPPINGS,
        Context::Panel(Focus::Batches) => BATCHES,
        Context::Panel(Focus::DeadLetters) => DEAD_LETTERS,
        Context::Panel(Focus::Errors) => ERRORS,
        Context::Panel(Focus::Flow) => FLOW,
        Context::Confirm => CONFIRM,
        Context::Prompt => PROMPT,
        Context::Find => FIND,
        Context::Command => COMMAND,
        Context::FilterEditor => FILTER_EDITOR,
        Context::Form => FORM,
        Context::Page => PAGE,
        Context::Inspector => INSPECTOR,
    };
    let mut all: Vec<&Binding> = own.iter().collect();
    if matches!(context, Context::Panel(_)) {
        all.extend(GLOBAL);
    }
    all
}

/// Whether keys the bindings do not name are text for the popup's field.
fn takes_text(context: Context) -> bool {
    matches!(
        context,
        Context::Prompt | Context::Find | Context::Command | Context::FilterEditor | Context::Form
    )
}

pub fn action(context: Context, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    // `-` shares a binding with `+`, the other way.
    if matches!(context, Context::Panel(Focus::Mappings)) && Key::Char('-').matches(&key) {
        return Some(Action::BatchDown);
    }
    let found = bindings(context)
        .into_iter()
        .find(|b| b.keys.iter().any(|k| k.matches(&key)))
        .map(|b| (b.action)());
    match found {
        Some(action) => Some(action),
        None if takes_text(context) => Some(Action::PromptKey(key)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Key::{Char, Code, Ctrl};

    #[test]
    fn every_binding_is_reachable_by_its_keys() {
        let contexts = Focus::ALL.map(Context::Panel).into_iter().chain([
            Context::Confirm,
            Context::Prompt,
            Context::Find,
            Context::Command,
            Context::FilterEditor,
            Context::Form,
            Context::Page,
            Context::Inspector,
        ]);
        for context in contexts {
            for binding in bindings(context) {
                for key in binding.keys {
                    let event = match *key {
                        Char(c) => KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
                        Ctrl(c) => KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL),
                        Code(code) => KeyEvent::new(code, KeyModifiers::NONE),
                    };
                    let got = action(context, event);
                    let shadowed = matches!(got, Some(ref a) if std::mem::discriminant(a) != std::mem::discriminant(&(binding.action)()));
                    let minus = *key == Char('-');
                    assert!(
                        got.is_some() && (!shadowed || minus),
                        "{context:?}: {} does not reach {:?} ({got:?})",
                        binding.label,
                        (binding.action)()
                    );
                }
            }
        }
    }
}
