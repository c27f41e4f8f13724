//! ReportBatchItemFailures on the real brokers, with an unmodified handler
//! on Powertools' BatchProcessor run by awslambdaric: the messages it does
//! not name are acked once, the named one is retried alone and then
//! dead-lettered, alone.

use crate::common::*;
use std::collections::BTreeMap;

/// tests/functions/lambda_app/partial.py, reporting its failures.
fn powertools_handler(setup: Setup) -> Setup {
    Setup {
        batch_size: 5,
        window_secs: Some(1),
        max_redeliveries: Some(1),
        function_toml: Some(format!(
            "bootstrap = [{:?}, \"-m\", \"awslambdaric\", \"partial.handler\"]\ncwd = \"{}/tests/functions/lambda_app\"\nenv = {{ RECORD_TO = \"{{RECORD_TO}}\" }}",
            python(),
            env!("CARGO_MANIFEST_DIR"),
        )),
        mapping_toml: "FunctionResponseTypes = [\"ReportBatchItemFailures\"]".into(),
        ..setup
    }
}

/// How often each body was handled (the handler's own lines).
fn handled(running: &Running) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in running.events() {
        if let Some(body) = line["handled"].as_str() {
            *counts.entry(body.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

async fn one_bad_of_five(setup: Setup, url: &str) {
    let queue = setup.queue.clone();
    let running = Running::start(&powertools_handler(setup)).await;
    let bodies = ["ok-1", "ok-2", "bad-3", "ok-4", "ok-5"];
    publish_persistent(url, &queue, &bodies).await;
    let uuid = running.mapping().uuid;
    // Counted once the broker took it (the journal has it before).
    wait_for("the bad one dead-lettered", || {
        running.control.stats(uuid).dead_lettered == 1
    })
    .await;
    let letter = &running.dead_letters()[0];
    assert_eq!(letter.body, b"bad-3", "only the one the handler failed");
    assert_eq!(letter.attempts, 2, "a try and one redelivery, alone");
    let counts = handled(&running);
    let expected: BTreeMap<String, usize> = ["ok-1", "ok-2", "ok-4", "ok-5"]
        .into_iter()
        .map(|b| (b.to_owned(), 1))
        .collect();
    assert_eq!(counts, expected, "each good one handled once");
    let stats = running.control.stats(uuid);
    assert_eq!((stats.succeeded, stats.dead_lettered), (4, 1));
    running.control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertools_batch_processor_on_rabbitmq_messages_without_ids() {
    let queue = unique("partial-rmq");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    one_bad_of_five(Setup::new(&queue), &amqp_url()).await;
    assert_eq!(broker.ready(&queue).await, 0, "nothing left behind");
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertools_batch_processor_on_activemq() {
    let queue = unique("partial-amq");
    one_bad_of_five(Setup::activemq(&queue), &stomp_url()).await;
}

/// A batch of 10 with 3 reported failures: 7 acked once, the 3 retried
/// alone and dead-lettered after Lambda's 5 redeliveries (6 attempts).
async fn three_of_ten(setup: Setup, url: &str) {
    let queue = setup.queue.clone();
    let setup = Setup {
        batch_size: 10,
        max_redeliveries: None,
        ..powertools_handler(setup)
    };
    let running = Running::start(&setup).await;
    let uuid = running.mapping().uuid;
    let bodies: Vec<String> = (1..=10)
        .map(|i| match i % 3 {
            0 => format!("bad-{i}"),
            _ => format!("ok-{i}"),
        })
        .collect();
    publish_persistent(url, &queue, &bodies).await;
    wait_for("three dead", || {
        running.control.stats(uuid).dead_lettered == 3
    })
    .await;
    let letters = running.dead_letters();
    let mut dead: Vec<String> = letters
        .iter()
        .map(|l| String::from_utf8(l.body.clone()).unwrap())
        .collect();
    dead.sort();
    assert_eq!(dead, ["bad-3", "bad-6", "bad-9"]);
    assert!(letters.iter().all(|l| l.attempts == 6), "6 attempts each");
    let counts = handled(&running);
    assert_eq!(counts.len(), 7, "{counts:?}");
    assert!(
        counts.values().all(|n| *n == 1),
        "each good one once: {counts:?}"
    );
    assert_eq!(running.control.stats(uuid).succeeded, 7);
    running.control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_of_ten_reported_on_rabbitmq() {
    let queue = unique("partial-ten");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    three_of_ten(Setup::new(&queue), &amqp_url()).await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_of_ten_reported_on_activemq() {
    three_of_ten(Setup::activemq(&unique("partial-ten-amq")), &stomp_url()).await;
}
