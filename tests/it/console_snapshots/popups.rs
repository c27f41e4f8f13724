//! The console's popups: the dead-letter and batch inspectors, the batch
//! size prompt, the add-mapping form and the filter editor, each checking
//! what is typed in place (snapshots).

use super::fixture::{ORDERS, RABBIT, demo};
use super::{key, press, render, render_on, type_text};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use mqtrigger::console::action::{Action, Effect};
use mqtrigger::console::keys;
use mqtrigger::console::lists::Focus;
use mqtrigger::console::popup::Mode;
use mqtrigger::engine::BatchId;
use mqtrigger::mapping::SourceAccessType;

#[test]
fn the_dead_letter_inspector_decodes_the_body_and_names_its_short_id() {
    let mut app = demo();
    app.dead_letters.selected = Some(mqtrigger::console::lists::dead_letters::LetterKey::Letter(
        22,
    ));
    app.focus = Focus::DeadLetters;
    key(&mut app, 'g');
    app.dead_letters.selected = Some(mqtrigger::console::lists::dead_letters::LetterKey::Letter(
        22,
    ));
    press(&mut app, KeyCode::Enter);
    let screen = render(&app);
    assert!(
        screen.contains("the first 8 hex digits of the body's SHA-256"),
        "{screen}"
    );
    assert!(screen.contains("OrderError: order 13 is bad"), "{screen}");
    insta::assert_snapshot!(screen);
    // r and R act on that letter; w saves its body.
    assert_eq!(
        key(&mut app, 'w'),
        Some(Effect::Save(
            "dead-letter-22.body".into(),
            bytes::Bytes::from_static(br#"{"order":13,"bad":true}"#)
        ))
    );
    key(&mut app, 'r');
    assert!(matches!(
        app.mode,
        Mode::Confirm(Effect::Replay(ORDERS, 22))
    ));
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Enter);
    key(&mut app, 'R');
    let Mode::Confirm(effect) = &app.mode else {
        panic!("R asks first")
    };
    let asked = mqtrigger::console::popup::confirm::question(effect, &app.view);
    assert_eq!(
        asked,
        "Publish this dead letter back to demo-orders, its source queue? (y/n)"
    );
    assert_eq!(key(&mut app, 'y'), Some(Effect::Republish(ORDERS, 22)));
}

#[test]
fn the_batch_size_prompt_starts_empty_and_validates_in_place() {
    let mut app = demo();
    key(&mut app, 'b');
    assert!(render(&app).contains("5 now"), "the current size is a hint");
    type_text(&mut app, "0");
    assert!(render(&app).contains("BatchSize 0 is out of range"));
    assert_eq!(press(&mut app, KeyCode::Enter), None, "0 is not applied");
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "20000");
    insta::assert_snapshot!(render_on(&app, 80, 24));
    for _ in 0..5 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "7");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::SetBatchSize(ORDERS, 7))
    );
}

#[test]
fn the_add_mapping_form_checks_each_field_and_creates_the_mapping() {
    let mut app = demo();
    key(&mut app, 'n');
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        None,
        "the queue is required"
    );
    type_text(&mut app, "refunds");
    press(&mut app, KeyCode::Tab); // FunctionName
    press(&mut app, KeyCode::Tab); // BatchSize
    for _ in 0..3 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "0");
    insta::assert_snapshot!(render(&app));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        None,
        "BatchSize 0 is refused"
    );
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "25");
    for _ in 0..4 {
        press(&mut app, KeyCode::Tab); // window, secret, vhost, filter
    }
    type_text(&mut app, r#"{"data":{"kind":"order"}}"#);
    assert!(
        render(&app).contains("inside a list"),
        "the filter is checked in place"
    );
    assert_eq!(press(&mut app, KeyCode::Enter), None);
    for _ in 0..9 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, r#"["order"]}}"#);
    let Some(Effect::Create(spec)) = press(&mut app, KeyCode::Enter) else {
        panic!("the form should create")
    };
    assert_eq!(spec.queues, ["refunds"]);
    assert_eq!(spec.batch_size, Some(25));
    assert_eq!(spec.event_source_arn, RABBIT);
    assert_eq!(spec.function_name, "orders");
    assert_eq!(spec.access(SourceAccessType::VirtualHost), Some("/"));
    assert_eq!(
        spec.filter_criteria.unwrap().patterns(),
        [r#"{"data":{"kind":["order"]}}"#]
    );
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn a_batch_opens_on_the_event_the_function_saw_and_an_error_leads_to_its_batch() {
    let mut app = demo();
    press(&mut app, KeyCode::Tab); // batches
    press(&mut app, KeyCode::Down); // batch 3's last try
    press(&mut app, KeyCode::Enter);
    let Mode::InspectBatch(open) = &app.mode else {
        panic!("the batch inspector is open")
    };
    assert_eq!((open.key.batch, open.key.attempt), (BatchId(3), 6));
    insta::assert_snapshot!(render(&app));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    let Mode::InspectBatch(open) = &app.mode else {
        panic!()
    };
    assert_eq!(open.scroll, 2, "the inspector scrolls");
    let event = open.event.clone();
    assert_eq!(
        key(&mut app, 'w'),
        Some(Effect::Save("batch-3-6.json".into(), event))
    );
    press(&mut app, KeyCode::Esc);
    // The Errors panel: Enter on order 4's error selects its newest batch.
    app.focus = Focus::Errors;
    // Newest first: order 13, the flaky one, order 4.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.focus, Focus::Batches);
    let listed = app.batch_list();
    let at = listed.index(&app.batches.selected).unwrap();
    assert_eq!(
        (listed.keys[at].batch, listed.keys[at].attempt),
        (BatchId(1), 6)
    );
}

#[test]
fn the_filter_editor_validates_as_you_type_and_dry_runs() {
    let mut app = demo();
    key(&mut app, 'f');
    type_text(&mut app, r#"{"data":{"order":7"#);
    assert!(render(&app).contains("not JSON yet"));
    let ctrl_s = KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL);
    let apply = keys::action(app.context(), ctrl_s).unwrap();
    assert!(matches!(apply, Action::Apply));
    assert_eq!(
        app.update(apply.clone()),
        None,
        "an unfinished pattern is not applied"
    );
    type_text(&mut app, "}}");
    assert!(render(&app).contains("must be inside a list"));
    press(&mut app, KeyCode::Esc);
    key(&mut app, 'f');
    type_text(&mut app, r#"{"data":{"order":[13]}}"#);
    insta::assert_snapshot!(render(&app));
    let Some(Effect::SetFilter(uuid, Some(criteria))) = app.update(apply) else {
        panic!("Ctrl-s applies a valid pattern")
    };
    assert_eq!(uuid, ORDERS);
    assert_eq!(criteria.patterns(), [r#"{"data":{"order":[13]}}"#]);
}
