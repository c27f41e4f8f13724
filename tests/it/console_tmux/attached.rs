//! `console --endpoint` attached to a `serve`: it follows the service,
//! changes it, outlives its restart, and says clearly when the signature
//! is refused.

use super::{Tmux, cell};
use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;

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
