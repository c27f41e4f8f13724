//! The store under stress: SIGKILL in the middle of changes, a full disk.

use super::*;
use mqtrigger::mapping::State;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_cut_short_by_sigkill_leave_a_consistent_store() {
    let queue = unique("fault-store");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    std::fs::write(dir.path().join("c.toml"), Setup::new(&queue).toml(&record)).unwrap();
    let state = dir.path().join("state");
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut sizes_written = std::collections::BTreeSet::from([10u32]);
    for round in 0..5u32 {
        let mut serve = KillOnDrop::new(
            Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
                .args(["serve", "--config"])
                .arg(dir.path().join("c.toml"))
                .arg("--state")
                .arg(&state)
                .args(["--api", &api.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let endpoint = format!("http://{api}");
        let uuid = loop {
            let out = Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
                .args([
                    "mappings",
                    "--endpoint",
                    &endpoint,
                    "--output",
                    "json",
                    "list",
                ])
                .env("AWS_CONFIG_FILE", "/dev/null")
                .output()
                .unwrap();
            if out.status.success() {
                let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                break all["EventSourceMappings"][0]["UUID"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        // Changes in flight (each answers Updating and finishes later) when
        // the process dies.
        let mut updates = Vec::new();
        for i in 0..4 {
            let size = 20 + round * 10 + i;
            sizes_written.insert(size);
            updates.push(
                Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
                    .args(["mappings", "--endpoint", &endpoint, "update", &uuid])
                    .args(["--batch-size", &size.to_string()])
                    .env("AWS_CONFIG_FILE", "/dev/null")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(30 * u64::from(round))).await;
        serve.kill().unwrap();
        serve.wait().unwrap();
        for mut u in updates {
            let _ = u.wait();
        }
        // Whatever was cut short, the store opens, holds the mapping once,
        // with one of the values written, and it runs again.
        let config = mqtrigger::config::Config::load(&dir.path().join("c.toml")).unwrap();
        let store = mqtrigger::store::Store::open(&state).expect("the store opens after SIGKILL");
        let control = mqtrigger::engine::Control::start(config, store)
            .await
            .unwrap();
        let all = control.list().unwrap();
        assert_eq!(all.len(), 1);
        let m = &all[0];
        eprintln!(
            "round {round}: BatchSize {:?}, {}",
            m.spec.batch_size, m.state
        );
        assert!(
            sizes_written.contains(&m.spec.batch_size()),
            "{:?}",
            m.spec.batch_size
        );
        assert_eq!(
            m.state,
            State::Enabled,
            "an interrupted Updating is finished on start"
        );
        control.shutdown().await;
    }
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_loses_nothing() {
    let queue = unique("fault-disk");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    let disk = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(disk.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a small tmpfs needs root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.path().to_owned());

    let mut setup = Setup::new(&queue);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    setup.batch_size = 1;
    setup.window_secs = Some(0);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    let config_path = dir.path().join("c.toml");
    std::fs::write(&config_path, setup.toml(&record)).unwrap();
    let config = mqtrigger::config::Config::load(&config_path).unwrap();
    let store = mqtrigger::store::Store::open(&disk.path().join("state")).unwrap();
    let control = mqtrigger::engine::Control::start(config, store)
        .await
        .unwrap();
    let uuid = control.list().unwrap()[0].uuid;

    // Fill the disk, then have a message fail until it must be dead-lettered.
    let filler = disk.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    broker
        .publish(&queue, b"doomed while the disk is full", Default::default())
        .await;
    // Six attempts, the journal refuses the dead letter, the broker keeps
    // the message and delivers it again: six more attempts.
    wait_for("two rounds of six attempts", || {
        read_events(&record).len() >= 12
    })
    .await;
    assert!(
        control
            .store()
            .dead_letters(Some(uuid), 10)
            .unwrap()
            .is_empty(),
        "nothing could be journaled"
    );
    eprintln!(
        "{} invocations while the disk was full; no dead letter yet",
        read_events(&record).len()
    );

    // Space again: the message comes back from the broker and is dead-lettered.
    std::fs::remove_file(&filler).unwrap();
    wait_for("the dead letter journaled", || {
        !control
            .store()
            .dead_letters(Some(uuid), 10)
            .unwrap()
            .is_empty()
    })
    .await;
    let letter = &control.store().dead_letters(Some(uuid), 10).unwrap()[0];
    assert_eq!(letter.body, b"doomed while the disk is full");
    wait_for("the mapping to say so", || {
        control
            .get(uuid)
            .unwrap()
            .last_processing_result
            .contains("dead-lettered")
    })
    .await;
    control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}
