//! `--store postgres://…`: mappings made through the API live in
//! PostgreSQL, not in the state directory; instances on one database share
//! the mappings out, each run by one of them, and take over from one that
//! stops; an instance without its database runs nothing. This file holds
//! what several of them share: `serve` instances on one database, and the
//! broker's count of consumers.

mod concurrent_changes;
mod outage;
mod owners;
mod pausing;
mod restarts;
mod sharing;
mod takeover;

use crate::common::*;
use std::process::{Command, Stdio};

/// Waits (a minute at most, as `wait_for`) for the broker to count `n`
/// consumers on the queue; whether it did.
async fn consumers_become(broker: &Broker, queue: &str, n: u32) -> bool {
    for _ in 0..600 {
        if broker.consumers(queue).await == n {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// `serve` named `name` on `db` (lease 3 s) with `setup`'s config, its
/// function recording to DIR/events-NAME.jsonl (returned), its log in
/// DIR/NAME.log.
fn instance(
    dir: &std::path::Path,
    name: &str,
    setup: &Setup,
    db: &TestDatabase,
    args: &[String],
) -> (KillOnDrop, std::path::PathBuf) {
    let record = dir.join(format!("events-{name}.jsonl"));
    std::fs::write(&record, b"").unwrap();
    let toml = format!(
        "{}\n[store]\nurl = {:?}\nlease_seconds = 3\n",
        setup.toml(&record),
        db.url
    );
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--state")
        .arg(dir.join(format!("state-{name}")))
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the binary runs");
    (KillOnDrop::new(child), record)
}
