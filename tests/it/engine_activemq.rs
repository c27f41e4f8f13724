//! The engine against the real ActiveMQ over STOMP.

use crate::common::*;
use mqtrigger::mapping::{State, StateTransitionReason};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_as_the_exact_aws_mq_event_and_are_acked() {
    let queue = unique("amq-shape");
    let mut client = Stomp::connect("admin", "admin").await;
    let headers = [
        ("persistent", "true"),
        ("priority", "7"),
        ("correlation-id", "corr-1"),
        ("reply-to", "/queue/replies"),
        ("type", "order"),
        ("tenant", "acme"),
    ];
    client.send(&queue, &headers, b"{\"order\":1}", false).await;
    client.send(&queue, &[], &[0, 1, 2, 255], true).await;
    let running = Running::start(&Setup::activemq(&queue)).await;
    wait_for("both messages", || {
        running
            .events()
            .iter()
            .map(|e| messages(e).len())
            .sum::<usize>()
            == 2
    })
    .await;
    let mut event = running.events().remove(0);

    let typed: aws_lambda_events::event::activemq::ActiveMqEvent =
        serde_json::from_value(event.clone()).unwrap();
    assert_eq!(typed.event_source.as_deref(), Some("aws:mq"));
    for m in event["messages"].as_array_mut().unwrap() {
        let m = m.as_object_mut().unwrap();
        assert!(
            m.remove("messageID")
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("ID:")
        );
        let t = m.remove("timestamp").unwrap().as_i64().unwrap();
        assert_eq!(m.remove("brokerInTime").unwrap().as_i64(), Some(t));
        assert!(m.remove("brokerOutTime").unwrap().as_i64().unwrap() >= t);
    }
    let expected = serde_json::json!({
        "eventSource": "aws:mq",
        "eventSourceArn": BROKER_ARN,
        "messages": [
            {
                "messageType": "jms/text-message", "deliveryMode": 2, "correlationID": "corr-1",
                "replyTo": "/queue/replies", "destination": {"physicalName": queue}, "redelivered": false,
                "type": "order", "expiration": 0, "priority": 7, "data": "eyJvcmRlciI6MX0=",
                "properties": {"tenant": "acme"}
            },
            {
                "messageType": "jms/bytes-message", "deliveryMode": 1, "correlationID": "",
                "replyTo": "null", "destination": {"physicalName": queue}, "redelivered": false,
                "type": "", "expiration": 0, "priority": 4, "data": "AAEC/w==",
                "properties": {}
            }
        ]
    });
    assert_eq!(event, expected);
    wait_for("LastProcessingResult OK", || {
        running.mapping().last_processing_result == "OK"
    })
    .await;
    running.control.shutdown().await;
    let left = client.take(&queue, Duration::from_secs(2), |_| true).await;
    assert!(left.is_empty(), "acked messages do not come back: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_is_retried_then_nacked_into_activemq_dlq() {
    let queue = unique("amq-retry");
    let mut client = Stomp::connect("admin", "admin").await;
    let marker = unique("dead");
    client
        .send(&queue, &[("marker", &marker)], b"please fail", false)
        .await;
    let mut setup = Setup::activemq(&queue);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    let running = Running::start(&setup).await;
    wait_for("the dead letter, moved", || {
        running.dead_letters().iter().any(|d| d.moved)
    })
    .await;
    let events = running.events();
    assert_eq!(
        events.len(),
        6,
        "one attempt and 5 redeliveries, in the engine"
    );
    let flags: Vec<bool> = events.iter().map(|e| messages(e)[0].1).collect();
    assert_eq!(
        flags,
        [false, true, true, true, true, true],
        "the function saw it before: each retry says redelivered"
    );
    let letter = running.dead_letters().remove(0);
    assert_eq!(
        (letter.attempts, letter.destination.as_str()),
        (6, "ActiveMQ.DLQ")
    );
    running.control.shutdown().await;
    let moved = client
        .take("ActiveMQ.DLQ", Duration::from_secs(2), |f| {
            f.get("marker") == Some(marker.as_str())
        })
        .await;
    assert_eq!(
        moved.len(),
        1,
        "ActiveMQ moved the NACKed message to its DLQ"
    );
    assert_eq!(&moved[0].body[..], b"please fail");
    assert_eq!(
        moved[0].get("original-destination"),
        Some(format!("/queue/{queue}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_returns_messages_marked_redelivered() {
    let queue = unique("amq-redeliver");
    let mut client = Stomp::connect("admin", "admin").await;
    client.send(&queue, &[], b"in flight", false).await;
    // A consumer that takes the message and vanishes without acking.
    let mut careless = Stomp::connect("admin", "admin").await;
    let seen = careless
        .take(&queue, Duration::from_millis(500), |_| false)
        .await;
    assert!(seen.is_empty(), "it acked nothing");
    drop(careless);
    let running = Running::start(&Setup::activemq(&queue)).await;
    wait_for("the message", || !running.events().is_empty()).await;
    let event = running.events().remove(0);
    assert_eq!(messages(&event), vec![(b"in flight".to_vec(), true)]);
    running.control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_missing_read_rights_stop_with_their_codes() {
    let queue = unique("amq-auth");
    let mut setup = Setup::activemq(&queue);
    setup.password = "wrong".into();
    let running = Running::start(&setup).await;
    wait_for("the stop", || running.mapping().state == State::Disabled).await;
    let m = running.mapping();
    assert_eq!(
        m.state_transition_reason,
        StateTransitionReason::EventSourceAuthnError,
        "{:?}",
        m.state_detail
    );
    assert!(m.state_detail.unwrap().contains("'admin'"));

    let mut setup = Setup::activemq(&queue);
    setup.username = "noread".into();
    setup.password = "noread-secret".into();
    let running = Running::start(&setup).await;
    wait_for("the stop", || running.mapping().state == State::Disabled).await;
    let m = running.mapping();
    assert_eq!(
        m.state_transition_reason,
        StateTransitionReason::EventSourceAuthzError,
        "{:?}",
        m.state_detail
    );
    assert!(m.state_detail.unwrap().contains("not authorized to read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_over_tls_verifies_the_broker_certificate() {
    let queue = unique("amq-tls");
    let mut client = Stomp::connect("admin", "admin").await;
    client.send(&queue, &[], b"over tls", false).await;
    let mut setup = Setup::activemq(&queue);
    setup.endpoints = vec!["stomp+ssl://localhost:61614".into()];
    setup.ca_file = Some(stomp_ca());
    let running = Running::start(&setup).await;
    wait_for("the message over TLS", || !running.events().is_empty()).await;
    assert_eq!(
        messages(&running.events()[0]),
        vec![(b"over tls".to_vec(), false)]
    );
    running.control.shutdown().await;

    // Not trusted: the system roots do not know the test CA.
    let mut untrusted = Setup::activemq(&queue);
    untrusted.endpoints = vec!["stomp+ssl://localhost:61614".into()];
    let running = Running::start(&untrusted).await;
    wait_for("the stop", || running.mapping().state == State::Disabled).await;
    let m = running.mapping();
    assert_eq!(
        m.state_transition_reason,
        StateTransitionReason::EsmConfigNotValid
    );
    let detail = m.state_detail.unwrap();
    assert!(
        detail.contains("TLS") && detail.contains("UnknownIssuer"),
        "{detail}"
    );

    // Trusted, but the certificate is for "localhost", not 127.0.0.1.
    let mut wrong_name = Setup::activemq(&queue);
    wrong_name.endpoints = vec!["stomp+ssl://127.0.0.1:61614".into()];
    wrong_name.ca_file = Some(stomp_ca());
    let running = Running::start(&wrong_name).await;
    wait_for("the stop", || running.mapping().state == State::Disabled).await;
    let detail = running.mapping().state_detail.unwrap();
    assert!(
        detail.contains("TLS") && detail.contains("not valid for name"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_endpoint_is_used_when_the_first_does_not_answer() {
    let queue = unique("amq-failover");
    let mut client = Stomp::connect("admin", "admin").await;
    client.send(&queue, &[], b"via standby", false).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut setup = Setup::activemq(&queue);
    setup.endpoints = vec![format!("stomp://{closed}"), stomp_endpoint()];
    let running = Running::start(&setup).await;
    wait_for("delivery through the second endpoint", || {
        !running.events().is_empty()
    })
    .await;
    running.control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_dead_letter_keeps_its_headers_and_names_the_original_id() {
    let queue = unique("amq-republish");
    let mut client = Stomp::connect("admin", "admin").await;
    let marker = unique("copy");
    client
        .send(
            &queue,
            &[
                ("marker", &marker),
                ("correlation-id", "corr-9"),
                ("tenant_id", "acme"),
                ("persistent", "true"),
            ],
            b"please fail",
            false,
        )
        .await;
    let mut setup = Setup::activemq(&queue);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    let running = Running::start(&setup).await;
    wait_for("the dead letter, moved", || {
        running.dead_letters().iter().any(|d| d.moved)
    })
    .await;
    let uuid = running.mapping().uuid;
    running.control.disable(uuid).await.unwrap();
    let letter = running.dead_letters().remove(0);
    running.control.republish(uuid, letter.id).await.unwrap();
    let copies = client
        .take(&queue, Duration::from_secs(5), |f| {
            f.get("marker") == Some(marker.as_str())
        })
        .await;
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    assert_eq!(&copy.body[..], b"please fail");
    assert_eq!(copy.get("correlation-id"), Some("corr-9"));
    assert_eq!(copy.get("tenant_id"), Some("acme"));
    assert_eq!(copy.get("persistent"), Some("true"));
    assert_eq!(
        copy.get("x-mqtrigger-original-message-id"),
        letter.message_id.as_deref(),
        "the original's id, which ActiveMQ does not let a sender set"
    );
    assert_eq!(copy.get("content-length"), None, "a TextMessage stays one");
    running.control.shutdown().await;
}

/// With MaximumConcurrency 1 the engine ACKs cumulatively (`ack:client`):
/// an ACK must never cover a message whose fate is not settled, and a NACK
/// must take only its own message to the DLQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_order_acks_settle_each_message_once_around_a_dead_letter_and_a_filtered_one() {
    let queue = unique("amq-inorder");
    let marker = unique("inorder");
    let mut setup = Setup::activemq(&queue);
    setup.batch_size = 1;
    setup.filter = Some(r#"{"data":{"kind":["order"]}}"#.into());
    let running = Running::start(&setup).await;
    let mut client = Stomp::connect("admin", "admin").await;
    let tagged = [("marker", marker.as_str())];
    for body in [
        &br#"{"kind":"order","n":"fail"}"#[..],
        br#"{"kind":"refund","n":2}"#,
        br#"{"kind":"order","n":3}"#,
        br#"{"kind":"refund","n":4}"#,
    ] {
        client.send(&queue, &tagged, body, false).await;
    }
    wait_for("the dead letter, moved, and order 3", || {
        running.dead_letters().iter().any(|d| d.moved)
            && running
                .events()
                .iter()
                .flat_map(messages)
                .any(|(b, _)| b == br#"{"kind":"order","n":3}"#)
    })
    .await;
    wait_for("both refunds filtered", || {
        running.control.stats(running.mapping().uuid).filtered == 2
    })
    .await;
    running.control.shutdown().await;
    let left = client.take(&queue, Duration::from_secs(2), |_| true).await;
    assert!(left.is_empty(), "every message was settled: {left:?}");
    let moved = client
        .take("ActiveMQ.DLQ", Duration::from_secs(2), |f| {
            f.get("marker") == Some(marker.as_str())
        })
        .await;
    let moved: Vec<&[u8]> = moved.iter().map(|f| &f.body[..]).collect();
    assert_eq!(
        moved,
        [&br#"{"kind":"order","n":"fail"}"#[..]],
        "only the failed order reached the DLQ"
    );
}
