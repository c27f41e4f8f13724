//! Bad input, generated: arbitrary headers, deep tables, non-UTF-8 bytes,
//! huge header counts, empty and 6 MB bodies. Every message becomes an event
//! the handler library parses (or, too large, a dead letter with a reason),
//! and nothing panics.

use aws_lambda_events::event::activemq::ActiveMqEvent;
use aws_lambda_events::event::rabbitmq::RabbitMqEvent;
use base64::Engine;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, DecimalValue, FieldArray, FieldTable, LongString, ShortString};
use mqtrigger::event::{MAX_EVENT_BYTES, mq, rmq};
use proptest::prelude::*;

const ARN: &str = "arn:aws:mq:us-east-1:000000000000:broker:b:b-1";

fn amqp_value() -> impl Strategy<Value = AMQPValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(AMQPValue::Boolean),
        any::<i8>().prop_map(AMQPValue::ShortShortInt),
        any::<u16>().prop_map(AMQPValue::ShortUInt),
        any::<i32>().prop_map(AMQPValue::LongInt),
        any::<i64>().prop_map(AMQPValue::LongLongInt),
        any::<f32>().prop_map(AMQPValue::Float),
        any::<f64>().prop_map(AMQPValue::Double),
        any::<u64>().prop_map(AMQPValue::Timestamp),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| AMQPValue::DecimalValue(DecimalValue { scale, value })),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| AMQPValue::LongString(LongString::from(b))),
        "\\PC{0,20}".prop_map(|s| AMQPValue::ShortString(ShortString::from(s))),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| AMQPValue::ByteArray(b.into())),
        Just(AMQPValue::Void),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(("\\PC{0,10}", inner.clone()), 0..8).prop_map(|kv| {
                let mut t = FieldTable::default();
                for (k, v) in kv {
                    t.insert(k.as_str().into(), v);
                }
                AMQPValue::FieldTable(t)
            }),
            proptest::collection::vec(inner, 0..8)
                .prop_map(|vs| AMQPValue::FieldArray(FieldArray::from(vs))),
        ]
    })
}

fn properties() -> impl Strategy<Value = BasicProperties> {
    (
        proptest::collection::vec(("\\PC{0,16}", amqp_value()), 0..12),
        proptest::option::of("\\PC{0,30}"),
        proptest::option::of("\\PC{0,30}"),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(headers, content_type, message_id, priority, timestamp)| {
            let mut table = FieldTable::default();
            for (k, v) in headers {
                table.insert(k.as_str().into(), v);
            }
            let mut p = BasicProperties::default().with_headers(table);
            if let Some(c) = content_type {
                p = p.with_content_type(c.as_str().into());
            }
            if let Some(m) = message_id {
                p = p.with_message_id(m.as_str().into());
            }
            // aws_lambda_events cannot read the null priority Lambda sends
            // for a message without one (src/event/rmq.rs): a priority of
            // its own, else AMQP's default of 0.
            p = p.with_priority(priority.unwrap_or(0));
            if let Some(t) = timestamp {
                p = p.with_timestamp(t);
            }
            p
        })
}

fn decode(data: Option<&str>) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(data.unwrap_or_default())
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_amqp_message_makes_a_rabbitmq_event(
        props in properties(),
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        redelivered in any::<bool>(),
    ) {
        let record = rmq::record(&props, &body, redelivered);
        let event = rmq::frame(ARN, "q", "/").assemble([record.as_slice()]);
        let parsed: RabbitMqEvent = serde_json::from_slice(&event).unwrap();
        let message = &parsed.messages_by_queue["q::/"][0];
        prop_assert_eq!(decode(message.data.as_deref()), body);
        prop_assert_eq!(message.redelivered, redelivered);
    }

    #[test]
    fn any_stomp_message_makes_an_activemq_event(
        headers in proptest::collection::vec(("\\PC{1,20}", "\\PC{0,40}"), 0..60),
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        received in any::<i64>(),
    ) {
        let pairs = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let record = mq::record(pairs, &body, received);
        let event = mq::frame(ARN).assemble([record.as_slice()]);
        let parsed: ActiveMqEvent = serde_json::from_slice(&event).unwrap();
        prop_assert_eq!(decode(parsed.messages[0].data.as_deref()), body);
    }

    #[test]
    fn no_pattern_text_panics_the_filter_parser(pattern in "\\PC{0,200}") {
        let _ = mqtrigger::filter::Filters::parse(&[pattern]);
    }

    #[test]
    fn no_body_panics_a_filter(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let filters = mqtrigger::filter::Filters::parse(&[
            r#"{"data":{"a":[{"numeric":[">",1]}],"b":[{"prefix":"x"}],"c":[{"exists":false}]}}"#,
            r#"{"data":[{"wildcard":"*x*"}]}"#,
            r#"{"data":{"d":[{"anything-but":{"equals-ignore-case":["Q"]}}]}}"#,
        ])
        .unwrap();
        let _ = filters.matches(&body);
    }
}

#[test]
fn ten_thousand_headers_still_make_an_event() {
    let mut table = FieldTable::default();
    for i in 0..10_000 {
        table.insert(format!("h{i}").into(), AMQPValue::LongInt(i));
    }
    let props = BasicProperties::default()
        .with_headers(table)
        .with_priority(0);
    let record = rmq::record(&props, b"x", false);
    let event = rmq::frame(ARN, "q", "/").assemble([record.as_slice()]);
    let parsed: RabbitMqEvent = serde_json::from_slice(&event).unwrap();
    assert_eq!(
        parsed.messages_by_queue["q::/"][0]
            .basic_properties
            .headers
            .len(),
        10_000
    );

    let headers: Vec<(String, String)> =
        (0..10_000).map(|i| (format!("h{i}"), "v".into())).collect();
    let pairs = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let record = mq::record(pairs, b"x", 0);
    let _: ActiveMqEvent =
        serde_json::from_slice(&mq::frame(ARN).assemble([record.as_slice()])).unwrap();
}

#[test]
fn empty_bodies_make_events_and_six_megabyte_bodies_are_too_large() {
    let frame = rmq::frame(ARN, "q", "/");
    let empty = rmq::record(&BasicProperties::default().with_priority(0), b"", false);
    let parsed: RabbitMqEvent =
        serde_json::from_slice(&frame.assemble([empty.as_slice()])).unwrap();
    assert_eq!(
        parsed.messages_by_queue["q::/"][0].data.as_deref(),
        Some("")
    );
    // 6 MB of body is 8 MB of base64: no event may hold it, so the batcher
    // dead-letters it with the reason (tests/it/engine_rabbitmq/delivery.rs
    // sends one).
    let huge = rmq::record(
        &BasicProperties::default(),
        &vec![0u8; 6 * 1024 * 1024],
        false,
    );
    assert!(frame.event_size(1, huge.len()) > MAX_EVENT_BYTES);
    let mq_huge = mq::record([], &vec![b'a'; 6 * 1024 * 1024], 0);
    assert!(mq::frame(ARN).event_size(1, mq_huge.len()) > MAX_EVENT_BYTES);
}

/// A valid config, for mutating.
const GOOD_CONFIG: &str = r#"
[[brokers]]
name = "local"
engine = "rabbitmq"
arn = "arn:aws:mq:us-east-1:000000000000:broker:local:b-1"
endpoints = ["amqp://127.0.0.1:5672"]

[secrets]
"arn:aws:secretsmanager:us-east-1:000000000000:secret:s" = { username = "guest", password = "guest" }

[functions.echo]
command = ["cat"]
timeout = 30

[[mappings]]
FunctionName = "echo"
EventSourceArn = "arn:aws:mq:us-east-1:000000000000:broker:local:b-1"
Queues = ["orders"]
BatchSize = 10
FilterCriteria = { Filters = [ { Pattern = '{"data":{"a":[1]}}' } ] }
SourceAccessConfigurations = [ { Type = "BASIC_AUTH", URI = "arn:aws:secretsmanager:us-east-1:000000000000:secret:s" } ]
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_config_text_panics_the_parser(text in "\\PC{0,400}") {
        let _ = mqtrigger::config::Config::parse(std::path::Path::new("fuzz.toml"), &text);
    }

    /// A good file with a line dropped, repeated or garbled: parsed or
    /// refused with the file's name, never a panic.
    #[test]
    fn a_damaged_config_is_refused_by_name(
        line in 0usize..30,
        how in 0u8..3,
        junk in "\\PC{0,12}",
    ) {
        let mut lines: Vec<String> = GOOD_CONFIG.lines().map(str::to_owned).collect();
        let at = line % lines.len();
        match how {
            0 => { lines.remove(at); }
            1 => { let l = lines[at].clone(); lines.insert(at, l); }
            _ => { let mid = lines[at].len() / 2; let cut = lines[at].floor_char_boundary(mid); lines[at].insert_str(cut, &junk); }
        }
        let text = lines.join("\n");
        if let Err(e) = mqtrigger::config::Config::parse(std::path::Path::new("damaged.toml"), &text) {
            prop_assert!(e.to_string().starts_with("damaged.toml"), "{}", e);
        }
    }
}
