//! ScalingConfig.MaximumConcurrency: a slow function gets several batches
//! at once when asked to; by default one at a time, in the queue's order.

mod common;

use common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;

/// The most invocations that were running at one moment.
fn most_at_once(spans: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(spans).unwrap_or_default();
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for line in text.lines() {
        let (start, end) = line.split_once(' ').unwrap();
        edges.push((start.parse().unwrap(), 1));
        edges.push((end.parse().unwrap(), -1));
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

async fn run(concurrency: Option<u32>, count: usize) -> (usize, Vec<Vec<u8>>) {
    let broker = Broker::connect().await;
    let queue = unique("concurrency");
    broker.declare(&queue, FieldTable::default()).await;
    for i in 0..count {
        let body = format!("c{i:02}");
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
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
