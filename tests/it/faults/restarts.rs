//! A broker restart while messages flow. Each broker has a second instance
//! for this (`scripts/brokers up` starts them): RabbitMQ node
//! `mqt-restart@localhost` on 5673, ActiveMQ instance `mqt-restart` on
//! 61623, so stopping them disturbs no other test. Only these two tests
//! stop them.

use super::*;
use mqtrigger::mapping::State;
use std::process::Command;

const TOTAL: usize = 5_000;
const AFTER: usize = 500;

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

fn delivered(running: &Running) -> usize {
    running.events().iter().map(|e| messages(e).len()).sum()
}

/// Fills the queue, starts the mapping, takes the broker away in mid-flow
/// with `stop`, checks the outage shows without stopping the mapping, brings
/// the broker back with `start`, publishes more, and counts.
async fn restart_under_load(mut setup: Setup, url: &str, stop: impl Fn(), start: impl Fn()) {
    setup.batch_size = 50;
    setup.window_secs = Some(0);
    fill(url, &setup.queue, TOTAL).await;
    let running = Running::start(&setup).await;
    wait_for("the flow to start", || delivered(&running) >= TOTAL / 5).await;

    stop();
    let at_stop = delivered(&running);
    wait_for("the outage to show", || {
        running
            .mapping()
            .last_processing_result
            .contains("Connection error")
    })
    .await;
    let outage = running.mapping();
    eprintln!(
        "{}: broker stopped after {at_stop} of {TOTAL} messages had reached the function: State {:?}, LastProcessingResult {:?}",
        setup.queue, outage.state, outage.last_processing_result
    );
    assert_eq!(outage.state, State::Enabled, "an outage is not a stop");
    // Long enough for several reconnect attempts (back-off up to 1 s here).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    start();

    let publish_after = url.to_owned();
    let queue = setup.queue.clone();
    let more = tokio::spawn(async move {
        let message = mqtrigger::publish::Message::default();
        let mut publisher =
            mqtrigger::publish::Publisher::connect(&publish_after, &queue, &message, false)
                .await
                .unwrap();
        for i in 0..AFTER {
            publisher
                .send(format!("after{i:04}").as_bytes())
                .await
                .unwrap();
        }
        publisher.finish().await.unwrap();
    });
    more.await.unwrap();
    wait_for_all("every message at the function", TOTAL + AFTER, || {
        tally(&running.events()).0.len()
    })
    .await;
    wait_for("LastProcessingResult back to OK", || {
        running.mapping().last_processing_result == "OK"
    })
    .await;
    running.control.shutdown().await;

    let (counts, unmarked) = tally(&running.events());
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "{}: {} distinct messages invoked, {duplicates} of them twice",
        setup.queue,
        counts.len()
    );
    assert_eq!(
        counts.len(),
        TOTAL + AFTER,
        "every message reached the function"
    );
    assert_eq!(unmarked, 0, "every duplicate was marked redelivered");
    // Only what was prefetched or under way when the broker went: at most
    // the prefetch of a BatchSize 50 consumer.
    let prefetch = mqtrigger::engine::prefetch(50, 1) as usize;
    assert!(
        duplicates <= prefetch,
        "{duplicates} duplicates, prefetch {prefetch}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_stop_app_and_start_app_under_load() {
    let node = ["-n", "mqt-restart@localhost"];
    let url = std::env::var("MQTRIGGER_TEST_AMQP_RESTART")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5673/%2f".into());
    let queue = unique("fault-restart");
    let broker = Broker::connect_to(&url).await;
    broker.declare(&queue, Default::default()).await;
    drop(broker);
    let mut setup = Setup::new(&queue);
    setup.endpoints = vec!["amqp://127.0.0.1:5673".into()];
    restart_under_load(
        setup,
        &url,
        || run("rabbitmqctl", &[node[0], node[1], "stop_app"]),
        || run("rabbitmqctl", &[node[0], node[1], "start_app"]),
    )
    .await;
    let broker = Broker::connect_to(&url).await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_restart_under_load() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/brokers");
    let endpoint = std::env::var("MQTRIGGER_TEST_STOMP_RESTART")
        .unwrap_or_else(|_| "stomp://127.0.0.1:61623".into());
    let queue = unique("fault-restart-amq");
    let mut setup = Setup::activemq(&queue);
    setup.endpoints = vec![endpoint.clone()];
    restart_under_load(
        setup,
        &endpoint.replace("stomp://", "stomp://admin:admin@"),
        || run(script, &["activemq-restart-instance", "stop"]),
        || run(script, &["activemq-restart-instance", "start"]),
    )
    .await;
}
