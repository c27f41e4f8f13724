//! The real console binary in a real terminal: tmux runs it, send-keys types,
//! capture-pane reads the screen. Needs tmux (scripts/test installs it).

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use std::path::Path;
use std::process::Command;

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        Tmux::sized(command, 150, 34)
    }

    fn sized(command: &str, width: u16, height: u16) -> Tmux {
        let (width, height) = (width.to_string(), height.to_string());
        let session = unique("console");
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &width,
                "-y",
                &height,
                command,
            ])
            .status()
            .expect("tmux must be installed (scripts/test installs it)");
        assert!(status.success());
        Tmux { session }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

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

/// The value in the mappings table's `column` on the row of `queue` (its
/// first 20 characters), read under the column's name: numbers end where
/// their name ends, text starts where its name starts.
fn cell_of(screen: &str, queue: &str, column: &str) -> String {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let text = |l: &Vec<char>| l.iter().collect::<String>();
    let Some(header) = lines.iter().find(|l| {
        let t = text(l);
        t.contains("STATE") && t.contains("QUEUE")
    }) else {
        return String::new();
    };
    // A table row, not the toast that names the queue too.
    let Some(row) = lines
        .iter()
        .find(|l| l.first() == Some(&'│') && text(l).contains(&queue[..20]))
    else {
        return String::new();
    };
    let header_text = text(header);
    let Some(at) = header_text
        .find(&format!(" {column} "))
        .map(|i| i + 1)
        .or_else(|| {
            header_text
                .find(&format!("│{column} "))
                .map(|i| i + "│".len())
        })
    else {
        return String::new();
    };
    let start = header_text[..at].chars().count();
    let end = start + column.chars().count();
    let numeric = [
        "BATCH",
        "OK",
        "FAILED",
        "DEAD",
        "MSG/S",
        "IN FLIGHT",
        "FILTERED",
    ]
    .contains(&column);
    if numeric {
        let before: String = row[..end.min(row.len())].iter().collect();
        before
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned()
    } else {
        let after: String = row[start.min(row.len())..].iter().collect();
        after
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

fn cell(tmux: &Tmux, queue: &str, column: &str) -> String {
    cell_of(&tmux.screen(), queue, column)
}

/// `console --endpoint` signed with `secret`, the screen kept after it exits.
fn attached_console(addr: std::net::SocketAddr, secret: &str) -> Tmux {
    Tmux::start(&format!(
        "env AWS_ACCESS_KEY_ID={API_KEY_ID} AWS_SECRET_ACCESS_KEY={secret} \
         AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
         {} console --endpoint http://{addr}; sleep 120",
        env!("CARGO_BIN_EXE_mqtrigger"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_attached_to_serve_follows_it_changes_it_and_outlives_a_restart() {
    let broker = Broker::connect().await;
    let queue = unique("tui-attach");
    broker.declare(&queue, FieldTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        batch_size: 5,
        ..Setup::new(&queue)
    }
    .signed();
    write_service_config(dir.path(), &setup);
    let addr = free_port();
    let mut service = serve_api(dir.path(), addr, &[]);
    wait_listening(addr).await;
    let tmux = attached_console(addr, API_SECRET);
    wait_for(
        "the service's mapping, and where it runs, on screen",
        || {
            let screen = tmux.screen();
            screen.contains(&queue[..20]) && screen.contains(&format!("on http://{addr}"))
        },
    )
    .await;
    let uuid = aws_lambda(
        addr,
        &[
            "list-event-source-mappings",
            "--query",
            "EventSourceMappings[0].UUID",
            "--output",
            "text",
        ],
    );

    for i in 0..12 {
        let body = format!("m{i}");
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    wait_for("OK 12 on the mapping's row", || {
        cell(&tmux, &queue, "OK") == "12"
    })
    .await;
    wait_for("the batches panel", || {
        let screen = tmux.screen();
        screen.contains("Batches of") && screen.contains(" ok ")
    })
    .await;

    tmux.keys(&["d"]);
    wait_for("the confirmation", || {
        tmux.screen().contains("Disable the mapping of")
    })
    .await;
    tmux.keys(&["y"]);
    wait_for("the AWS CLI to read Disabled", || {
        aws_cli_state(addr, &uuid) == "Disabled"
    })
    .await;
    wait_for("Disabled on screen", || {
        cell(&tmux, &queue, "STATE") == "Disabled"
    })
    .await;
    tmux.keys(&["e"]);
    wait_for("the AWS CLI to read Enabled", || {
        aws_cli_state(addr, &uuid) == "Enabled"
    })
    .await;

    // A change made elsewhere shows without a key press.
    aws_lambda(
        addr,
        &[
            "update-event-source-mapping",
            "--uuid",
            &uuid,
            "--batch-size",
            "7",
        ],
    );
    wait_for("BatchSize 7 on screen", || {
        cell(&tmux, &queue, "BATCH") == "7"
    })
    .await;

    // The service restarts under the console.
    stop(service);
    wait_for("the console to say it lost the service", || {
        tmux.screen().contains("LOST, reconnecting")
    })
    .await;
    assert_eq!(cell(&tmux, &queue, "OK"), "12", "the last picture stays");
    service = serve_api(dir.path(), addr, &[]);
    wait_for("the service back, with its counts from its start", || {
        let screen = tmux.screen();
        !screen.contains("LOST") && cell(&tmux, &queue, "OK") == "0"
    })
    .await;
    for i in 0..3 {
        let body = format!("after{i}");
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    wait_for("OK 3 after the restart", || {
        cell(&tmux, &queue, "OK") == "3"
    })
    .await;
    assert_eq!(cell(&tmux, &queue, "BATCH"), "7");

    tmux.keys(&["q"]);
    wait_for("the console to exit", || {
        !tmux.screen().contains(&queue[..20])
    })
    .await;
    assert!(
        service.try_wait().unwrap().is_none(),
        "quitting the console leaves the service running"
    );

    let refused = attached_console(addr, "not-the-secret");
    wait_for("a clear refusal", || {
        let screen = refused.screen().replace('\n', "");
        screen.contains("refused this console's signature") && screen.contains("[api] access_keys")
    })
    .await;
    drop(service);
    broker.delete(&queue).await;
}

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
