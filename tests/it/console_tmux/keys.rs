//! The console's keys on the real engine: zoom, find, sort, help, the
//! command line's completion and the screen dump, read off the screen.

use super::{Tmux, cell};
use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;

/// The keys of #27 on the real engine: zoom, find, sort, help, the command
/// line's completion and the screen dump, read off the screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_find_sort_help_completion_and_dump_on_the_real_console() {
    let broker = Broker::connect().await;
    let queue = unique("tui-keys");
    broker.declare(&queue, FieldTable::default()).await;
    for body in ["m1", "m2", "fail-one", "m3", "fail-two"] {
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let setup = Setup {
        batch_size: 1,
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
        120,
        40,
    );
    wait_for("both failing messages dead-lettered", || {
        cell(&tmux, &queue, "DEAD") == "2"
    })
    .await;
    let waits = |what: &'static str, text: &'static str| {
        let tmux = &tmux;
        async move { wait_for(what, || tmux.screen().contains(text)).await }
    };

    // Tab twice: the dead letters, folded by their one error; z zooms them.
    tmux.keys(&["Tab", "Tab", "z"]);
    waits("the zoomed dead letters", "[zoom: Dead letters, z back]").await;
    let screen = tmux.screen();
    assert!(
        screen.contains("▸ ×2") && screen.contains("TestFailure: told to fail"),
        "{screen}"
    );
    assert!(!screen.contains("Mappings ("), "zoomed:\n{screen}");
    // Enter unfolds: two rows, each its own message.
    tmux.keys(&["Enter"]);
    waits("the group unfolded", "▾ ×2").await;
    let screen = tmux.screen();
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains("  sha:")).collect();
    assert_eq!(rows.len(), 2, "{screen}");
    assert!(
        rows.iter().any(|r| r.contains("fail-one")) && rows.iter().any(|r| r.contains("fail-two")),
        "{rows:?}"
    );

    // `/` finds by the body's text.
    tmux.keys(&["/", "fail-two", "Enter"]);
    waits("the find text in the title", "/fail-two 1 of 2").await;
    tmux.keys(&["Escape"]);
    wait_for("the find text cleared", || {
        !tmux.screen().contains("/fail-two")
    })
    .await;
    tmux.keys(&["z"]);
    waits("the whole screen again", "Mappings (1)").await;

    // `s` sorts the focused list, and its title says by what.
    tmux.keys(&["s"]);
    waits("the sort in the title", "sort: DIED ▲").await;

    // `?`: the dead letters' keys.
    tmux.keys(&["?"]);
    waits("the help of this panel", "Dead letters panel").await;
    assert!(tmux.screen().contains("fold or unfold the group"));
    tmux.keys(&["Escape"]);
    wait_for("the help closed", || {
        !tmux.screen().contains("Dead letters panel")
    })
    .await;

    // `:` completes a command, then a mapping.
    tmux.keys(&[":", "ba", "Tab"]);
    // (capture-pane drops the space after it, at the end of the line.)
    waits("batch completed", ":batch").await;
    tmux.keys(&["7", " ", &queue[..8], "Tab"]);
    wait_for("the queue completed", || {
        tmux.screen().contains(&format!(":batch 7 {queue}"))
    })
    .await;
    tmux.keys(&["Enter"]);
    waits("BatchSize 7 applied", "BatchSize of").await;

    // `:dump FILE` writes the screen as text.
    let dump = dir.path().join("screen.txt");
    tmux.keys(&[":", &format!("dump {}", dump.display()), "Enter"]);
    wait_for("the dump", || dump.exists()).await;
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(
        text.contains("Dead letters (2") && text.contains(&queue),
        "{text}"
    );
    assert_eq!(text.lines().count(), 40, "every row of the screen");

    tmux.keys(&["q"]);
    wait_for("the console to exit", || !tmux.alive()).await;
    broker.delete(&queue).await;
}
