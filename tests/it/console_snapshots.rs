//! The console drawn on ratatui's TestBackend, from a fixed state: the
//! demo's three mappings (scripts/demo) with failures, retries, dead
//! letters and filtered messages, at 80×24, 120×40 and 200×50, and what
//! each key does there.

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use mqtrigger::console::action::{Action, Effect};
use mqtrigger::console::app::{App, Outcome};
use mqtrigger::console::lists::Focus;
use mqtrigger::console::popup::Mode;
use mqtrigger::console::view::Choices;
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

const RABBIT: &str = "arn:aws:mq:us-east-1:000000000000:broker:local-rabbit:b-1";
const ACTIVEMQ: &str = "arn:aws:mq:us-east-1:000000000000:broker:local-activemq:b-2";
const ORDERS: Uuid = Uuid::from_u128(1);
const PAYMENTS: Uuid = Uuid::from_u128(2);
const SHIPMENTS: Uuid = Uuid::from_u128(3);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn mapping(uuid: Uuid, broker: &str, queue: &str, function: &str, batch: u32) -> Mapping {
    let spec = MappingSpec {
        function_name: function.into(),
        event_source_arn: broker.into(),
        queues: vec![queue.into()],
        batch_size: Some(batch),
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
        format!("arn:aws:lambda:us-east-1:000000000000:function:{function}"),
    );
    m.uuid = uuid;
    m.last_processing_result = "OK".into();
    m
}

/// An `aws:rmq` event of these bodies.
fn event_of(bodies: &[String]) -> bytes::Bytes {
    use base64::Engine;
    let records: Vec<String> = bodies
        .iter()
        .map(|b| {
            let data = base64::engine::general_purpose::STANDARD.encode(b);
            format!(r#"{{"basicProperties":{{"contentType":"application/json","bodySize":{}}},"redelivered":false,"data":"{data}"}}"#, b.len())
        })
        .collect();
    format!(
        r#"{{"eventSource":"aws:rmq","eventSourceArn":"arn:x","rmqMessagesByQueue":{{"demo-orders::/":[{}]}}}}"#,
        records.join(",")
    )
    .into()
}

fn orders(range: std::ops::RangeInclusive<u32>, bad: Option<u32>) -> Vec<String> {
    range
        .map(|n| format!(r#"{{"order":{n},"bad":{}}}"#, Some(n) == bad))
        .collect()
}

fn choices() -> Choices {
    let toml = format!(
        r#"
[[brokers]]
name = "local-rabbit"
engine = "rabbitmq"
arn = "{RABBIT}"
endpoints = ["amqp://127.0.0.1:5672"]

[[brokers]]
name = "local-activemq"
engine = "activemq"
arn = "{ACTIVEMQ}"
endpoints = ["stomp://127.0.0.1:61613"]

[secrets]
"arn:aws:secretsmanager:us-east-1:0:secret:s" = {{ username = "guest", password = "guest" }}

[functions.orders]
command = ["true"]
"#
    );
    let config = mqtrigger::config::Config::parse(std::path::Path::new("t.toml"), &toml)
        .expect("the test's config is valid");
    Choices::from_config(&config)
}

/// Every attempt of one batch: started `ago` seconds before now, each try
/// a second apart, failing with `error` (the last try too when `dies`).
struct Batch<'a> {
    mapping: Uuid,
    id: u64,
    bodies: Vec<String>,
    ago: i64,
    failures: u32,
    error: &'a str,
}

fn events_of(b: &Batch) -> Vec<EngineEvent> {
    let mut out = vec![EngineEvent::Received {
        mapping: b.mapping,
        messages: b.bodies.len(),
        redelivered: 0,
    }];
    let tries = (b.failures + 1).min(6);
    for attempt in 1..=tries {
        out.push(EngineEvent::BatchStarted {
            mapping: b.mapping,
            batch: BatchId(b.id),
            messages: b.bodies.len(),
            bytes: b.bodies.iter().map(|s| s.len() + 100).sum(),
            attempt,
            closed_by: CloseReason::Count,
            at: now() - chrono::Duration::seconds(b.ago - i64::from(attempt)),
            event: event_of(&b.bodies),
        });
        let latency = Duration::from_millis(20 + u64::from(attempt) * 7 + b.id);
        if attempt <= b.failures {
            out.push(EngineEvent::BatchFailed {
                mapping: b.mapping,
                batch: BatchId(b.id),
                messages: b.bodies.len(),
                attempt,
                error: b.error.into(),
                latency,
            });
        } else {
            out.push(EngineEvent::BatchSucceeded {
                mapping: b.mapping,
                batch: BatchId(b.id),
                messages: b.bodies.len(),
                attempts: attempt,
                latency,
            });
        }
    }
    if b.failures >= 6 {
        out.push(EngineEvent::DeadLettered {
            mapping: b.mapping,
            batch: Some(BatchId(b.id)),
            messages: b.bodies.len(),
            reason: "retries".into(),
        });
    }
    out
}

fn letter(
    id: i64,
    mapping: Uuid,
    queue: &str,
    body: &str,
    error: &str,
    message_id: Option<&str>,
) -> DeadLetter {
    let summary: serde_json::Value = serde_json::from_str(error).unwrap();
    DeadLetter {
        id,
        mapping,
        at: now() - chrono::Duration::seconds(30 - id),
        queue: queue.into(),
        message_id: message_id.map(str::to_owned),
        attempts: 6,
        reason: format!(
            "function failed 6 times (maximumRedeliveries reached); last error {}: {}",
            summary["errorType"].as_str().unwrap(),
            summary["errorMessage"].as_str().unwrap()
        ),
        error: Some(error.into()),
        destination: format!("{queue}.dlq"),
        record: format!(r#"{{"data":"{}"}}"#, body.len()).into_bytes(),
        body: body.as_bytes().to_vec(),
        moved: true,
        amqp_headers: None,
    }
}

const ORDER_4: &str =
    r#"{"errorType": "OrderError", "errorMessage": "order 4 is bad", "stackTrace": []}"#;
const ORDER_13: &str =
    r#"{"errorType": "OrderError", "errorMessage": "order 13 is bad", "stackTrace": []}"#;
const FLAKY: &str = r#"{"errorType": "Flaky", "errorMessage": "order 7 failed once"}"#;
const NO_ADDRESS: &str =
    r#"{"errorType": "ValueError", "errorMessage": "shipment 5 has no address", "stackTrace": []}"#;

/// The demo a few seconds in: orders failing on two bad orders (their
/// batches dead-lettered) and once on a flaky one, payments filtered on
/// ActiveMQ, shipments failing on a missing address.
fn demo() -> App {
    let mut app = App::new(choices(), mqtrigger::mapping::MAX_REDELIVERIES);
    let mut payments = mapping(PAYMENTS, ACTIVEMQ, "demo-payments", "echo", 10);
    payments.spec.filter_criteria = Some(mqtrigger::mapping::FilterCriteria::of_patterns([
        r#"{"data":{"amount":[{"numeric":[">",100]}]}}"#,
    ]));
    let mut letters = Vec::new();
    for (i, n) in (1..=5).enumerate() {
        let body = format!(r#"{{"order":{n},"bad":{}}}"#, n == 4);
        letters.push(letter(
            10 + i as i64,
            ORDERS,
            "demo-orders",
            &body,
            ORDER_4,
            None,
        ));
    }
    for (i, n) in (11..=15).enumerate() {
        let body = format!(r#"{{"order":{n},"bad":{}}}"#, n == 13);
        letters.push(letter(
            20 + i as i64,
            ORDERS,
            "demo-orders",
            &body,
            ORDER_13,
            None,
        ));
    }
    for (i, n) in (4..=6).enumerate() {
        let body = format!(
            r#"{{"shipment":{n},"address":{}}}"#,
            if n == 5 { "null" } else { r#""1 Main St""# }
        );
        letters.push(letter(
            25 + i as i64,
            SHIPMENTS,
            "demo-shipments",
            &body,
            NO_ADDRESS,
            Some(&format!("ship-{n}")),
        ));
    }
    letters.reverse();
    app.update(Action::Loaded {
        mappings: vec![
            mapping(ORDERS, RABBIT, "demo-orders", "orders", 5),
            payments,
            mapping(SHIPMENTS, RABBIT, "demo-shipments", "shipments", 3),
        ],
        dead_letters: letters,
    });
    let batches = [
        Batch {
            mapping: ORDERS,
            id: 1,
            bodies: orders(1..=5, Some(4)),
            ago: 28,
            failures: 6,
            error: ORDER_4,
        },
        Batch {
            mapping: ORDERS,
            id: 2,
            bodies: orders(6..=10, None),
            ago: 20,
            failures: 1,
            error: FLAKY,
        },
        Batch {
            mapping: ORDERS,
            id: 3,
            bodies: orders(11..=15, Some(13)),
            ago: 18,
            failures: 6,
            error: ORDER_13,
        },
        Batch {
            mapping: ORDERS,
            id: 4,
            bodies: orders(16..=20, None),
            ago: 10,
            failures: 0,
            error: "",
        },
        Batch {
            mapping: PAYMENTS,
            id: 5,
            bodies: orders(1..=5, None),
            ago: 15,
            failures: 0,
            error: "",
        },
        Batch {
            mapping: SHIPMENTS,
            id: 6,
            bodies: orders(1..=3, None),
            ago: 25,
            failures: 0,
            error: "",
        },
        Batch {
            mapping: SHIPMENTS,
            id: 7,
            bodies: orders(4..=6, None),
            ago: 22,
            failures: 6,
            error: NO_ADDRESS,
        },
        Batch {
            mapping: SHIPMENTS,
            id: 8,
            bodies: orders(7..=9, None),
            ago: 12,
            failures: 0,
            error: "",
        },
    ];
    // In the order they happened, the console's clock ticking each second
    // (the charts' points).
    let mut batches = batches;
    batches.sort_by_key(|b| std::cmp::Reverse(b.ago));
    let mut t = 30;
    for b in &batches {
        while t > b.ago {
            app.view.tick(now() - chrono::Duration::seconds(t));
            t -= 1;
        }
        for e in events_of(b) {
            app.update(Action::Engine(e));
        }
    }
    while t > 0 {
        app.view.tick(now() - chrono::Duration::seconds(t));
        t -= 1;
    }
    app.update(Action::Engine(EngineEvent::Filtered {
        mapping: PAYMENTS,
        messages: 5,
    }));
    app.update(Action::Engine(EngineEvent::Received {
        mapping: PAYMENTS,
        messages: 5,
        redelivered: 0,
    }));
    app.view.now = now();
    app
}

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

#[test]
fn the_demo_at_80_by_24() {
    insta::assert_snapshot!(render_on(&demo(), 80, 24));
}

#[test]
fn the_demo_at_120_by_40() {
    insta::assert_snapshot!(render_on(&demo(), 120, 40));
}

#[test]
fn the_demo_at_200_by_50() {
    insta::assert_snapshot!(render_on(&demo(), 200, 50));
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

#[test]
fn no_number_of_the_mappings_is_cut_at_any_size() {
    let app = demo();
    for (w, h) in [(80, 24), (120, 40), (200, 50)] {
        let screen = render_on(&app, w, h);
        let shown = rows(&screen);
        assert_eq!(shown.len(), 3, "{w}x{h}:\n{screen}");
        for (row, uuid) in shown.iter().zip([ORDERS, PAYMENTS, SHIPMENTS]) {
            let s = app.stats_of(uuid);
            let words: Vec<&str> = row.split(|c: char| c == '│' || c.is_whitespace()).collect();
            for n in [s.succeeded, s.failed_batches, s.dead_lettered] {
                assert!(
                    words.contains(&n.to_string().as_str()),
                    "{w}x{h}: {n} in {row}"
                );
            }
            assert!(
                !row.contains('…') || row.trim_end_matches('│').trim_end().ends_with('…'),
                "only the last result may be cut: {row}"
            );
        }
    }
}

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
        screen.contains("×1") && screen.contains("Flaky: order 7 failed once"),
        "{screen}"
    );
    assert!(
        !screen.contains("errorType"),
        "no raw JSON on the main screen:\n{screen}"
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
    for _ in 0..10 {
        key(&mut app, 's');
        if render(&app).contains("sort: DEAD ▼") {
            break;
        }
    }
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

/// Attached to a read-only service that then went away: the title bar says
/// where, that nothing may change, and that this is the last picture; a
/// snapshot from the service (it came back) clears the word and replaces
/// the counts, the rates starting over rather than counting the gap.
#[test]
fn an_attached_console_says_where_read_only_and_lost() {
    use mqtrigger::engine::{FeedItem, Snapshot};
    let mut app = demo();
    app.view.endpoint = Some("http://ops-1:9001".into());
    app.view.readonly = true;
    let before = app.view.stats.clone();
    app.update(Action::Feed(FeedItem::Lost(
        "mqtrigger at http://ops-1:9001 closed the event stream (stopped or restarting)".into(),
    )));
    insta::assert_snapshot!(render(&app));
    assert_eq!(app.view.stats, before, "the last picture stays while lost");
    let mut snapshot = Snapshot {
        mappings: app.view.mappings.clone(),
        ..Snapshot::default()
    };
    app.view.stats.mappings.entry(ORDERS).or_default().succeeded = 10;
    app.update(Action::Tick);
    let fresh = mqtrigger::engine::MappingStats {
        succeeded: 25,
        ..Default::default()
    };
    snapshot.stats.mappings.insert(ORDERS, fresh);
    app.update(Action::Feed(FeedItem::Synced(Box::new(snapshot))));
    assert!(app.view.lost.is_none());
    assert_eq!(app.view.stats.of(ORDERS).succeeded, 25);
    app.update(Action::Tick);
    assert_eq!(
        app.view.rates[&ORDERS].per_second.iter().sum::<u64>(),
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
    let mut app = demo();
    let (here, there) = (
        Uuid::from_u128(0xa1b2c3d4_0000_4000_8000_000000000001),
        Uuid::from_u128(0x5e6f7a8b_0000_4000_8000_000000000002),
    );
    app.view.instance = Some(here);
    for (mapping, instance) in [
        (ORDERS, Some(here)),
        (PAYMENTS, Some(there)),
        (SHIPMENTS, None),
    ] {
        app.update(Action::Engine(EngineEvent::Placed { mapping, instance }));
    }
    let theirs = mqtrigger::engine::MappingStats {
        received: 42,
        succeeded: 40,
        dead_lettered: 2,
        ..Default::default()
    };
    app.update(Action::Engine(EngineEvent::Counts {
        mapping: PAYMENTS,
        stats: Box::new(theirs),
    }));
    let screen = render_on(&app, 200, 50);
    insta::assert_snapshot!(screen);
    let owners: Vec<&str> = rows(&screen)
        .iter()
        .map(|r| r.trim_start_matches('│').split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(owners, ["a1b2c3d4*", "5e6f7a8b", "none"]);
}

#[test]
fn a_stopped_mapping_says_what_to_fix() {
    let mut app = demo();
    let mut payments = app.view.mapping(PAYMENTS).unwrap().clone();
    payments.state = State::Disabled;
    payments.state_transition_reason = StateTransitionReason::EventSourceAuthnError;
    payments.state_detail = Some(
        "ActiveMQ refused the login for user 'app' at 127.0.0.1:61613 — check the secret".into(),
    );
    payments.last_processing_result = "PROBLEM: EVENT_SOURCE_AUTHN_ERROR".into();
    app.update(Action::Engine(EngineEvent::MappingChanged(Box::new(
        payments,
    ))));
    press(&mut app, KeyCode::Down);
    let screen = render(&app);
    // The Errors panel, right of the Batches: its rows read as one text.
    let errors: String = screen
        .lines()
        .filter_map(|l| l.rsplit_once("││").map(|(_, right)| right))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat(&errors).contains("EVENT_SOURCE_AUTHN_ERROR: ActiveMQ refused the login for user 'app' at 127.0.0.1:61613 — check the secret"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

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
