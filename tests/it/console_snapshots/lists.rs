//! The console's lists: dead letters folded by error and unfolded, errors
//! counted once each, zoom, find, sort, a click on a scrolled table, and
//! each batch's end settling its own row whatever the order.

use super::fixture::{PAYMENTS, RABBIT, demo, event_of, mapping, orders};
use super::{key, press, render, render_on, type_text};
use chrono::Utc;
use crossterm::event::KeyCode;
use mqtrigger::console::action::Action;
use mqtrigger::console::app::{App, Outcome};
use mqtrigger::console::lists::Focus;
use mqtrigger::console::popup::Mode;
use mqtrigger::console::ui;
use mqtrigger::engine::{BatchId, CloseReason, EngineEvent};
use mqtrigger::mapping::Mapping;
use std::time::Duration;
use uuid::Uuid;

#[test]
fn dead_letters_fold_by_error_and_unfold_into_rows_that_differ() {
    let mut app = demo();
    let screen = render(&app);
    assert!(
        screen.contains("▸ ×5") && screen.contains("OrderError: order 13 is bad"),
        "{screen}"
    );
    // Tab to the dead letters, Enter unfolds the newest group.
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::DeadLetters);
    press(&mut app, KeyCode::Enter);
    let screen = render_on(&app, 200, 50);
    let letters: Vec<&str> = screen.lines().filter(|l| l.contains("  sha:")).collect();
    assert_eq!(letters.len(), 5, "{screen}");
    let distinct: std::collections::HashSet<_> = letters.iter().collect();
    assert_eq!(
        distinct.len(),
        5,
        "each letter's row is its own: {letters:#?}"
    );
    assert!(
        letters
            .iter()
            .any(|l| l.contains(r#"{"order":13,"bad":true}"#)),
        "{letters:#?}"
    );
    insta::assert_snapshot!(screen);
    // Enter on a letter inspects it; g lists every letter unfolded.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert!(matches!(app.mode, Mode::Inspect(ref open) if open.id == 24));
    app.update(Action::Back);
    key(&mut app, 'g');
    assert!(!render(&app).contains("▸ ×"));
}

#[test]
fn errors_read_as_errors_each_once_with_how_often() {
    let app = demo();
    let screen = render_on(&app, 200, 50);
    let errors: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("×6") && l.contains("ago"))
        .collect();
    assert_eq!(errors.len(), 2, "order 4 and order 13, folded:\n{screen}");
    assert!(
        screen.contains("×1")
            && screen.contains("Flaky: order 7 hit a flaky dependency and failed once"),
        "{screen}"
    );
    assert!(
        !screen.contains("errorType"),
        "no raw JSON on the main screen:\n{screen}"
    );
}

/// At 80×24 an error longer than its panel is cut; how often and how
/// lately it failed stay on every row.
#[test]
fn a_narrow_errors_panel_cuts_a_long_error_and_keeps_its_count() {
    let screen = render_on(&demo(), 80, 24);
    let rows: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("OrderError") || l.contains("Flaky"))
        .filter_map(|l| l.split('│').rev().find(|cell| cell.contains("ago")))
        .collect();
    assert_eq!(rows.len(), 3, "three errors with their counts:\n{screen}");
    assert!(
        rows.iter()
            .any(|r| r.contains("×1") && r.contains("Flaky: order 7") && r.contains('…')),
        "the long one cut, its count kept:\n{screen}"
    );
}

#[test]
fn z_zooms_the_focused_panel_and_back() {
    let mut app = demo();
    press(&mut app, KeyCode::Tab); // batches
    key(&mut app, 'z');
    let screen = render_on(&app, 120, 40);
    assert!(screen.contains("[zoom: Batches, z back]"), "{screen}");
    assert!(!screen.contains("Mappings ("), "{screen}");
    assert_eq!(
        screen.matches("#3 ").count(),
        6,
        "every try of batch 3:\n{screen}"
    );
    key(&mut app, 'z');
    assert!(render(&app).contains("Mappings ("));
}

#[test]
fn slash_finds_in_the_focused_list() {
    let mut app = demo();
    for _ in 0..2 {
        press(&mut app, KeyCode::Tab);
    }
    key(&mut app, 'g'); // each letter
    key(&mut app, '/');
    type_text(&mut app, "\"order\":13");
    press(&mut app, KeyCode::Enter);
    let screen = render(&app);
    assert!(screen.contains("/\"order\":13 1 of 10"), "{screen}");
    assert_eq!(app.letter_list().keys.len(), 1);
    // Esc clears it; the mappings' own find is another.
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.letter_list().keys.len(), 10);
    app.focus = Focus::Mappings;
    key(&mut app, '/');
    type_text(&mut app, "activemq");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.visible().len(), 1);
    assert_eq!(app.selected_mapping().unwrap().uuid, PAYMENTS);
}

#[test]
fn s_sorts_by_each_column_and_the_title_says_so() {
    let mut app = demo();
    key(&mut app, 's'); // STATE
    assert!(render(&app).contains("sort: STATE ▲"));
    for _ in 0..30 {
        key(&mut app, 's');
        if render(&app).contains("sort: DEAD ▼") {
            break;
        }
    }
    assert!(render(&app).contains("sort: DEAD ▼"), "s reaches DEAD");
    let queues: Vec<&str> = app.visible().iter().map(|m| m.spec.queue()).collect();
    assert_eq!(
        queues,
        ["demo-orders", "demo-shipments", "demo-payments"],
        "10, 3, 0 dead"
    );
    key(&mut app, 'S');
    assert!(render(&app).contains("sort: DEAD ▲"));
    // The batches sort by their own columns.
    press(&mut app, KeyCode::Tab);
    key(&mut app, 's');
    assert!(
        render(&app).contains("Batches of demo-payments (1) · sort: BATCH ▲"),
        "{}",
        render(&app)
    );
}

#[test]
fn a_click_in_a_scrolled_table_selects_the_row_under_the_pointer() {
    let mut app = demo();
    let many: Vec<Mapping> = (0..30)
        .map(|i| {
            mapping(
                Uuid::from_u128(100 + i),
                RABBIT,
                &format!("queue-{i:02}"),
                "orders",
                10,
            )
        })
        .collect();
    app.update(Action::Loaded {
        mappings: many,
        dead_letters: vec![],
    });
    for _ in 0..25 {
        press(&mut app, KeyCode::Down);
    }
    assert_eq!(app.selected_mapping().unwrap().spec.queue(), "queue-25");
    let screen = ratatui::layout::Rect::new(0, 0, 120, 40);
    let lines: Vec<String> = render(&app).lines().map(str::to_owned).collect();
    // The table scrolled to show the selection: its first row on screen is
    // no longer queue-00. Clicking it selects what it shows.
    let first_row = &lines[3];
    assert!(!first_row.contains("queue-00"), "{first_row}");
    let index = ui::mapping_row_at(screen, &app, 10, 3).unwrap();
    app.update(Action::Select(index));
    let chosen = app.selected_mapping().unwrap().spec.queue().to_owned();
    assert!(
        first_row.contains(&chosen),
        "clicked `{first_row}`, selected {chosen}"
    );
    assert_eq!(
        ui::mapping_row_at(screen, &app, 10, 2),
        None,
        "the header is not a row"
    );
    assert_eq!(
        ui::mapping_row_at(screen, &app, 0, 3),
        None,
        "the border is not a row"
    );
}

#[test]
fn each_end_settles_its_own_batch_whatever_the_order() {
    let mut app = demo();
    let started = |batch, messages| EngineEvent::BatchStarted {
        mapping: PAYMENTS,
        batch: BatchId(batch),
        messages,
        bytes: 100,
        attempt: 1,
        closed_by: CloseReason::Count,
        at: Utc::now(),
        event: event_of(&orders(1..=1, None)),
    };
    let succeeded = |batch, messages, ms| EngineEvent::BatchSucceeded {
        mapping: PAYMENTS,
        batch: BatchId(batch),
        messages,
        attempts: 1,
        latency: Duration::from_millis(ms),
    };
    // With MaximumConcurrency > 1 a later batch can end first.
    for e in [
        started(10, 3),
        started(11, 4),
        started(12, 5),
        succeeded(12, 5, 50),
    ] {
        app.update(Action::Engine(e));
    }
    let rows = |app: &App| -> Vec<_> {
        app.stats_of(PAYMENTS)
            .recent
            .iter()
            .take(3)
            .map(|b| (b.messages, b.outcome.clone(), b.latency_ms))
            .collect()
    };
    assert_eq!(
        rows(&app),
        [
            (5, Outcome::Ok, Some(50)),
            (4, Outcome::InFlight, None),
            (3, Outcome::InFlight, None)
        ]
    );
    assert_eq!(app.stats_of(PAYMENTS).in_flight_batches, 2);
    for e in [succeeded(10, 3, 30), succeeded(11, 4, 40)] {
        app.update(Action::Engine(e));
    }
    assert_eq!(
        rows(&app),
        [
            (5, Outcome::Ok, Some(50)),
            (4, Outcome::Ok, Some(40)),
            (3, Outcome::Ok, Some(30))
        ]
    );
    assert_eq!(app.stats_of(PAYMENTS).in_flight_batches, 0);
}
