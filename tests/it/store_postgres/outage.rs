//! PostgreSQL stopped under a flow: the engine stops consuming at once,
//! invokes nothing while the database is away, and goes on by itself once
//! it is back.

use super::consumers_become;
use crate::common::*;
use std::process::{Command, Stdio};

fn postgres_outage(what: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/brokers");
    let status = Command::new(script)
        .args(["postgres-outage", what])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/brokers postgres-outage {what}");
}

/// Starts the outage cluster again even when the test fails half-way.
struct BringBack;

impl Drop for BringBack {
    fn drop(&mut self) {
        postgres_outage("start");
    }
}

fn delivered_bodies(running: &Running) -> std::collections::BTreeSet<String> {
    running
        .events()
        .iter()
        .flat_map(messages)
        .map(|(body, _)| String::from_utf8_lossy(&body).into_owned())
        .collect()
}

/// PostgreSQL stopped for 20 s under a flow: the engine's lock may be
/// another's now, so it stops consuming at once (the broker sees no
/// consumer) and nothing is invoked meanwhile; once the database is back it
/// takes its lock again and goes on by itself, and every message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_twenty_seconds_fences_the_engine_until_it_is_back() {
    let db = TestDatabase::on(&TestDatabase::outage_server());
    let broker = Broker::connect().await;
    let queue = unique("pg-outage");
    broker.declare(&queue, Default::default()).await;
    let mut setup = Setup::new(&queue);
    setup.extra_toml = format!("[store]\nurl = {:?}\n", db.url);
    let running = Running::start(&setup).await;
    let publish = async |from: usize, to: usize| {
        for i in from..to {
            broker
                .publish(&queue, format!("m{i}").as_bytes(), Default::default())
                .await;
        }
    };
    publish(0, 10).await;
    wait_for("the first ten", || delivered_bodies(&running).len() == 10).await;
    assert!(consumers_become(&broker, &queue, 1).await);

    let _bring_back = BringBack;
    postgres_outage("stop");
    assert!(
        consumers_become(&broker, &queue, 0).await,
        "the engine still consumes without its database"
    );
    publish(10, 20).await;
    tokio::time::sleep(std::time::Duration::from_secs(20)).await;
    assert_eq!(
        delivered_bodies(&running).len(),
        10,
        "nothing is invoked while the database is away"
    );
    assert_eq!(broker.ready(&queue).await, 10, "they wait in the queue");

    postgres_outage("start");
    wait_for("every message, once the database is back", || {
        delivered_bodies(&running).len() == 20
    })
    .await;
    assert!(
        consumers_become(&broker, &queue, 1).await,
        "consuming again"
    );
    running.control.shutdown().await;
}
