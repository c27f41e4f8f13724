//! The console drawn on ratatui's TestBackend, from a fixed state.

use chrono::{TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use mqtrigger::console::action::{Action, Effect};
use mqtrigger::console::app::{App, Outcome};
use mqtrigger::console::{keys, ui};
use mqtrigger::engine::{BatchId, CloseReason, EngineEvent};
use mqtrigger::mapping::{
    Mapping, MappingSpec, SourceAccessConfiguration, SourceAccessType, State, StateTransitionReason,
};
use mqtrigger::store::DeadLetter;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Duration;
use uuid::Uuid;

fn mapping(n: u128, queue: &str) -> Mapping {
    let spec = MappingSpec {
        function_name: "echo".into(),
        event_source_arn: "arn:aws:mq:us-east-1:000000000000:broker:b:b-1".into(),
        queues: vec![queue.into()],
        batch_size: Some(10),
        maximum_batching_window_in_seconds: Some(1),
        enabled: None,
        filter_criteria: None,
        source_access_configurations: vec![SourceAccessConfiguration {
            kind: SourceAccessType::BasicAuth,
            uri: "s".into(),
        }],
        scaling_config: None,
    };
    let mut m = Mapping::new(
        spec,
        "arn:aws:lambda:local:000000000000:function:echo".into(),
    );
    m.uuid = Uuid::from_u128(n);
    m
}

/// An `aws:rmq` event of `n` copies of {"order":1}.
fn batch_event(n: usize) -> bytes::Bytes {
    let record = r#"{"basicProperties":{"contentType":"application/json","bodySize":11},"redelivered":false,"data":"eyJvcmRlciI6MX0="}"#;
    let records = vec![record; n].join(",");
    format!(r#"{{"eventSource":"aws:rmq","eventSourceArn":"arn:x","rmqMessagesByQueue":{{"orders::/":[{records}]}}}}"#).into()
}

/// What the add-mapping form checks against: a config file's text.
fn choices(toml: &str) -> mqtrigger::console::form::Choices {
    let config = mqtrigger::config::Config::parse(std::path::Path::new("t.toml"), toml)
        .expect("the test's config is valid");
    mqtrigger::console::form::Choices::from_config(&config)
}

/// Two mappings, one stopped with a stop code, a batch history and a dead letter.
fn app() -> App {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let orders = mapping(1, "orders");
    let mut payments = mapping(2, "payments");
    payments.state = State::Disabled;
    payments.state_transition_reason = StateTransitionReason::EventSourceAuthnError;
    payments.state_detail = Some(
        "RabbitMQ refused the login for user 'app' at 127.0.0.1:5672 — check the secret".into(),
    );
    payments.last_processing_result = "PROBLEM: EVENT_SOURCE_AUTHN_ERROR".into();
    let mut app = App::new(
        choices(
            r#"
[[brokers]]
name = "local"
engine = "rabbitmq"
arn = "arn:aws:mq:us-east-1:000000000000:broker:b:b-1"
endpoints = ["amqp://127.0.0.1:5672"]
"#,
        ),
        mqtrigger::mapping::MAX_REDELIVERIES,
    );
    app.update(Action::Loaded {
        mappings: vec![payments, orders.clone()],
        dead_letters: vec![DeadLetter {
            id: 1,
            mapping: orders.uuid,
            at: now,
            queue: "orders".into(),
            message_id: Some("m-7".into()),
            attempts: 6,
            reason: "function failed 6 times (maximumRedeliveries reached)".into(),
            error: Some("{\"errorType\":\"OrderInvalid\"}".into()),
            destination: "orders.dlq".into(),
            record: b"{\"data\":\"eyJvcmRlciI6N30=\"}".to_vec(),
            body: b"{\"order\":7}".to_vec(),
            moved: true,
            amqp_headers: None,
        }],
    });
    // Batches are stamped by the engine; pinned here for a stable picture.
    let at = now - chrono::Duration::seconds(3);
    let events = [
        EngineEvent::BatchStarted {
            mapping: orders.uuid,
            batch: BatchId(1),
            messages: 10,
            bytes: 3200,
            attempt: 1,
            closed_by: CloseReason::Count,
            at,
            event: batch_event(10),
        },
        EngineEvent::BatchSucceeded {
            mapping: orders.uuid,
            batch: BatchId(1),
            messages: 10,
            attempts: 1,
            latency: Duration::from_millis(42),
        },
        EngineEvent::BatchStarted {
            mapping: orders.uuid,
            batch: BatchId(2),
            messages: 1,
            bytes: 320,
            attempt: 6,
            closed_by: CloseReason::Window,
            at,
            event: batch_event(1),
        },
        EngineEvent::BatchFailed {
            mapping: orders.uuid,
            batch: BatchId(2),
            messages: 1,
            attempt: 6,
            error: "OrderInvalid".into(),
            latency: Duration::from_millis(7),
        },
        EngineEvent::DeadLettered {
            mapping: orders.uuid,
            batch: Some(BatchId(2)),
            messages: 1,
            reason: "retries".into(),
        },
    ];
    for e in events {
        app.update(Action::Engine(e));
    }
    app.now = now;
    app
}

fn render(app: &App) -> String {
    render_on(app, 110, 24)
}

fn render_on(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

fn key(c: char) -> Action {
    keys::action(
        &App::default().mode,
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
    )
    .unwrap()
}

#[test]
fn the_main_screen() {
    insta::assert_snapshot!(render(&app()));
}

/// Attached to a read-only service that then went away: the title bar says
/// where, that nothing may change, and that this is the last picture; a
/// snapshot from the service (it came back) clears the word and replaces
/// the counts, the rates starting over rather than counting the gap.
#[test]
fn an_attached_console_says_where_read_only_and_lost() {
    use mqtrigger::engine::{FeedItem, Snapshot};
    let mut app = app();
    app.endpoint = Some("http://ops-1:9001".into());
    app.readonly = true;
    let before = app.stats.clone();
    app.update(Action::Feed(FeedItem::Lost(
        "mqtrigger at http://ops-1:9001 closed the event stream (stopped or restarting)".into(),
    )));
    insta::assert_snapshot!(render(&app));
    assert_eq!(app.stats, before, "the last picture stays while lost");

    let mut snapshot = Snapshot {
        mappings: app.mappings.clone(),
        ..Snapshot::default()
    };
    let orders = app.mappings[0].uuid;
    // Its rate was following a count of 10 before the gap.
    app.stats.mappings.entry(orders).or_default().succeeded = 10;
    app.update(Action::Tick);
    let fresh = mqtrigger::engine::MappingStats {
        succeeded: 25,
        ..Default::default()
    };
    snapshot.stats.mappings.insert(orders, fresh);
    app.update(Action::Feed(FeedItem::Synced(Box::new(snapshot))));
    assert!(app.lost.is_none());
    assert_eq!(app.stats.of(orders).succeeded, 25);
    app.update(Action::Tick);
    assert_eq!(
        app.rates[&orders].per_second.iter().sum::<u64>(),
        0,
        "a rate starts at the count first seen after the gap"
    );
    assert!(!render(&app).contains("LOST"));
}

/// Several instances on one store: the table says which runs each mapping
/// (`*` the one this console drives, `none` while none does), and the
/// counts of one run elsewhere are that instance's, as it wrote them.
#[test]
fn on_a_shared_store_the_table_says_which_instance_runs_each_mapping() {
    let mut app = app();
    let (here, there) = (
        Uuid::from_u128(0xa1b2c3d4_0000_4000_8000_000000000001),
        Uuid::from_u128(0x5e6f7a8b_0000_4000_8000_000000000002),
    );
    app.instance = Some(here);
    let [orders, payments] = [1, 2].map(Uuid::from_u128);
    for (mapping, instance) in [(orders, Some(here)), (payments, Some(there))] {
        app.update(Action::Feed(mqtrigger::engine::FeedItem::Event(
            EngineEvent::Placed { mapping, instance },
        )));
    }
    let theirs = mqtrigger::engine::MappingStats {
        received: 42,
        succeeded: 40,
        dead_lettered: 2,
        ..Default::default()
    };
    app.update(Action::Feed(mqtrigger::engine::FeedItem::Event(
        EngineEvent::Counts {
            mapping: payments,
            stats: Box::new(theirs),
        },
    )));
    // Wide enough for every column at its width.
    insta::assert_snapshot!(render_on(&app, 180, 16));
    app.update(Action::Feed(mqtrigger::engine::FeedItem::Event(
        EngineEvent::Placed {
            mapping: payments,
            instance: None,
        },
    )));
    let screen = render_on(&app, 180, 16);
    assert!(screen.contains("Disabled  none "), "{screen}");
}

#[test]
fn a_stopped_mapping_says_what_to_fix() {
    let mut app = app();
    app.update(Action::Down); // payments, below orders
    insta::assert_snapshot!(render(&app));
}

#[test]
fn the_dead_letter_inspector_decodes_the_body() {
    let mut app = app();
    app.update(Action::Inspect);
    insta::assert_snapshot!(render(&app));
}

#[test]
fn help_is_made_from_the_key_map() {
    let mut app = app();
    app.update(key('?'));
    let screen = render(&app);
    for (keys, what) in keys::KEYMAP {
        assert!(
            screen.contains(keys) && screen.contains(what),
            "{keys} {what} missing:\n{screen}"
        );
    }
}

#[test]
fn the_batch_size_prompt_validates_in_place() {
    let mut app = app();
    app.update(key('b'));
    let backspace = KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE);
    app.update(Action::PromptKey(backspace));
    app.update(Action::PromptKey(backspace));
    for c in "20000".chars() {
        app.update(Action::PromptKey(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )));
    }
    insta::assert_snapshot!(render(&app));
    assert_eq!(
        app.update(Action::Confirm),
        None,
        "an invalid size is not applied"
    );
    for _ in 0..5 {
        app.update(Action::PromptKey(backspace));
    }
    app.update(Action::PromptKey(KeyEvent::new(
        KeyCode::Char('5'),
        KeyModifiers::NONE,
    )));
    app.update(Action::PromptKey(KeyEvent::new(
        KeyCode::Char('0'),
        KeyModifiers::NONE,
    )));
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::SetBatchSize(Uuid::from_u128(1), 50))
    );
}

#[test]
fn the_batch_size_prompt_starts_empty_so_what_is_typed_is_the_new_size() {
    let mut app = app();
    app.update(key('b'));
    assert!(
        render(&app).contains("10 now"),
        "the current size is a hint"
    );
    type_text(&mut app, "0");
    assert!(render(&app).contains("BatchSize 0 is out of range"));
    assert_eq!(app.update(Action::Confirm), None, "0 is not 100");
    app.update(Action::PromptKey(KeyEvent::new(
        KeyCode::Backspace,
        KeyModifiers::NONE,
    )));
    type_text(&mut app, "7");
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::SetBatchSize(Uuid::from_u128(1), 7))
    );
}

#[test]
fn r_and_shift_r_in_the_dead_letter_inspector_act_on_that_letter() {
    use mqtrigger::console::app::Mode;
    let press = |app: &App, c: char| {
        keys::action(
            &app.mode,
            KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
        )
        .unwrap()
    };
    let mut app = app();
    app.update(Action::Inspect);
    assert!(matches!(app.mode, Mode::Inspect(1)));
    app.update(press(&app, 'r'));
    assert!(matches!(app.mode, Mode::Confirm(Effect::Replay(_, 1))));
    app.update(Action::Back);
    app.update(Action::Inspect);
    app.update(press(&app, 'R'));
    assert!(matches!(app.mode, Mode::Confirm(Effect::Republish(_, 1))));
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::Republish(Uuid::from_u128(1), 1))
    );
}

#[test]
fn disable_asks_first_and_keys_become_effects() {
    let mut app = app();
    assert_eq!(app.update(key('d')), None, "d only asks");
    assert!(render(&app).contains("Disable this mapping?"));
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::Disable(Uuid::from_u128(1)))
    );
    assert_eq!(
        app.update(key('e')),
        Some(Effect::Enable(Uuid::from_u128(1)))
    );
    assert_eq!(
        app.update(key('+')),
        Some(Effect::SetBatchSize(Uuid::from_u128(1), 20))
    );
    assert_eq!(
        app.update(key('-')),
        Some(Effect::SetBatchSize(Uuid::from_u128(1), 5))
    );
    assert_eq!(app.update(key('x')), None, "x only asks");
    let screen = render(&app);
    assert!(screen.contains("Delete this mapping?"), "{screen}");
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::Delete(Uuid::from_u128(1)))
    );
    assert_eq!(app.update(key('r')), None, "r only asks");
    assert!(render(&app).contains("this dead letter's record"));
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::Replay(Uuid::from_u128(1), 1))
    );
    app.update(key('R'));
    assert_eq!(app.update(Action::Back), None, "Esc cancels");
    assert_eq!(app.update(key('R')), None);
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::Republish(Uuid::from_u128(1), 1))
    );
    app.update(key('q'));
    assert!(app.quit);
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(Action::PromptKey(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )));
    }
}

#[test]
fn filter_sort_and_the_command_line() {
    let mut app = app();
    app.update(key('/'));
    type_text(&mut app, "pay");
    app.update(Action::Confirm);
    assert_eq!(app.visible().len(), 1);
    assert_eq!(app.selected_mapping().unwrap().spec.queue(), "payments");
    insta::assert_snapshot!(render(&app));
    app.update(key('/'));
    app.update(Action::Back);
    assert_eq!(app.visible().len(), 2, "Esc clears the filter");

    app.update(key('s')); // by state: Disabled before Enabled
    assert_eq!(app.visible()[0].spec.queue(), "payments");
    app.update(key('s')); // by function
    app.update(key('s')); // by dead letters: orders has one
    assert_eq!(app.visible()[0].spec.queue(), "orders");

    app.update(key(':'));
    type_text(&mut app, "batch 99999");
    assert_eq!(app.update(Action::Confirm), None);
    // The same words as the config file and the API (crate::validation).
    assert!(render(&app).contains("BatchSize 99999 is out of range: it must be 1 to 10000"));
    app.update(Action::Back);
    app.update(key(':'));
    type_text(&mut app, "batch 50");
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::SetBatchSize(Uuid::from_u128(1), 50))
    );
    app.update(key(':'));
    type_text(&mut app, "disable 00000000-0000-0000-0000-000000000002");
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::Disable(Uuid::from_u128(2)))
    );
    app.update(key(':'));
    type_text(&mut app, "replay");
    assert_eq!(
        app.update(Action::Confirm),
        Some(Effect::Replay(Uuid::from_u128(1), 1))
    );
    app.update(key(':'));
    type_text(&mut app, "frobnicate");
    assert_eq!(app.update(Action::Confirm), None);
    assert!(render(&app).contains("unknown command"));
}

#[test]
fn a_click_in_a_scrolled_table_selects_the_row_under_the_pointer() {
    let mut app = app();
    let many: Vec<Mapping> = (0..30)
        .map(|i| mapping(100 + i, &format!("queue-{i:02}")))
        .collect();
    app.update(Action::Loaded {
        mappings: many,
        dead_letters: vec![],
    });
    for _ in 0..25 {
        app.update(Action::Down);
    }
    assert_eq!(app.selected_mapping().unwrap().spec.queue(), "queue-25");
    let screen = ratatui::layout::Rect::new(0, 0, 110, 24);
    let lines: Vec<String> = render(&app).lines().map(str::to_owned).collect();
    // The table scrolled to show the selection: the first row on screen is
    // no longer queue-00. Clicking it selects what it shows.
    let first_row = &lines[3];
    assert!(!first_row.contains("queue-00"), "{first_row}");
    let index = ui::mapping_row_at(screen, app.selected, 10, 3).unwrap();
    app.update(Action::Select(index));
    let chosen = app.selected_mapping().unwrap().spec.queue().to_owned();
    assert!(
        first_row.contains(&chosen),
        "clicked the row showing `{first_row}`, selected {chosen}"
    );
}

#[test]
fn a_click_selects_the_row_under_it() {
    let screen = ratatui::layout::Rect::new(0, 0, 110, 24);
    // Title line, then the table's top border and header.
    assert_eq!(ui::mapping_row_at(screen, 0, 10, 3), Some(0));
    assert_eq!(ui::mapping_row_at(screen, 0, 10, 4), Some(1));
    assert_eq!(
        ui::mapping_row_at(screen, 0, 10, 2),
        None,
        "the header is not a row"
    );
    assert_eq!(
        ui::mapping_row_at(screen, 0, 0, 3),
        None,
        "the border is not a row"
    );
    let mut app = app();
    app.update(Action::Select(1));
    assert_eq!(app.selected_mapping().unwrap().spec.queue(), "payments");
    app.update(Action::Select(7));
    assert_eq!(
        app.selected_mapping().unwrap().spec.queue(),
        "payments",
        "a click below the rows changes nothing"
    );
}

#[test]
fn the_add_mapping_form_checks_each_field_and_creates_the_mapping() {
    let mut app = app();
    app.choices = choices(
        r#"
[[brokers]]
name = "rabbit"
engine = "rabbitmq"
arn = "arn:aws:mq:us-east-1:0:broker:rabbit:b-1"
endpoints = ["amqp://127.0.0.1:5672"]

[[brokers]]
name = "amq"
engine = "activemq"
arn = "arn:aws:mq:us-east-1:0:broker:amq:b-2"
endpoints = ["stomp://127.0.0.1:61613"]

[secrets]
"arn:aws:secretsmanager:us-east-1:0:secret:s" = { username = "guest", password = "guest" }

[functions.echo]
command = ["true"]
"#,
    );
    app.update(key('n'));
    assert_eq!(app.update(Action::Confirm), None, "the queue is required");
    type_text(&mut app, "refunds");
    app.update(Action::NextField); // FunctionName
    app.update(Action::NextField); // BatchSize
    let backspace = KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE);
    for _ in 0..3 {
        app.update(Action::PromptKey(backspace));
    }
    type_text(&mut app, "0");
    insta::assert_snapshot!(render(&app));
    assert_eq!(app.update(Action::Confirm), None, "BatchSize 0 is refused");
    app.update(Action::PromptKey(backspace));
    type_text(&mut app, "25");
    for _ in 0..4 {
        app.update(Action::NextField); // window, secret, vhost, filter
    }
    type_text(&mut app, r#"{"data":{"kind":"order"}}"#);
    let screen = render(&app);
    assert!(
        screen.contains("inside a list"),
        "the filter is checked in place:\n{screen}"
    );
    assert_eq!(app.update(Action::Confirm), None);
    for _ in 0..9 {
        app.update(Action::PromptKey(backspace));
    }
    type_text(&mut app, r#"["order"]}}"#);
    let Some(Effect::Create(spec)) = app.update(Action::Confirm) else {
        panic!("the form should create")
    };
    assert_eq!(spec.queues, ["refunds"]);
    assert_eq!(spec.batch_size, Some(25));
    assert_eq!(
        spec.event_source_arn,
        "arn:aws:mq:us-east-1:0:broker:rabbit:b-1"
    );
    assert_eq!(spec.function_name, "echo");
    assert_eq!(spec.access(SourceAccessType::VirtualHost), Some("/"));
    assert_eq!(
        spec.filter_criteria.unwrap()["Filters"][0]["Pattern"],
        r#"{"data":{"kind":["order"]}}"#
    );
    assert!(matches!(app.mode, mqtrigger::console::app::Mode::Normal));
}

#[test]
fn a_batch_opens_on_the_event_the_function_saw() {
    let mut app = app();
    app.update(Action::FocusNext); // batches
    app.update(Action::Down); // the older batch, of 10 messages
    app.update(Action::Inspect);
    let mqtrigger::console::app::Mode::InspectBatch(inspected) = &app.mode else {
        panic!("the batch inspector is open")
    };
    assert_eq!(inspected.key.batch, BatchId(1), "the batch selected, by id");
    insta::assert_snapshot!(render(&app));
    app.update(Action::Down);
    app.update(Action::Down);
    assert_eq!(app.scroll, 2, "the inspector scrolls");
    app.update(Action::Back);
    app.update(Action::FocusNext); // dead letters
    app.update(Action::Inspect);
    let save = keys::action(
        &app.mode,
        KeyEvent::new(KeyCode::Char('w'), KeyModifiers::NONE),
    )
    .unwrap();
    assert_eq!(
        app.update(save),
        Some(Effect::Save(
            "dead-letter-1.body".into(),
            bytes::Bytes::from_static(b"{\"order\":7}")
        ))
    );
}

#[test]
fn the_filter_editor_validates_as_you_type_and_dry_runs() {
    let mut app = app();
    app.update(key('f'));
    type_text(&mut app, r#"{"data":{"order":7"#);
    assert!(render(&app).contains("not JSON yet"));
    assert_eq!(
        app.update(Action::Apply),
        None,
        "an unfinished pattern is not applied"
    );
    type_text(&mut app, "}}");
    assert!(render(&app).contains("must be inside a list"));
    app.update(Action::Back);
    app.update(key('f'));
    type_text(&mut app, r#"{"data":{"order":[7]}}"#);
    insta::assert_snapshot!(render(&app));
    let Some(Effect::SetFilter(uuid, Some(criteria))) = app.update(Action::Apply) else {
        panic!("Ctrl-s applies a valid pattern")
    };
    assert_eq!(uuid, Uuid::from_u128(1));
    assert_eq!(
        criteria["Filters"][0]["Pattern"],
        r#"{"data":{"order":[7]}}"#
    );
    let ctrl_s = KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL);
    app.update(key('f'));
    assert!(matches!(
        keys::action(&app.mode, ctrl_s),
        Some(Action::Apply)
    ));
}

#[test]
fn each_end_settles_its_own_batch_whatever_the_order() {
    let mut app = app();
    let uuid = app.mappings[1].uuid;
    let started = |batch, messages| EngineEvent::BatchStarted {
        mapping: uuid,
        batch: BatchId(batch),
        messages,
        bytes: 100,
        attempt: 1,
        closed_by: CloseReason::Count,
        at: Utc::now(),
        event: batch_event(messages),
    };
    let succeeded = |batch, messages, ms| EngineEvent::BatchSucceeded {
        mapping: uuid,
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
        app.stats_of(uuid)
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
    assert_eq!(app.stats_of(uuid).in_flight_batches, 2);
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
    assert_eq!(app.stats_of(uuid).in_flight_batches, 0);
}
