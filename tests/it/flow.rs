//! Operating the flow on the real brokers (#29): a paused mapping takes
//! nothing while its queue's backlog shows what waits (RabbitMQ by a
//! passive declare, ActiveMQ through Jolokia), a resume delivers every
//! message once, and dead letters republished in bulk come back once each.

use crate::common::*;
use mqtrigger::engine::bulk::{BulkAction, LetterFilter};
use mqtrigger::source::backlog::Backlog;
use std::collections::HashMap;
use std::time::Duration;

const WAITING: usize = 500;

/// ActiveMQ's web console on the test broker (`scripts/brokers` serves
/// Jolokia there).
fn jolokia() -> String {
    std::env::var("MQTRIGGER_TEST_JOLOKIA").unwrap_or_else(|_| "http://127.0.0.1:8161".into())
}

fn backlog(running: &Running) -> Option<Backlog> {
    let uuid = running.mapping().uuid;
    running.control.stats(uuid).backlog.map(|(b, _)| b)
}

/// Pauses the mapping, fills its queue, checks the backlog and that
/// nothing reaches the function for 10 s, resumes, and counts.
async fn paused_then_resumed(mut setup: Setup, url: &str) {
    setup.batch_size = 50;
    setup.window_secs = Some(0);
    setup.engine_toml = "backlog_interval_ms = 200".into();
    let queue = setup.queue.clone();
    let running = Running::start(&setup).await;
    let uuid = running.mapping().uuid;
    running.control.pause(uuid).await.unwrap();
    let bodies: Vec<String> = (0..WAITING).map(|i| format!("{queue}-{i:04}")).collect();
    publish_persistent(url, &queue, &bodies).await;
    wait_for("BACKLOG 500", || {
        backlog(&running) == Some(Backlog::Messages(WAITING as u64))
    })
    .await;
    assert_eq!(running.mapping().shown_state(), "Paused");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(running.events().is_empty(), "nothing invoked while paused");
    assert_eq!(backlog(&running), Some(Backlog::Messages(WAITING as u64)));

    running.control.resume(uuid).await.unwrap();
    wait_for_all("every message at the function", WAITING, || {
        tally(&running.events()).len()
    })
    .await;
    wait_for("the backlog drained", || {
        backlog(&running) == Some(Backlog::Messages(0))
    })
    .await;
    let counts = tally(&running.events());
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "each once: {twice:?}");
    assert_eq!(counts.len(), WAITING);
    running.control.shutdown().await;
}

/// How often each body reached the function.
fn tally(events: &[serde_json::Value]) -> HashMap<Vec<u8>, usize> {
    let mut counts = HashMap::new();
    for e in events {
        for (body, _) in messages(e) {
            *counts.entry(body).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_rabbitmq_mapping_shows_its_backlog_and_resume_delivers_each_once() {
    let queue = unique("flow-pause");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    paused_then_resumed(Setup::new(&queue), &amqp_url()).await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_activemq_mapping_shows_its_backlog_through_jolokia() {
    let queue = unique("flow-pause-amq");
    let mut setup = Setup::activemq(&queue);
    setup.broker_toml = format!("admin_url = \"{}\"", jolokia());
    paused_then_resumed(setup, &stomp_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_url_an_activemq_backlog_says_what_to_add() {
    let queue = unique("flow-no-admin");
    let mut setup = Setup::activemq(&queue);
    setup.engine_toml = "backlog_interval_ms = 200".into();
    let running = Running::start(&setup).await;
    wait_for("the backlog told", || backlog(&running).is_some()).await;
    match backlog(&running) {
        Some(Backlog::Unknown(why)) => {
            assert!(
                why.contains("give broker `test-rabbit` an admin_url"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    running.control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_dead_letters_republished_in_bulk_are_on_the_queue_once_each() {
    let queue = unique("flow-bulk");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    let mut setup = Setup::new(&queue);
    setup.batch_size = 10;
    setup.window_secs = Some(0);
    setup.max_redeliveries = Some(0);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    let running = Running::start(&setup).await;
    let uuid = running.mapping().uuid;
    let bodies: Vec<String> = (0..50).map(|i| format!("{queue}-{i:02}")).collect();
    publish_persistent(&amqp_url(), &queue, &bodies).await;
    wait_for("50 dead letters", || running.dead_letters().len() == 50).await;
    // Paused, so the republished messages wait in the queue to be counted.
    running.control.pause(uuid).await.unwrap();
    let mut consumers = 1;
    for _ in 0..100 {
        consumers = broker.consumers(&queue).await;
        if consumers == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(consumers, 0, "a paused mapping has no consumer");
    let summary = running
        .control
        .bulk(
            uuid,
            &LetterFilter::default(),
            BulkAction::Republish,
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!((summary.total, summary.done), (50, 50), "{summary:?}");
    let mut back: Vec<String> = broker
        .drain(&queue)
        .await
        .into_iter()
        .map(|m| String::from_utf8(m.delivery.data).unwrap())
        .collect();
    back.sort();
    assert_eq!(back, bodies, "each of the 50 once");
    running.control.shutdown().await;
    broker.delete(&queue).await;
}
