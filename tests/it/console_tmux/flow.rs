//! Operating the flow from the real console (#29): `p` pauses (the
//! BACKLOG shows what waits), `.` lets one batch through, `p` resumes;
//! `t` on a dead letter opens its history; `:replay-all` asks how many,
//! shows its progress bar and sums up.

use super::{Tmux, cell};
use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_step_resume_a_history_and_a_bulk_replay_on_the_real_console() {
    let broker = Broker::connect().await;
    let queue = unique("tui-flow");
    broker.declare(&queue, FieldTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let setup = Setup {
        batch_size: 1,
        window_secs: Some(0),
        max_redeliveries: Some(0),
        engine_toml: "backlog_interval_ms = 200".into(),
        // Slow enough that a bulk replay's bar is on screen for a while.
        function_env: vec![("SLEEP".into(), "0.4".into())],
        ..Setup::new(&queue)
    };
    std::fs::write(&config, setup.toml(&dir.path().join("events.jsonl"))).unwrap();
    let tmux = Tmux::sized(
        &format!(
            "{} console --config {} --state {}",
            env!("CARGO_BIN_EXE_mqtrigger"),
            config.display(),
            dir.path().join("state").display()
        ),
        140,
        40,
    );
    wait_for("the mapping running", || {
        cell(&tmux, &queue, "STATE") == "Enabled"
    })
    .await;
    let publish = |bodies: &'static [&'static str]| {
        let broker = &broker;
        let queue = &queue;
        async move {
            for body in bodies {
                broker
                    .publish(queue, body.as_bytes(), BasicProperties::default())
                    .await;
            }
        }
    };

    // p: paused; what is published waits, and the BACKLOG says so.
    tmux.keys(&["p"]);
    wait_for("Paused", || cell(&tmux, &queue, "STATE") == "Paused").await;
    publish(&["m1", "m2", "m3"]).await;
    wait_for("BACKLOG 3", || cell(&tmux, &queue, "BACKLOG") == "3↑").await;
    assert_eq!(cell(&tmux, &queue, "OK"), "0");
    // .: one batch (BatchSize 1: one message), then paused again.
    tmux.keys(&["."]);
    wait_for("one through", || cell(&tmux, &queue, "OK") == "1").await;
    // (Still more than a minute ago, before anything was published: ↑.)
    wait_for("two waiting", || cell(&tmux, &queue, "BACKLOG") == "2↑").await;
    assert_eq!(cell(&tmux, &queue, "STATE"), "Paused");
    // p again: the rest.
    tmux.keys(&["p"]);
    wait_for("all three", || cell(&tmux, &queue, "OK") == "3").await;
    assert_eq!(cell(&tmux, &queue, "STATE"), "Enabled");

    // Two dead letters (the recorder fails bodies holding "fail").
    publish(&["fail-a", "fail-b"]).await;
    wait_for("two dead letters", || cell(&tmux, &queue, "DEAD") == "2").await;
    // Tab twice: the dead letters; g lists each letter; t: its history.
    tmux.keys(&["Tab", "Tab", "g", "t"]);
    wait_for("a history", || tmux.screen().contains("History of sha:")).await;
    let screen = tmux.screen();
    assert!(screen.contains("try 1 failed after"), "{screen}");
    assert!(
        screen.contains(&format!("dead-lettered to {queue}.dlq")),
        "{screen}"
    );
    tmux.keys(&["Escape"]);
    wait_for("the history closed", || {
        !tmux.screen().contains("History of")
    })
    .await;

    // :replay-all asks how many, shows its bar, sums up.
    tmux.keys(&[":", "replay-all", "Enter"]);
    wait_for("the question", || {
        tmux.screen()
            .contains("with each of the 2 dead letters listed")
    })
    .await;
    tmux.keys(&["y"]);
    wait_for("the progress bar", || {
        tmux.screen().contains("Replaying dead letters")
    })
    .await;
    wait_for("the summary", || {
        tmux.screen().contains("0 of 2 replayed; 2 failed")
    })
    .await;
    assert!(
        !tmux.screen().contains("Replaying dead letters"),
        "the bar closed"
    );
    tmux.keys(&["q"]);
    wait_for("the console gone", || !tmux.alive()).await;
    broker.delete(&queue).await;
}
