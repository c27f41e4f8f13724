//! The console drawn on ratatui's TestBackend, from a fixed state: the
//! demo's three mappings (scripts/demo) with failures, retries, dead
//! letters and filtered messages, at 80×24, 120×40 and 200×50, and what
//! each key does there. This file holds how a test draws the screen and
//! presses keys; the fixed state is `fixture.rs`'s.

mod commands;
mod demo;
mod fixture;
mod lists;
mod popups;
mod status;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use mqtrigger::console::action::Effect;
use mqtrigger::console::app::App;
use mqtrigger::console::{keys, ui};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn render_on(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

fn render(app: &App) -> String {
    render_on(app, 120, 40)
}

/// The screen as one line of words: a sentence wrapped over rows reads whole.
fn flat(screen: &str) -> String {
    screen
        .replace(['"', '│', '\n'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn press(app: &mut App, code: KeyCode) -> Option<Effect> {
    let action = keys::action(app.context(), KeyEvent::new(code, KeyModifiers::NONE))?;
    app.update(action)
}

fn key(app: &mut App, c: char) -> Option<Effect> {
    press(app, KeyCode::Char(c))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, c);
    }
}

/// The mappings' rows as the screen shows them.
fn rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| {
            l.contains("demo-orders ")
                || l.contains("demo-payments ")
                || l.contains("demo-shipments ")
        })
        .filter(|l| l.contains("Enabled"))
        .collect()
}
