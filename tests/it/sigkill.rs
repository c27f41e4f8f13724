//! At least once, the hard way: `mqtrigger serve` is SIGKILLed in the middle
//! of batches and restarted; every message still reaches the function, and
//! only messages of a batch that was under way at a kill reach it twice.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use std::collections::HashMap;

const TOTAL: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_loses_nothing_on_rabbitmq() {
    let broker = Broker::connect().await;
    let queue = unique("sigkill");
    broker.declare(&queue, FieldTable::default()).await;
    for i in 0..TOTAL {
        let body = format!("k{i:02}");
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    kill_and_restart(Setup::new(&queue)).await;
    assert_eq!(broker.ready(&queue).await, 0, "nothing left behind");
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_loses_nothing_on_activemq() {
    let queue = unique("amq-sigkill");
    let mut client = Stomp::connect("admin", "admin").await;
    for i in 0..TOTAL {
        client
            .send(
                &queue,
                &[("persistent", "true")],
                format!("k{i:02}").as_bytes(),
                false,
            )
            .await;
    }
    kill_and_restart(Setup::activemq(&queue)).await;
    let left = client
        .take(&queue, std::time::Duration::from_secs(2), |_| true)
        .await;
    assert!(
        left.is_empty(),
        "nothing left behind: {} messages",
        left.len()
    );
}

/// Runs `serve`, SIGKILLs it three times while a batch is invoked, then lets a
/// last one finish: every message must have reached the function, and only
/// messages of the batches under way at a kill may have reached it twice.
async fn kill_and_restart(mut setup: Setup) {
    setup.batch_size = 5;
    setup.function_env = vec![("SLEEP".into(), "0.4".into())];
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, setup.toml(&record)).unwrap();
    let state = dir.path().join("state");

    let mut kills = 0;
    for round in 1..=3 {
        let mut child = spawn_serve(&config, &state);
        // The function records an event before it sleeps: a kill now lands
        // while that batch is invoked and not yet acked.
        let seen = read_events(&record).len();
        wait_for("a new batch under way", || {
            read_events(&record).len() >= seen + 2
        })
        .await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        eprintln!(
            "kill {round}: {} batches recorded so far",
            read_events(&record).len()
        );
    }

    let child = spawn_serve(&config, &state);
    let distinct = |events: &[serde_json::Value]| {
        let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
        for e in events {
            for (body, _) in messages(e) {
                *seen.entry(body).or_default() += 1;
            }
        }
        seen
    };
    wait_for("every message delivered", || {
        distinct(&read_events(&record)).len() == TOTAL
    })
    .await;
    // SIGTERM: a clean stop.
    let status = stop(child);
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");

    let events = read_events(&record);
    let counts = distinct(&events);
    let expected: Vec<Vec<u8>> = (0..TOTAL)
        .map(|i| format!("k{i:02}").into_bytes())
        .collect();
    for body in &expected {
        assert!(
            counts.contains_key(body),
            "{} was lost",
            String::from_utf8_lossy(body)
        );
    }
    // Every second sighting of a message is a replay the broker marked.
    let mut first_seen: HashMap<Vec<u8>, bool> = HashMap::new();
    let mut duplicates = 0;
    for e in &events {
        for (body, redelivered) in messages(e) {
            if first_seen.insert(body.clone(), redelivered).is_some() {
                duplicates += 1;
                assert!(
                    redelivered,
                    "{} came again without redelivered:true",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
    eprintln!("{kills} kills, {TOTAL} messages, {duplicates} delivered twice");
    assert!(
        duplicates <= kills * setup.batch_size as usize,
        "only the batch under way at each kill may repeat ({duplicates} duplicates)"
    );
}
