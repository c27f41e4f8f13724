//! What the function gets: batches of BatchSize, a partial batch flushed by
//! the window, events under 6 MB, headers larger than a small frame, and
//! the exact `aws:rmq` event.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_acks_every_message_in_batches_of_batch_size() {
    let broker = Broker::connect().await;
    let queue = unique("size");
    broker.declare(&queue, FieldTable::default()).await;
    for i in 0..25 {
        broker
            .publish(
                &queue,
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await;
    }
    let mut setup = Setup::new(&queue);
    setup.batch_size = 10;
    setup.window_secs = Some(3);
    let running = Running::start(&setup).await;

    wait_for("25 messages invoked", || {
        running
            .events()
            .iter()
            .map(|e| messages(e).len())
            .sum::<usize>()
            == 25
    })
    .await;
    let sizes: Vec<usize> = running.events().iter().map(|e| messages(e).len()).collect();
    assert_eq!(
        sizes,
        [10, 10, 5],
        "batches flush at BatchSize, the rest at the window"
    );
    let bodies: Vec<Vec<u8>> = running
        .events()
        .iter()
        .flat_map(messages)
        .map(|(b, _)| b)
        .collect();
    let expected: Vec<Vec<u8>> = (0..25).map(|i| format!("m{i}").into_bytes()).collect();
    assert_eq!(bodies, expected, "every message once, in queue order");

    wait_for("LastProcessingResult OK", || {
        running.mapping().last_processing_result == "OK"
    })
    .await;
    running.control.shutdown().await;
    assert_eq!(
        broker.ready(&queue).await,
        0,
        "acked messages do not come back"
    );
    let batches = running
        .control
        .store()
        .batches(running.mapping().uuid, 10)
        .unwrap();
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.outcome == "OK" && b.attempts == 1));
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_flushes_a_partial_batch() {
    let broker = Broker::connect().await;
    let queue = unique("window");
    broker.declare(&queue, FieldTable::default()).await;
    let mut setup = Setup::new(&queue);
    setup.batch_size = 100;
    setup.window_secs = Some(1);
    let running = Running::start(&setup).await;
    for body in ["a", "b", "c"] {
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    wait_for("a first batch", || !running.events().is_empty()).await;
    broker
        .publish(&queue, b"d", BasicProperties::default())
        .await;
    wait_for("a second batch", || running.events().len() == 2).await;
    let sizes: Vec<usize> = running.events().iter().map(|e| messages(e).len()).collect();
    assert_eq!(
        sizes,
        [3, 1],
        "each batch is sent when its window ends, far below BatchSize"
    );
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stay_under_6_mb_and_an_oversized_record_is_dead_lettered() {
    let broker = Broker::connect().await;
    let queue = unique("six-mb");
    broker.declare(&queue, FieldTable::default()).await;
    let big = vec![b'x'; 2 * 1024 * 1024]; // 2.7 MB once base64-encoded
    for i in 0..5u8 {
        let mut body = big.clone();
        body[0] = b'0' + i;
        broker
            .publish(&queue, &body, BasicProperties::default())
            .await;
    }
    let huge = vec![b'h'; 5 * 1024 * 1024]; // 6.7 MB encoded: no event can hold it
    broker
        .publish(
            &queue,
            &huge,
            BasicProperties::default().with_message_id("huge".into()),
        )
        .await;
    let mut setup = Setup::new(&queue);
    setup.batch_size = 10;
    let running = Running::start(&setup).await;

    wait_for("the five 2 MB messages", || {
        running
            .events()
            .iter()
            .map(|e| messages(e).len())
            .sum::<usize>()
            == 5
    })
    .await;
    for event in running.events() {
        let size = serde_json::to_vec(&event).unwrap().len();
        assert!(
            size <= 6 * 1024 * 1024,
            "an event of {size} bytes is over Lambda's limit"
        );
    }
    let sizes: Vec<usize> = running.events().iter().map(|e| messages(e).len()).collect();
    assert_eq!(sizes, [2, 2, 1]);
    wait_for("the huge message in the journal, moved", || {
        running.dead_letters().iter().any(|d| d.moved)
    })
    .await;
    let letters = running.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message_id.as_deref(), Some("huge"));
    assert!(
        letters[0].reason.contains("at most 6291456 bytes"),
        "{}",
        letters[0].reason
    );
    assert_eq!(
        letters[0].body, huge,
        "the journal keeps the body for replay"
    );
    running.control.shutdown().await;
    let dlq = broker.drain(&format!("{queue}.dlq")).await;
    assert_eq!(
        dlq.len(),
        1,
        "the oversized message is in the dead-letter queue, not dropped"
    );
    assert_eq!(dlq[0].delivery.data, huge);
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

/// A content header larger than the 8 KB frames idle mappings start with
/// (one 9,000-byte header) is consumed, not left at the head of the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_headers_larger_than_a_small_frame_is_consumed() {
    let broker = Broker::connect().await;
    let queue = unique("bigheader");
    broker.declare(&queue, FieldTable::default()).await;
    let mut headers = FieldTable::default();
    headers.insert("big".into(), AMQPValue::LongString("x".repeat(9000).into()));
    broker
        .publish(
            &queue,
            b"big headers",
            BasicProperties::default().with_headers(headers),
        )
        .await;
    broker
        .publish(&queue, b"behind it", BasicProperties::default())
        .await;
    let setup = Setup::new(&queue);
    let running = Running::start(&setup).await;
    wait_for("both messages at the function", || {
        running.events().iter().flat_map(messages).count() >= 2
    })
    .await;
    let first = &running.events()[0];
    let header = &first["rmqMessagesByQueue"][format!("{queue}::/")][0]["basicProperties"]["headers"]
        ["big"]["bytes"];
    assert_eq!(header.as_array().map(|b| b.len()), Some(9000));
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_is_the_exact_aws_rmq_event() {
    let broker = Broker::connect().await;
    let queue = unique("shape");
    broker.declare(&queue, FieldTable::default()).await;
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    headers.insert("n".into(), AMQPValue::LongInt(10));
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_priority(5)
        .with_message_id("id-1".into())
        .with_timestamp(2021)
        .with_headers(headers);
    broker.publish(&queue, br#"{"order":1}"#, props).await;
    broker
        .publish(&queue, b"", BasicProperties::default())
        .await;
    // Every other property, nested and typed headers, and a binary body.
    let mut nested = FieldTable::default();
    nested.insert("depth".into(), AMQPValue::ShortShortInt(-2));
    let mut headers = FieldTable::default();
    headers.insert("nested".into(), AMQPValue::FieldTable(nested));
    headers.insert(
        "list".into(),
        AMQPValue::FieldArray(vec![AMQPValue::Boolean(true), AMQPValue::Double(1.5)].into()),
    );
    headers.insert("big".into(), AMQPValue::LongLongInt(-9_000_000_000));
    let props = BasicProperties::default()
        .with_content_encoding("gzip".into())
        .with_correlation_id("corr-9".into())
        .with_reply_to("replies".into())
        .with_expiration("60000".into())
        .with_type("order.created".into())
        .with_user_id("guest".into())
        .with_app_id("shop".into())
        .with_cluster_id("c1".into())
        .with_timestamp(1_700_000_000)
        .with_headers(headers);
    broker
        .publish(&queue, &[0, 159, 146, 150, 0xff, 0], props)
        .await;
    let running = Running::start(&Setup::new(&queue)).await;
    wait_for("the event", || !running.events().is_empty()).await;
    let event = running.events().remove(0);
    running.control.shutdown().await;

    let key = format!("{queue}::/");
    let expected = serde_json::json!({
        "eventSource": "aws:rmq",
        "eventSourceArn": BROKER_ARN,
        "rmqMessagesByQueue": { key: [
            {
                "basicProperties": {
                    "contentType": "application/json", "contentEncoding": null,
                    "headers": {"tenant": {"bytes": [97, 99, 109, 101]}, "n": 10},
                    "deliveryMode": 2, "priority": 5, "correlationId": null, "replyTo": null,
                    "expiration": null, "messageId": "id-1", "timestamp": "Jan 1, 1970, 12:33:41 AM",
                    "type": null, "userId": null, "appId": null, "clusterId": null, "bodySize": 11
                },
                "redelivered": false,
                "data": "eyJvcmRlciI6MX0="
            },
            {
                "basicProperties": {
                    "contentType": null, "contentEncoding": null, "headers": {},
                    "deliveryMode": 1, "priority": null, "correlationId": null, "replyTo": null,
                    "expiration": null, "messageId": null, "timestamp": null,
                    "type": null, "userId": null, "appId": null, "clusterId": null, "bodySize": 0
                },
                "redelivered": false,
                "data": ""
            },
            {
                "basicProperties": {
                    "contentType": null, "contentEncoding": "gzip",
                    "headers": {"nested": {"depth": -2}, "list": [true, 1.5], "big": -9_000_000_000i64},
                    "deliveryMode": 1, "priority": null, "correlationId": "corr-9", "replyTo": "replies",
                    "expiration": "60000", "messageId": null, "timestamp": "Nov 14, 2023, 10:13:20 PM",
                    "type": "order.created", "userId": "guest", "appId": "shop", "clusterId": "c1", "bodySize": 6
                },
                "redelivered": false,
                "data": "AJ+Slv8A"
            }
        ]}
    });
    assert_eq!(event, expected);
    broker.delete(&queue).await;
}
