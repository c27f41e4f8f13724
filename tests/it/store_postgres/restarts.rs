//! A mapping made through the API lives in PostgreSQL: an instance started
//! again from another state directory runs it, and the config file's
//! mapping is not made twice.

use crate::common::*;
use std::process::{Command, Stdio};

fn serve(dir: &std::path::Path, state: &str, args: &[String]) -> KillOnDrop {
    let log = std::fs::File::create(dir.join(format!("serve-{state}.log"))).unwrap();
    KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(["serve", "--config"])
            .arg(dir.join("mqtrigger.toml"))
            .arg("--state")
            .arg(dir.join(state))
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary runs"),
    )
}

fn bodies(record: &std::path::Path) -> Vec<String> {
    read_events(record)
        .iter()
        .flat_map(messages)
        .map(|(body, _)| String::from_utf8_lossy(&body).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_made_through_the_api_lives_in_postgres_across_restarts() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let config_queue = unique("pg-config");
    let queue = unique("pg-api");
    broker.declare(&config_queue, Default::default()).await;
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    let setup = Setup::new(&config_queue);
    std::fs::write(dir.path().join("mqtrigger.toml"), setup.toml(&record)).unwrap();

    let api = free_port();
    let first = serve(
        dir.path(),
        "state-a",
        &[
            "--store".into(),
            db.url.clone(),
            "--api".into(),
            api.to_string(),
        ],
    );
    wait_listening(api).await;
    let endpoint = format!("http://{api}");
    let created = create_through_cli(&endpoint, &queue, &[]);
    let uuid = created["UUID"].as_str().unwrap().to_owned();
    broker.publish(&queue, b"before", Default::default()).await;
    wait_for("the first message", || !bodies(&record).is_empty()).await;

    drop(first);

    // Started again from another state directory, with the store named in
    // the config file this time: the API-made mapping is still there.
    let mut toml = std::fs::read_to_string(dir.path().join("mqtrigger.toml")).unwrap();
    toml.push_str(&format!("\n[store]\nurl = {:?}\n", db.url));
    std::fs::write(dir.path().join("mqtrigger.toml"), toml).unwrap();
    let api = free_port();
    let _again = serve(dir.path(), "state-c", &["--api".into(), api.to_string()]);
    wait_listening(api).await;
    let endpoint = format!("http://{api}");
    let table = stdout(&mappings_cli(&endpoint, &["list"]));
    assert!(table.contains(&uuid) && table.contains(&queue), "{table}");
    assert_eq!(
        table.matches(&config_queue).count(),
        1,
        "the config file's mapping is not made twice: {table}"
    );
    broker.publish(&queue, b"after", Default::default()).await;
    // "before" may come again too, marked redelivered: the first engine
    // was killed, maybe before its ack.
    wait_for("the message after the restart", || {
        bodies(&record).contains(&"after".to_owned())
    })
    .await;
    assert!(
        !dir.path().join("state-c").join("mqtrigger.db").exists(),
        "nothing in SQLite"
    );
}
