//! Mappings to one broker share its connections; one mapping's channel
//! trouble stays that mapping's.

use crate::common::*;
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

fn stomp_port(endpoint: &str) -> u16 {
    mqtrigger::source::stomp_link::parse_endpoint(endpoint)
        .expect("a stomp:// endpoint")
        .1
}

/// Three ActiveMQ mappings on one STOMP connection. Disabling one ends its
/// subscription only: the others go on, and a message sent to its queue
/// meanwhile waits in the queue (not in a forgotten subscription's
/// prefetch) for the mapping to come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_activemq_mappings_share_one_connection_and_a_disabled_one_leaves_its_queue_alone() {
    let queues = [
        unique("amq-share-a"),
        unique("amq-share-b"),
        unique("amq-share-c"),
    ];
    let mut client = Stomp::connect("admin", "admin").await;
    let port = stomp_port(&stomp_endpoint());
    let before = connections_to(port);
    let running = Running::start(&Setup::activemq(&queues[0])).await;
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
        client.send(q, &[], body.as_bytes(), false).await;
        wait_for("each mapping's first message", || {
            delivered(&running, &body)
        })
        .await;
    }
    assert_eq!(
        connections_to(port) - before,
        1,
        "three mappings, one connection"
    );

    running.control.disable(b.uuid).await.unwrap();
    wait_for("the mapping to stop", || {
        running.control.get(b.uuid).unwrap().state == State::Disabled
    })
    .await;
    let waiting = format!("{} while disabled", queues[1]);
    client
        .send(&queues[1], &[], waiting.as_bytes(), false)
        .await;
    for q in [&queues[0], &queues[2]] {
        let body = format!("{q} after");
        client.send(q, &[], body.as_bytes(), false).await;
        wait_for("the other mappings go on", || delivered(&running, &body)).await;
    }
    assert!(
        !delivered(&running, &waiting),
        "a disabled mapping consumes nothing"
    );
    assert_eq!(connections_to(port) - before, 1, "still one connection");

    running.control.enable(b.uuid).await.unwrap();
    wait_for("the message that waited in the queue", || {
        delivered(&running, &waiting)
    })
    .await;
    assert_eq!(
        connections_to(port) - before,
        1,
        "enabled again on the same connection"
    );
    running.control.shutdown().await;
}

/// ActiveMQ answers a refused SUBSCRIBE with an ERROR that names its
/// receipt and keeps the connection: the subscription beside it on the
/// same link still gets its messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_leaves_the_shared_connection_to_the_others() {
    use mqtrigger::source::stomp::Frame;
    use mqtrigger::source::stomp_link::StompLink;
    let secret = mqtrigger::config::Secret {
        username: "admin".into(),
        password: "admin".into(),
    };
    let link = StompLink::connect(&stomp_endpoint(), &secret, None, ("test", "test"))
        .await
        .unwrap();
    let good = unique("amq-link-good");
    let mut messages = link.route("good", &good);
    let subscribe = |id: &str, queue: &str| {
        Frame::new("SUBSCRIBE")
            .header("id", id)
            .header("destination", &format!("/queue/{queue}"))
            .header("ack", "auto")
    };
    let timeout = std::time::Duration::from_secs(30);
    link.request(subscribe("good", &good), timeout)
        .await
        .unwrap();

    let _bad_messages = link.route("bad", "bad");
    let refused = link
        .request(
            subscribe("bad", &unique("amq-link-bad")).header("selector", "not (valid"),
            timeout,
        )
        .await
        .unwrap_err();
    assert!(
        refused.contains("not (valid"),
        "the broker's reason: {refused}"
    );

    let mut client = Stomp::connect("admin", "admin").await;
    client.send(&good, &[], b"still here", false).await;
    let frame = tokio::time::timeout(timeout, messages.recv())
        .await
        .expect("a message on the connection the refusal left open")
        .unwrap()
        .unwrap();
    assert_eq!(&frame.body[..], b"still here");
}

/// ActiveMQ over `maximumConnections` closes a new socket without a word;
/// the mapping says which limit that is and keeps trying. The test broker's
/// STOMP on 61615 takes two connections (assets/brokers/activemq.xml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_over_its_connection_limit_is_named_and_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let capped = stomp_endpoint().replace(":61613", ":61615");
    let hostport = capped.trim_start_matches("stomp://").to_owned();
    let mut held = Vec::new();
    while held.len() < 2 {
        let mut socket = tokio::net::TcpStream::connect(&hostport)
            .await
            .expect("ActiveMQ's capped STOMP listener (scripts/brokers up)");
        socket
            .write_all(
                b"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:admin\npasscode:admin\n\n\0",
            )
            .await
            .unwrap();
        let mut answer = [0u8; 9];
        // Another test's leftover may still hold a place: retry until two are ours.
        if socket.read_exact(&mut answer).await.is_ok() && &answer == b"CONNECTED" {
            held.push(socket);
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let mut setup = Setup::activemq(&unique("amq-capped"));
    setup.endpoints = vec![capped];
    let running = Running::start(&setup).await;
    wait_for("the limit in LastProcessingResult", || {
        running
            .mapping()
            .last_processing_result
            .contains("maximumConnections")
    })
    .await;
    assert_eq!(
        running.mapping().state,
        State::Enabled,
        "retried, not stopped"
    );
    drop(held);
    let body = b"through once there is room";
    let mut client = Stomp::connect("admin", "admin").await;
    client.send(&setup.queue, &[], body, false).await;
    wait_for("the mapping to connect once there is room", || {
        delivered(&running, "through once there is room")
    })
    .await;
    running.control.shutdown().await;
}
