//! The console on an engine of its own: it shows the traffic and its keys
//! change the mapping in the store, and a mapping made through its API
//! shows at once.

use super::Tmux;
use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use std::path::Path;
use std::process::Command;

/// The mapping as the store has it, read beside the running console.
fn stored_mapping(state: &Path) -> serde_json::Value {
    let db = rusqlite::Connection::open(state.join("mqtrigger.db")).unwrap();
    let body: String = db
        .query_row("SELECT body FROM mappings", [], |r| r.get(0))
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_traffic_and_its_keys_change_the_mapping() {
    let broker = Broker::connect().await;
    let queue = unique("tui");
    broker.declare(&queue, FieldTable::default()).await;
    for i in 0..12 {
        broker
            .publish(
                &queue,
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        Setup::new(&queue).toml(&dir.path().join("events.jsonl")),
    )
    .unwrap();
    let state = dir.path().join("state");
    let tmux = Tmux::start(&format!(
        "{} console --config {} --state {}",
        env!("CARGO_BIN_EXE_mqtrigger"),
        config.display(),
        state.display()
    ));

    wait_for("the mapping row with 12 messages acked", || {
        let screen = tmux.screen();
        screen.contains(&queue) && screen.contains(" 12 ") && screen.contains("Enabled")
    })
    .await;

    tmux.keys(&["+"]);
    wait_for("BatchSize 20 in the store", || {
        stored_mapping(&state)["BatchSize"] == 20
    })
    .await;
    wait_for("the toast", || tmux.screen().contains("BatchSize of")).await;

    tmux.keys(&["b"]);
    wait_for("the prompt", || {
        tmux.screen().contains("BatchSize (1-10000)")
    })
    .await;
    tmux.keys(&["BSpace", "BSpace", "0", "0", "0", "0", "0"]);
    wait_for("the error in place", || {
        tmux.screen()
            .contains("is out of range: it must be 1 to 10000")
    })
    .await;
    tmux.keys(&["Escape"]);
    // A key right after Escape would read as Alt+key: wait for the prompt to close.
    wait_for("the prompt to close", || {
        !tmux.screen().contains("BatchSize (1-10000)")
    })
    .await;

    tmux.keys(&[":", "batch 33", "Enter"]);
    wait_for("BatchSize 33 from the command line", || {
        stored_mapping(&state)["BatchSize"] == 33
    })
    .await;

    tmux.keys(&["d"]);
    wait_for("the confirmation", || {
        tmux.screen().contains("Disable the mapping of")
    })
    .await;
    tmux.keys(&["y"]);
    wait_for("Disabled in the store", || {
        stored_mapping(&state)["State"] == "Disabled"
    })
    .await;
    wait_for("Disabled on screen", || tmux.screen().contains("Disabled")).await;

    tmux.keys(&["q"]);
    wait_for("the console to exit", || !tmux.alive()).await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_made_through_console_api_shows_in_the_console_at_once() {
    let broker = Broker::connect().await;
    let queue = unique("tui-api");
    let other = unique("tui-api-new");
    broker.declare(&queue, FieldTable::default()).await;
    broker.declare(&other, FieldTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        Setup::new(&queue).toml(&dir.path().join("events.jsonl")),
    )
    .unwrap();
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tmux = Tmux::start(&format!(
        "{} console --config {} --state {} --api {api}",
        env!("CARGO_BIN_EXE_mqtrigger"),
        config.display(),
        dir.path().join("state").display()
    ));
    wait_for("the config's mapping", || tmux.screen().contains(&queue)).await;

    let out = Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args(["mappings", "--endpoint", &format!("http://{api}"), "create"])
        .args([
            "--function-name",
            "recorder",
            "--event-source-arn",
            BROKER_ARN,
        ])
        .args([
            "--queue",
            &other,
            "--secret",
            SECRET_ARN,
            "--batch-size",
            "7",
        ])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the API's mapping on screen", || {
        tmux.screen().contains(&other)
    })
    .await;

    tmux.keys(&["q"]);
    wait_for("the console to exit", || !tmux.alive()).await;
    broker.delete(&queue).await;
    broker.delete(&other).await;
}
