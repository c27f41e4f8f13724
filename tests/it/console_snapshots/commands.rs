//! The command line and its completion, the hint bar and help of where
//! you are, a message too long for the title bar, and the keys whose
//! changes ask first.

use super::fixture::{ORDERS, PAYMENTS, SHIPMENTS, demo};
use super::{key, press, render, render_on, type_text};
use crossterm::event::KeyCode;
use mqtrigger::console::action::{Action, Effect};
use mqtrigger::console::app::App;
use mqtrigger::console::keys;
use mqtrigger::console::lists::Focus;
use mqtrigger::console::popup::Mode;

#[test]
fn the_command_line_completes_commands_and_mappings_and_runs_them() {
    let mut app = demo();
    key(&mut app, ':');
    type_text(&mut app, "dis");
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "demo-s");
    press(&mut app, KeyCode::Tab);
    let Mode::Command(line) = &app.mode else {
        panic!("the command line")
    };
    assert_eq!(line.text(), "disable demo-shipments ");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Disable(SHIPMENTS))
    );
    key(&mut app, ':');
    type_text(&mut app, "batch 50 demo-");
    press(&mut app, KeyCode::Tab);
    assert!(
        render(&app).contains("demo-orders  demo-payments  demo-shipments"),
        "the candidates"
    );
    type_text(&mut app, "p");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::SetBatchSize(PAYMENTS, 50))
    );
    key(&mut app, ':');
    type_text(&mut app, "batch 99999");
    assert_eq!(press(&mut app, KeyCode::Enter), None);
    assert!(render(&app).contains("BatchSize 99999 is out of range: it must be 1 to 10000"));
    press(&mut app, KeyCode::Esc);
    key(&mut app, ':');
    type_text(&mut app, "dump /tmp/screen.txt");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Dump("/tmp/screen.txt".into()))
    );
    key(&mut app, ':');
    type_text(&mut app, "frobnicate");
    press(&mut app, KeyCode::Enter);
    assert!(render(&app).contains("unknown command"));
}

#[test]
fn the_hint_bar_shows_the_keys_of_where_you_are() {
    let mut app = demo();
    let last = |app: &App| render_on(app, 120, 40).lines().last().unwrap().to_owned();
    assert!(
        last(&app).contains("e enable") && last(&app).contains("? help"),
        "{}",
        last(&app)
    );
    for _ in 0..2 {
        press(&mut app, KeyCode::Tab);
    }
    let letters = last(&app);
    assert!(
        letters.contains("R republish") && !letters.contains("e enable"),
        "{letters}"
    );
    key(&mut app, ':');
    assert!(last(&app).contains("Tab complete"), "{}", last(&app));
    press(&mut app, KeyCode::Esc);
    assert!(
        render_on(&app, 80, 24)
            .lines()
            .last()
            .unwrap()
            .contains("? help"),
        "? always fits"
    );
}

#[test]
fn help_lists_every_key_of_the_focused_panel() {
    for focus in Focus::ALL {
        let mut app = demo();
        app.focus = focus;
        key(&mut app, '?');
        let screen = render_on(&app, 120, 40);
        for b in keys::bindings(keys::Context::Panel(focus)) {
            assert!(
                screen.contains(b.help),
                "{focus:?}: {} missing:\n{screen}",
                b.help
            );
        }
    }
}

#[test]
fn a_message_fits_the_title_bar_and_messages_keeps_it_whole() {
    let mut app = demo();
    let long = "a new store in .state/demo: the config file's mappings get new UUIDs, and there are no dead letters or batch history yet (if a store was there before, it was deleted or moved)";
    app.update(Action::Done(Ok(long.into())));
    let screen = render_on(&app, 80, 24);
    let title = screen.lines().next().unwrap();
    assert!(title.contains("… (:messages)"), "{title}");
    assert_eq!(
        title.chars().count(),
        82,
        "one line, within the screen (and its quotes)"
    );
    key(&mut app, ':');
    type_text(&mut app, "messages");
    press(&mut app, KeyCode::Enter);
    let screen = render_on(&app, 200, 50).replace(['\n', '"'], "");
    assert!(
        screen.contains("if a store was there before, it was deleted or moved"),
        "{screen}"
    );
}

#[test]
fn disable_and_delete_ask_first_and_keys_become_effects() {
    let mut app = demo();
    assert_eq!(key(&mut app, 'd'), None, "d only asks");
    assert!(render(&app).contains("Disable the mapping of demo-orders?"));
    assert_eq!(key(&mut app, 'y'), Some(Effect::Disable(ORDERS)));
    assert_eq!(key(&mut app, 'e'), Some(Effect::Enable(ORDERS)));
    assert_eq!(key(&mut app, '+'), Some(Effect::SetBatchSize(ORDERS, 10)));
    assert_eq!(key(&mut app, '-'), Some(Effect::SetBatchSize(ORDERS, 2)));
    assert_eq!(key(&mut app, 'x'), None, "x only asks");
    assert!(render(&app).contains("Delete the mapping of demo-orders?"));
    assert_eq!(press(&mut app, KeyCode::Esc), None, "Esc cancels");
    assert!(matches!(app.mode, Mode::Normal));
    key(&mut app, 'q');
    assert!(app.quit);
}
