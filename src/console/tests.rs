//! The console on the engine itself (an in-memory broker, paused time),
//! drawn on ratatui's TestBackend: what the screen says is what the engine
//! counted.

use super::app::App;
use super::feed::EngineFeed;
use super::ui;
use super::view::Choices;
use crate::engine::tests::{Function, Harness, Setup, numbered};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Duration;

/// The screen's lines.
fn screen(app: &App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(160, 30)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer();
    buffer
        .content
        .chunks(usize::from(buffer.area.width))
        .map(|row| row.iter().map(|c| c.symbol()).collect())
        .collect()
}

/// The number in `column` of the mappings table's first row. Numbers and
/// their headers are right-aligned: the number ends where its header does.
fn cell(app: &App, column: &str) -> String {
    let lines = screen(app);
    let header = lines
        .iter()
        .position(|l| l.contains("IN FLIGHT"))
        .expect("the mappings table's header");
    let at = lines[header]
        .find(&format!(" {column} "))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no column {column} in {}", lines[header]));
    // In characters: the borders are more than a byte each.
    let end = lines[header][..at].chars().count() + column.chars().count();
    let row: Vec<char> = lines[header + 1].chars().collect();
    let before: String = row[..end.min(row.len())].iter().collect();
    before
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// The first row's STATE, the table's first column.
fn state(app: &App) -> String {
    let lines = screen(app);
    let header = lines
        .iter()
        .position(|l| l.contains("IN FLIGHT"))
        .expect("the mappings table's header");
    lines[header + 1]
        .trim_start_matches('│')
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn console(h: &Harness) -> (App, EngineFeed) {
    let app = App::new(
        Choices::from_config(h.control.config()),
        h.control.config().engine.max_redeliveries,
    );
    let feed = EngineFeed::start(&h.control);
    (app, feed)
}

/// Follows the engine as the console does, but slowly (a frame every
/// 20 ms of paused time), until `done` holds and nothing is left queued.
async fn follow(
    h: &Harness,
    app: &mut App,
    feed: &mut EngineFeed,
    done: impl Fn(&Harness) -> bool,
) {
    loop {
        match tokio::time::timeout(Duration::from_millis(50), feed.recv()).await {
            Ok(Some(item)) => feed.apply(app, item),
            Ok(None) => panic!("the engine is gone"),
            Err(_idle) if done(h) => return,
            Err(_idle) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_flood_of_20000_messages_the_ok_column_says_20000() {
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: "BatchSize = 1\nScalingConfig = { MaximumConcurrency = 10 }",
            ..Setup::default()
        },
    )
    .await;
    let (mut app, mut feed) = console(&h);
    h.publish(numbered(20_000));
    follow(&h, &mut app, &mut feed, |h| {
        h.broker.acked().len() == 20_000
    })
    .await;
    assert!(
        feed.resyncs() > 0,
        "the console fell behind the stream (else this test proves nothing)"
    );
    assert_eq!(cell(&app, "OK"), "20000");
    assert_eq!(cell(&app, "IN FLIGHT"), "0");
    assert_eq!(cell(&app, "FAILED"), "0");
}

#[tokio::test(start_paused = true)]
async fn with_maximum_concurrency_3_and_a_4_s_function_in_flight_says_3() {
    let h = Harness::start(
        Function::new(Duration::from_secs(4), |_| Ok(())),
        Setup {
            mapping: "BatchSize = 1\nScalingConfig = { MaximumConcurrency = 3 }",
            bodies: numbered(9),
            ..Setup::default()
        },
    )
    .await;
    let (mut app, mut feed) = console(&h);
    follow(&h, &mut app, &mut feed, |h| {
        h.stats().in_flight_batches == 3
    })
    .await;
    assert_eq!(cell(&app, "IN FLIGHT"), "3");
    // Half-way through the first round, and after one round ended.
    follow(&h, &mut app, &mut feed, |h| h.broker.acked().len() == 3).await;
    assert_eq!(cell(&app, "IN FLIGHT"), "3");
    assert_eq!(cell(&app, "OK"), "3");
    follow(&h, &mut app, &mut feed, |h| h.broker.acked().len() == 9).await;
    assert_eq!(cell(&app, "IN FLIGHT"), "0");
    assert_eq!(cell(&app, "OK"), "9");
}

/// Runs what a key asks of the engine, as the console's loop does, and
/// hands what came of it back to the app.
async fn press(app: &mut App, h: &Harness, action: super::action::Action) {
    if let Some(effect) = app.update(action) {
        let (tell, mut told) = tokio::sync::mpsc::unbounded_channel();
        let done = super::apply(&h.control, effect, tell).await;
        while let Ok(progress) = told.try_recv() {
            app.update(progress);
        }
        app.update(done);
    }
}

#[tokio::test(start_paused = true)]
async fn p_pauses_dot_steps_one_batch_and_p_resumes_and_state_says_paused() {
    use super::action::Action;
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: "BatchSize = 5\nMaximumBatchingWindowInSeconds = 1",
            ..Setup::default()
        },
    )
    .await;
    let (mut app, mut feed) = console(&h);
    follow(&h, &mut app, &mut feed, |h| h.control.list().is_ok()).await;
    press(&mut app, &h, Action::PauseOrResume).await;
    follow(&h, &mut app, &mut feed, |h| h.mapping().paused).await;
    assert_eq!(state(&app), "Paused");
    h.publish(numbered(10));
    follow(&h, &mut app, &mut feed, |h| {
        matches!(
            h.stats().backlog,
            Some((crate::source::backlog::Backlog::Messages(10), _))
        )
    })
    .await;
    assert_eq!(cell(&app, "BACKLOG"), "10↑", "10 waiting, up from 0");
    press(&mut app, &h, Action::Step).await;
    follow(&h, &mut app, &mut feed, |h| h.broker.acked().len() == 5).await;
    assert_eq!(cell(&app, "OK"), "5");
    assert_eq!(state(&app), "Paused");
    press(&mut app, &h, Action::PauseOrResume).await;
    follow(&h, &mut app, &mut feed, |h| h.broker.acked().len() == 10).await;
    assert_eq!(state(&app), "Enabled");
    assert_eq!(cell(&app, "OK"), "10");
}

#[tokio::test(start_paused = true)]
async fn t_on_a_dead_letter_shows_its_history() {
    use super::action::Action;
    let h = Harness::start(
        Function::failing_on(|b| b == "m1"),
        Setup {
            mapping: "BatchSize = 1",
            engine: "max_redeliveries = 1",
            bodies: numbered(1),
            ..Setup::default()
        },
    )
    .await;
    let (mut app, mut feed) = console(&h);
    follow(&h, &mut app, &mut feed, |h| h.stats().dead_lettered == 1).await;
    // The dead letters, each letter listed (not folded), and ask.
    app.focus = super::lists::Focus::DeadLetters;
    app.update(Action::Group);
    app.update(Action::First);
    press(&mut app, &h, Action::History).await;
    let text = screen(&app).join("\n");
    assert!(text.contains("History of m1 in q"), "{text}");
    assert!(text.contains("try 1 failed after"), "{text}");
    assert!(text.contains("try 2 failed after"), "{text}");
    assert!(
        text.contains("dead-lettered to the memory broker's dead letters"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn delete_letters_asks_how_many_shows_progress_and_sums_up() {
    use super::action::Action;
    use super::popup::Mode;
    let h = Harness::start(
        Function::failing_on(|_| true),
        Setup {
            mapping: "BatchSize = 1",
            engine: "max_redeliveries = 0",
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    let (mut app, mut feed) = console(&h);
    follow(&h, &mut app, &mut feed, |h| h.stats().dead_lettered == 3).await;
    app.focus = super::lists::Focus::DeadLetters;
    app.update(Action::AskCommand);
    for c in "delete-letters".chars() {
        app.update(Action::PromptKey(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        )));
    }
    app.update(Action::Confirm);
    let text = screen(&app).join("\n");
    assert!(
        text.contains("Delete the 3 dead letters listed from the journal?"),
        "{text}"
    );
    let effect = app.update(Action::Confirm).expect("the bulk effect");
    assert!(matches!(app.mode, Mode::Progress(p) if p.total == 3 && p.done == 0));
    let (tell, mut told) = tokio::sync::mpsc::unbounded_channel();
    let done = super::apply(&h.control, effect, tell).await;
    let mut seen = Vec::new();
    while let Ok(progress) = told.try_recv() {
        app.update(progress.clone());
        if let Action::Progress(d, t) = progress {
            seen.push((d, t));
        }
    }
    assert_eq!(seen, [(1, 3), (2, 3), (3, 3)]);
    assert!(screen(&app).join("\n").contains("3 of 3"));
    app.update(done);
    assert!(
        matches!(app.mode, Mode::Normal),
        "the summary closes the bar"
    );
    assert!(
        screen(&app)[0].contains("3 of 3 deleted"),
        "{}",
        screen(&app)[0]
    );
    assert!(
        h.control
            .store()
            .dead_letters(Some(h.mapping), 10)
            .unwrap()
            .is_empty()
    );
}
