//! A RabbitMQ restart under a running mapping. It uses the second node that
//! `scripts/brokers up` starts (`mqt-restart@localhost` on 5673), so that
//! stopping it does not disturb the tests running on the main broker.

mod common;

use common::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mqtrigger::mapping::State;
use std::process::Command;

const NODE: &str = "mqt-restart@localhost";

fn restart_url() -> String {
    std::env::var("MQTRIGGER_TEST_AMQP_RESTART")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5673/%2f".into())
}

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(["-n", NODE])
        .args(args)
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

async fn broker() -> Broker {
    let conn = Connection::connect(&restart_url(), ConnectionProperties::default())
        .await
        .expect("the restart node must run (scripts/brokers up)");
    let channel = conn.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    Broker { conn, channel }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_reports_a_broker_restart_and_resumes_by_itself() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("lapin=debug,mqtrigger=debug")
        .with_test_writer()
        .try_init();
    let queue = unique("restart");
    let first = broker().await;
    first.declare(&queue, FieldTable::default()).await;
    for i in 0..10 {
        first
            .publish(
                &queue,
                format!("before {i}").as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await;
    }
    let mut setup = Setup::new(&queue);
    setup.batch_size = 5;
    setup.endpoints = vec!["amqp://127.0.0.1:5673".into()];
    let running = Running::start(&setup).await;
    let delivered = |r: &Running| r.events().iter().map(|e| messages(e).len()).sum::<usize>();
    wait_for("the first 10 messages", || delivered(&running) == 10).await;
    drop(first);

    rabbitmqctl(&["stop_app"]);
    wait_for("the outage to show", || {
        running
            .mapping()
            .last_processing_result
            .contains("Connection error")
    })
    .await;
    assert_eq!(
        running.mapping().state,
        State::Enabled,
        "an outage is not a stop"
    );
    rabbitmqctl(&["start_app"]);

    let second = broker().await;
    for i in 0..10 {
        second
            .publish(
                &queue,
                format!("after {i}").as_bytes(),
                BasicProperties::default(),
            )
            .await;
    }
    wait_for("the 10 messages published after the restart", || {
        delivered(&running) >= 20
    })
    .await;
    wait_for("LastProcessingResult back to OK", || {
        running.mapping().last_processing_result == "OK"
    })
    .await;
    running.control.shutdown().await;
    let bodies: std::collections::HashSet<Vec<u8>> = running
        .events()
        .iter()
        .flat_map(messages)
        .map(|(b, _)| b)
        .collect();
    assert_eq!(
        bodies.len(),
        20,
        "every message, before and after the restart"
    );
    assert_eq!(second.ready(&queue).await, 0);
    second.delete(&queue).await;
}
