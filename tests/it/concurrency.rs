//! ScalingConfig.MaximumConcurrency: a slow function gets several batches
//! at once when asked to; by default one at a time, in the queue's order.

use crate::common::*;
use bytes::Bytes;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use mqtrigger::invoke::lambda_server::{LambdaServer, Reply};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most invocations that were running at one moment, from a file of
/// `start end` lines.
fn most_at_once(spans: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(spans).unwrap_or_default();
    let spans = text.lines().map(|line| {
        let (start, end) = line.split_once(' ').unwrap();
        (start.parse().unwrap(), end.parse().unwrap())
    });
    most_at_once_of(spans)
}

fn most_at_once_of(spans: impl IntoIterator<Item = (u128, u128)>) -> usize {
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for (start, end) in spans {
        edges.push((start, 1));
        edges.push((end, -1));
    }
    // An end before a start at the same instant: touching is not overlapping.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

/// A fresh queue holding `c00`, `c01`, … in that order.
async fn queue_holding(count: usize) -> (Broker, String) {
    let broker = Broker::connect().await;
    let queue = unique("concurrency");
    broker.declare(&queue, FieldTable::default()).await;
    for i in 0..count {
        let body = format!("c{i:02}");
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    (broker, queue)
}

async fn run(concurrency: Option<u32>, count: usize) -> (usize, Vec<Vec<u8>>) {
    let (broker, queue) = queue_holding(count).await;
    let spans_dir = tempfile::tempdir().unwrap();
    let spans = spans_dir.path().join("spans");
    let mut setup = Setup::new(&queue);
    setup.batch_size = 1;
    setup.window_secs = Some(0);
    setup.function_env = vec![
        ("SLEEP".into(), "0.3".into()),
        ("SPANS_TO".into(), spans.display().to_string()),
    ];
    if let Some(c) = concurrency {
        setup.mapping_toml = format!("ScalingConfig = {{ MaximumConcurrency = {c} }}");
    }
    let running = Running::start(&setup).await;
    wait_for("every message at the function", || {
        running.events().len() == count
    })
    .await;
    wait_for("every message acked", || {
        std::fs::read_to_string(&spans)
            .unwrap_or_default()
            .lines()
            .count()
            == count
    })
    .await;
    let bodies = running
        .events()
        .iter()
        .flat_map(|e| messages(e).into_iter().map(|(b, _)| b))
        .collect();
    running.control.shutdown().await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
    (most_at_once(&spans), bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_function_gets_up_to_maximum_concurrency_batches_at_once() {
    let (most, bodies) = run(Some(4), 12).await;
    assert!(most > 1, "batches ran one at a time");
    assert!(
        most <= 4,
        "{most} batches at once, more than MaximumConcurrency 4"
    );
    assert_eq!(bodies.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_batches_run_one_at_a_time_in_queue_order() {
    let (most, bodies) = run(None, 6).await;
    assert_eq!(most, 1);
    let expected: Vec<Vec<u8>> = (0..6).map(|i| format!("c{i:02}").into_bytes()).collect();
    assert_eq!(bodies, expected);
}

/// The same through the `lambda` runtime, whose next request is built and
/// signed before the function answers the last one. The endpoint's own
/// spans say how many it had at once; the batch holding `fail_once` fails
/// its first time. Returns that and the bodies in the order the function
/// got them.
async fn run_lambda(
    concurrency: Option<u32>,
    count: usize,
    fail_once: &'static str,
) -> (usize, Vec<String>) {
    let (broker, queue) = queue_holding(count).await;
    let spans = Arc::new(Mutex::new(Vec::new()));
    let record = spans.clone();
    let failed = AtomicBool::new(false);
    let fail_once = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(fail_once)
    };
    let server = LambdaServer::start_timed(
        "127.0.0.1:0".parse().unwrap(),
        move |_: &str, payload: Bytes| {
            let fails = String::from_utf8_lossy(&payload).contains(&fail_once)
                && !failed.swap(true, Ordering::Relaxed);
            let reply = match fails {
                true => Reply::FunctionError {
                    kind: "Unhandled".into(),
                    payload: Bytes::from_static(b"{\"errorMessage\":\"once\"}"),
                },
                false => Reply::Ok(Bytes::from_static(b"{}")),
            };
            Reply::Delay(Duration::from_millis(200), Box::new(reply))
        },
        Some(Arc::new(move |start, end| {
            record.lock().unwrap().push((start, end))
        })),
    )
    .await
    .unwrap();
    let mut setup = Setup::new(&queue);
    setup.batch_size = 1;
    setup.window_secs = Some(0);
    setup.lambda_endpoint = Some(server.url.clone());
    if let Some(c) = concurrency {
        setup.mapping_toml = format!("ScalingConfig = {{ MaximumConcurrency = {c} }}");
    }
    let running = Running::start(&setup).await;
    wait_for("every message acked", || {
        running.control.stats(running.mapping().uuid).succeeded == count as u64
    })
    .await;
    running.control.shutdown().await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
    let bodies = server
        .invocations()
        .iter()
        .flat_map(|(_, payload)| {
            let event = serde_json::from_slice(payload).unwrap();
            messages(&event)
                .into_iter()
                .map(|(b, _)| String::from_utf8(b).unwrap())
        })
        .collect();
    let spans = spans.lock().unwrap().clone();
    (most_at_once_of(spans), bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_function_gets_one_batch_at_a_time_in_order_and_a_retry_before_the_next() {
    let (most, bodies) = run_lambda(None, 6, "c02").await;
    assert_eq!(most, 1, "the batch ready ahead went before its turn");
    assert_eq!(bodies, ["c00", "c01", "c02", "c02", "c03", "c04", "c05"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_function_gets_up_to_maximum_concurrency_batches_at_once() {
    let (most, bodies) = run_lambda(Some(3), 12, "none").await;
    assert!(most > 1, "batches ran one at a time");
    assert!(
        most <= 3,
        "{most} batches at once, more than MaximumConcurrency 3"
    );
    assert_eq!(bodies.len(), 12);
}
