//! A function slow for minutes: it is waited for, not retried, and its
//! messages stay with us the whole time (heart-beats keep the connection
//! alive), while another mapping on the same broker keeps its pace.

use super::*;
use std::time::{Duration, Instant};

/// Longer than any heart-beat or reconnect interval, well inside a timeout
/// of 300 s.
const SLOW: Duration = Duration::from_secs(130);
const HEALTHY: usize = 300;

async fn wait_long(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < give_up, "gave up waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}

/// Runs the slow mapping beside the Setup's own; `publish(queue, body)`
/// sends through the broker at hand.
async fn slow_beside_healthy<F, Fut>(mut setup: Setup, slow_queue: &str, publish: F)
where
    F: Fn(String, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let slow_log = dir.path().join("slow.log");
    let script = format!("{}/tests/functions/behave.py", env!("CARGO_MANIFEST_DIR"));
    let command = [
        python(),
        script,
        "slow".into(),
        SLOW.as_secs().to_string(),
        slow_log.display().to_string(),
    ];
    setup.extra_toml = format!("[functions.slow]\ncommand = {command:?}\ntimeout = 300\n");
    let running = Running::start(&setup).await;
    let healthy = running.mapping().uuid;
    let slow = running
        .control
        .create(beside("slow", slow_queue, 10))
        .await
        .unwrap();
    publish(slow_queue.to_owned(), "slow-1".into()).await;
    wait_long(
        "the slow function to start",
        Duration::from_secs(60),
        || lines(&slow_log) == ["start slow-1"],
    )
    .await;
    let started = Instant::now();
    for i in 0..HEALTHY {
        publish(setup.queue.clone(), format!("h{i}")).await;
    }
    wait_long("the healthy messages", Duration::from_secs(90), || {
        read_events(&running.record)
            .iter()
            .map(|e| messages(e).len())
            .sum::<usize>()
            >= HEALTHY
    })
    .await;
    let healthy_took = started.elapsed();
    eprintln!(
        "{HEALTHY} messages through the healthy mapping in {healthy_took:?}, beside a {SLOW:?} function"
    );
    assert_eq!(
        lines(&slow_log),
        ["start slow-1"],
        "the slow function is still at work"
    );

    wait_long("the slow function to end", SLOW * 2, || {
        lines(&slow_log).len() == 2
    })
    .await;
    let store = running.control.store();
    wait_long("the slow batch's record", Duration::from_secs(30), || {
        !store.batches(slow.uuid, 10).unwrap().is_empty()
    })
    .await;
    let batch = &store.batches(slow.uuid, 10).unwrap()[0];
    eprintln!(
        "the slow batch: {} after {} ms",
        batch.outcome, batch.latency_ms
    );
    assert_eq!((batch.outcome.as_str(), batch.attempts), ("OK", 1));
    assert!(batch.latency_ms >= SLOW.as_millis() as u64);
    let mapping = running.control.get(slow.uuid).unwrap();
    assert_eq!(mapping.last_processing_result, "OK");
    assert_eq!(mapping.state, mqtrigger::mapping::State::Enabled);
    running.control.shutdown().await;
    // Invoked once: no retry, and no redelivery after a lost connection.
    assert_eq!(lines(&slow_log), ["start slow-1", "end slow-1"]);
    let events = read_events(&running.record);
    let (counts, unmarked) = tally(&events);
    assert_eq!(counts.len(), HEALTHY);
    assert!(
        counts.values().all(|&n| n == 1),
        "no healthy message came twice"
    );
    assert_eq!(unmarked, 0);
    assert_eq!(
        running.control.get(healthy).unwrap().state,
        mqtrigger::mapping::State::Enabled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_slow_for_minutes_on_rabbitmq() {
    let (healthy, slow) = (unique("fault-pace"), unique("fault-slow"));
    let broker = Broker::connect().await;
    broker.declare(&healthy, Default::default()).await;
    broker.declare(&slow, Default::default()).await;
    slow_beside_healthy(Setup::new(&healthy), &slow, |queue, body| {
        let broker = &broker;
        async move {
            broker
                .publish(&queue, body.as_bytes(), Default::default())
                .await
        }
    })
    .await;
    assert_eq!(broker.ready(&healthy).await, 0);
    assert_eq!(broker.ready(&slow).await, 0, "the slow message was acked");
    broker.delete(&healthy).await;
    broker.delete(&slow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_slow_for_minutes_on_activemq() {
    let (healthy, slow) = (unique("fault-pace-amq"), unique("fault-slow-amq"));
    let client = tokio::sync::Mutex::new(Stomp::connect("admin", "admin").await);
    slow_beside_healthy(Setup::activemq(&healthy), &slow, |queue, body| {
        let client = &client;
        async move {
            client
                .lock()
                .await
                .send(&queue, &[], body.as_bytes(), false)
                .await
        }
    })
    .await;
    let mut client = client.into_inner();
    let left = client.take(&slow, Duration::from_secs(2), |_| true).await;
    assert!(left.is_empty(), "the slow message was acked: {left:?}");
}
