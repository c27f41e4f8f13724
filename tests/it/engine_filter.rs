//! FilterCriteria on both brokers: matching messages reach the function, the
//! others are acked and counted, and nothing is left in the queue.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use mqtrigger::engine::EngineEvent;
use mqtrigger::mapping::FilterCriteria;
use std::time::Duration;

const PATTERN: &str = r#"{"data":{"kind":["order"]}}"#;
const BODIES: [&[u8]; 6] = [
    br#"{"kind":"order","n":1}"#,
    br#"{"kind":"refund","n":2}"#,
    br#"{"kind":"order","n":3}"#,
    b"plain text",
    br#"{"kind":"order","n":4}"#,
    &[0xff, 0xfe],
];

/// Waits for the three orders and counts what the filters dropped.
async fn check(running: &Running, mut events: tokio::sync::broadcast::Receiver<EngineEvent>) {
    wait_for("the three orders", || {
        running
            .events()
            .iter()
            .map(|e| messages(e).len())
            .sum::<usize>()
            == 3
    })
    .await;
    let mut filtered = 0;
    while filtered < 3 {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Ok(EngineEvent::Filtered { messages, .. })) => filtered += messages,
            Ok(Ok(_)) => {}
            other => panic!("no Filtered event: {other:?}"),
        }
    }
    assert_eq!(filtered, 3, "the refund, the text and the binary body");
    let bodies: Vec<Vec<u8>> = running
        .events()
        .iter()
        .flat_map(messages)
        .map(|(b, _)| b)
        .collect();
    assert_eq!(bodies, [BODIES[0], BODIES[2], BODIES[4]]);
    assert!(
        running.dead_letters().is_empty(),
        "filtered messages are never dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_messages_that_match_no_filter_are_acked_and_counted() {
    let broker = Broker::connect().await;
    let queue = unique("filter");
    broker.declare(&queue, FieldTable::default()).await;
    let mut setup = Setup::new(&queue);
    setup.filter = Some(PATTERN.into());
    let running = Running::start(&setup).await;
    let events = running.control.subscribe();
    for body in BODIES {
        broker
            .publish(&queue, body, BasicProperties::default())
            .await;
    }
    check(&running, events).await;
    running.control.shutdown().await;
    assert_eq!(broker.ready(&queue).await, 0, "nothing left in the queue");
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_messages_that_match_no_filter_are_acked_and_counted() {
    let queue = unique("amq-filter");
    let mut setup = Setup::activemq(&queue);
    setup.filter = Some(PATTERN.into());
    let running = Running::start(&setup).await;
    let events = running.control.subscribe();
    let mut client = Stomp::connect("admin", "admin").await;
    for body in BODIES {
        client.send(&queue, &[], body, true).await;
    }
    check(&running, events).await;
    running.control.shutdown().await;
    let left = client.take(&queue, Duration::from_secs(2), |_| true).await;
    assert!(left.is_empty(), "nothing left in the queue: {left:?}");
}

#[test]
fn a_bad_pattern_is_refused_when_the_mapping_is_made() {
    let mut setup = Setup::new("q");
    setup.filter = Some(r#"{"data":{"kind":"order"}}"#.into());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, setup.toml(&dir.path().join("r"))).unwrap();
    let err = mqtrigger::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("InvalidParameterValueException") && err.contains("inside a list"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_applied_at_run_time_takes_effect_and_is_stored() {
    let broker = Broker::connect().await;
    let queue = unique("filter-live");
    broker.declare(&queue, FieldTable::default()).await;
    let running = Running::start(&Setup::new(&queue)).await;
    broker
        .publish(&queue, br#"{"kind":"refund"}"#, BasicProperties::default())
        .await;
    wait_for("the unfiltered refund", || !running.events().is_empty()).await;

    let uuid = running.mapping().uuid;
    let criteria: FilterCriteria =
        serde_json::from_value(serde_json::json!({ "Filters": [ { "Pattern": PATTERN } ] }))
            .unwrap();
    let bad = FilterCriteria::of_patterns([r#"{"data":{"kind":"order"}}"#]);
    assert!(
        running
            .control
            .set_filter_criteria(uuid, Some(bad))
            .await
            .is_err(),
        "a bad pattern never reaches the mapping"
    );
    let m = running
        .control
        .set_filter_criteria(uuid, Some(criteria.clone()))
        .await
        .unwrap();
    assert_eq!(m.state, mqtrigger::mapping::State::Enabled);
    assert_eq!(running.mapping().spec.filter_criteria, Some(criteria));

    broker
        .publish(&queue, br#"{"kind":"refund"}"#, BasicProperties::default())
        .await;
    broker
        .publish(&queue, br#"{"kind":"order"}"#, BasicProperties::default())
        .await;
    wait_for("the order", || running.events().len() == 2).await;
    let bodies: Vec<Vec<u8>> = running
        .events()
        .iter()
        .flat_map(messages)
        .map(|(b, _)| b)
        .collect();
    assert_eq!(
        bodies,
        [
            br#"{"kind":"refund"}"#.to_vec(),
            br#"{"kind":"order"}"#.to_vec()
        ]
    );
    running.control.shutdown().await;
    assert_eq!(
        broker.ready(&queue).await,
        0,
        "the second refund was acked, not left behind"
    );
    broker.delete(&queue).await;
}
