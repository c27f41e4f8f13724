//! Two `mqtrigger serve` processes with the same mapping, each with its own
//! store, are competing consumers of one queue: every message reaches the
//! function, none is lost, and both share the work.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use std::collections::BTreeSet;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_one_queue_and_lose_nothing() {
    const TOTAL: usize = 2000;
    let broker = Broker::connect().await;
    let queue = unique("competing");
    broker.declare(&queue, FieldTable::default()).await;
    let mut setup = Setup::new(&queue);
    setup.window_secs = Some(0);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut records = Vec::new();
    for dir in [&a, &b] {
        // The same config; only where the recorder writes differs.
        let record = dir.path().join("events.jsonl");
        std::fs::write(&record, b"").unwrap();
        std::fs::write(dir.path().join("mqtrigger.toml"), setup.toml(&record)).unwrap();
        records.push(record);
    }
    let (first, second) = (
        spawn_serve(&a.path().join("mqtrigger.toml"), &a.path().join("state")),
        spawn_serve(&b.path().join("mqtrigger.toml"), &b.path().join("state")),
    );
    wait_for("two consumers on the queue", || {
        let out = Command::new("rabbitmqctl")
            .args([
                "-q",
                "list_queues",
                "name",
                "consumers",
                "--no-table-headers",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [queue.as_str(), "2"])
    })
    .await;
    for i in 0..TOTAL {
        broker
            .publish(
                &queue,
                format!("m{i:04}").as_bytes(),
                BasicProperties::default(),
            )
            .await;
    }
    let bodies = |record: &std::path::Path| -> Vec<Vec<u8>> {
        read_events(record)
            .iter()
            .flat_map(|e| messages(e).into_iter().map(|(b, _)| b))
            .collect()
    };
    wait_for_all("every message at one of the two", TOTAL, || {
        let seen: BTreeSet<Vec<u8>> = records.iter().flat_map(|r| bodies(r)).collect();
        seen.len()
    })
    .await;
    stop(first);
    stop(second);
    let (on_a, on_b) = (bodies(&records[0]), bodies(&records[1]));
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "both consumed: {} and {}",
        on_a.len(),
        on_b.len()
    );
    assert_eq!(
        on_a.len() + on_b.len(),
        TOTAL,
        "no message twice: nothing failed or was killed"
    );
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
}
