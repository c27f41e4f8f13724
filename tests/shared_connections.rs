//! Mappings to one broker share its connections; one mapping's channel
//! trouble stays that mapping's.

mod common;

use common::*;
use lapin::BasicProperties;
use mqtrigger::bench::probe::connections_to;
use mqtrigger::mapping::State;

fn port() -> u16 {
    amqp_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next()?.parse().ok())
        .unwrap_or(5672)
}

fn delivered(running: &Running, body: &str) -> bool {
    running
        .events()
        .iter()
        .flat_map(messages)
        .any(|(b, _)| b == body.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_mappings_share_one_connection_and_a_deleted_queue_stops_only_its_own() {
    let broker = Broker::connect().await;
    let queues = [unique("share-a"), unique("share-b"), unique("share-c")];
    for q in &queues {
        broker.declare(q, Default::default()).await;
    }
    // This test's own client holds one connection already.
    let before = connections_to(port());
    let running = Running::start(&Setup::new(&queues[0])).await;
    let b = running
        .control
        .create(beside("recorder", &queues[1], 1))
        .await
        .unwrap();
    running
        .control
        .create(beside("recorder", &queues[2], 1))
        .await
        .unwrap();
    for q in &queues {
        let body = format!("{q} first");
        broker
            .publish(q, body.as_bytes(), BasicProperties::default())
            .await;
        wait_for("each mapping's first message", || {
            delivered(&running, &body)
        })
        .await;
    }
    assert_eq!(
        connections_to(port()) - before,
        1,
        "three mappings, one connection"
    );

    broker.delete(&queues[1]).await;
    wait_for("the mapping of the deleted queue to stop", || {
        running.control.get(b.uuid).unwrap().state == State::Disabled
    })
    .await;
    for q in [&queues[0], &queues[2]] {
        let body = format!("{q} after");
        broker
            .publish(q, body.as_bytes(), BasicProperties::default())
            .await;
        wait_for("the other mappings go on", || delivered(&running, &body)).await;
    }
    assert_eq!(connections_to(port()) - before, 1, "still one connection");
    running.control.shutdown().await;
    for q in [&queues[0], &queues[2]] {
        assert_eq!(broker.ready(q).await, 0);
        broker.delete(q).await;
    }
}

fn rabbitmqctl(args: &[&str]) {
    let out = std::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .expect("rabbitmqctl runs beside the test broker");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {out:?}");
}

/// A vhost that allows no connections: the mapping keeps trying and says
/// which quota to raise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_connection_quota_is_named_and_retried() {
    let vhost = unique("quota");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    rabbitmqctl(&[
        "set_vhost_limits",
        "-p",
        &vhost,
        r#"{"max-connections": 0}"#,
    ]);
    let mut setup = Setup::new(&unique("quota-q"));
    setup.vhost = vhost.clone();
    let running = Running::start(&setup).await;
    wait_for("the quota in LastProcessingResult", || {
        running
            .mapping()
            .last_processing_result
            .contains("the connection limit is reached")
    })
    .await;
    let mapping = running.mapping();
    assert_eq!(mapping.state, State::Enabled, "retried, not stopped");
    assert!(
        mapping.last_processing_result.contains("set_vhost_limits"),
        "says how to raise it: {}",
        mapping.last_processing_result
    );
    running.control.shutdown().await;
    rabbitmqctl(&["delete_vhost", &vhost]);
}
