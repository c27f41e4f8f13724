//! The fixed state every console test starts from: the demo a few seconds
//! in (`demo()`), built from its mappings, its batches' every attempt and
//! its dead letters, on a clock that does not move.

use chrono::{DateTime, TimeZone, Utc};
use mqtrigger::console::action::Action;
use mqtrigger::console::app::App;
use mqtrigger::console::view::Choices;
use mqtrigger::engine::{BatchId, CloseReason, EngineEvent};
use mqtrigger::mapping::{Mapping, MappingSpec, SourceAccessConfiguration, SourceAccessType};
use mqtrigger::store::DeadLetter;
use std::time::Duration;
use uuid::Uuid;

pub(super) const RABBIT: &str = "arn:aws:mq:us-east-1:000000000000:broker:local-rabbit:b-1";
const ACTIVEMQ: &str = "arn:aws:mq:us-east-1:000000000000:broker:local-activemq:b-2";
pub(super) const ORDERS: Uuid = Uuid::from_u128(1);
pub(super) const PAYMENTS: Uuid = Uuid::from_u128(2);
pub(super) const SHIPMENTS: Uuid = Uuid::from_u128(3);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

pub(super) fn mapping(
    uuid: Uuid,
    broker: &str,
    queue: &str,
    function: &str,
    batch: u32,
) -> Mapping {
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
        ..Default::default()
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
pub(super) fn event_of(bodies: &[String]) -> bytes::Bytes {
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

pub(super) fn orders(range: std::ops::RangeInclusive<u32>, bad: Option<u32>) -> Vec<String> {
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
/// Longer than the Errors panel is wide at 80×24, as in the real demo.
const FLAKY: &str =
    r#"{"errorType": "Flaky", "errorMessage": "order 7 hit a flaky dependency and failed once"}"#;
const NO_ADDRESS: &str =
    r#"{"errorType": "ValueError", "errorMessage": "shipment 5 has no address", "stackTrace": []}"#;

/// The demo a few seconds in: orders failing on two bad orders (their
/// batches dead-lettered) and once on a flaky one, payments filtered on
/// ActiveMQ, shipments failing on a missing address.
pub(super) fn demo() -> App {
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
    // What the brokers said of the queues: the orders' drained in the
    // last minute, the shipments' empty, the payments' (ActiveMQ without
    // an admin_url) unknown.
    let backlog = |mapping, backlog, ago: i64| {
        Action::Engine(EngineEvent::Backlog {
            mapping,
            backlog,
            at: now() - chrono::Duration::seconds(ago),
        })
    };
    use mqtrigger::source::backlog::Backlog;
    app.update(backlog(ORDERS, Backlog::Messages(20), 30));
    app.update(backlog(ORDERS, Backlog::Messages(0), 5));
    app.update(backlog(SHIPMENTS, Backlog::Messages(0), 20));
    app.update(backlog(
        PAYMENTS,
        Backlog::Unknown("STOMP cannot count a queue: give broker `local-activemq` an admin_url (ActiveMQ's web console, whose Jolokia can)".into()),
        25,
    ));
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
