//! A mapping of several queues (Lambda takes one): one batch may hold
//! messages of each, keyed in the event as Lambda keys them
//! (`rmqMessagesByQueue` by `queue::vhost`), and each queue keeps its own
//! acks, dead letters (its own `<queue>.dlq`) and counts.

use crate::common::*;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_queue_rabbitmq_mapping_keeps_each_queues_counts_and_dead_letters() {
    let orders = unique("two-orders");
    let refunds = unique("two-refunds");
    let broker = Broker::connect().await;
    broker.declare(&orders, Default::default()).await;
    broker.declare(&refunds, Default::default()).await;
    let setup = Setup {
        batch_size: 10,
        window_secs: Some(1),
        max_redeliveries: Some(0),
        more_queues: vec![refunds.clone()],
        ..Setup::new(&orders)
    };
    let running = Running::start(&setup).await;
    let uuid = running.mapping().uuid;
    for i in 0..5 {
        broker
            .publish(&orders, format!("order-{i}").as_bytes(), Default::default())
            .await;
    }
    for body in ["refund-0", "refund-1", "refund-fail"] {
        broker
            .publish(&refunds, body.as_bytes(), Default::default())
            .await;
    }
    // The batch holding refund-fail is dead-lettered whole (no partial
    // reports here); the others are acked.
    wait_for("every message settled", || {
        let s = running.control.stats(uuid);
        s.succeeded + s.dead_lettered == 8
    })
    .await;
    let stats = running.control.stats(uuid);
    let of = |q: &str| stats.by_queue.get(q).cloned().unwrap_or_default();
    assert_eq!(of(&orders).received, 5);
    assert_eq!(of(&refunds).received, 3);
    assert_eq!(
        of(&orders).succeeded + of(&orders).dead_lettered,
        5,
        "{:?}",
        stats.by_queue
    );
    assert_eq!(of(&refunds).succeeded + of(&refunds).dead_lettered, 3);
    assert!(of(&refunds).dead_lettered >= 1);

    // The events key each record by its queue.
    let mut keys = BTreeSet::new();
    for event in running.events() {
        for key in event["rmqMessagesByQueue"].as_object().unwrap().keys() {
            keys.insert(key.clone());
        }
    }
    assert_eq!(
        keys,
        BTreeSet::from([format!("{orders}::/"), format!("{refunds}::/")])
    );

    // Each dead letter went to its own queue's DLQ and says its queue.
    for letter in running.dead_letters() {
        let body = String::from_utf8(letter.body.clone()).unwrap();
        let queue = if body.starts_with("order") {
            &orders
        } else {
            &refunds
        };
        assert_eq!(&letter.queue, queue, "{body}");
        assert_eq!(letter.destination, format!("{queue}.dlq"));
    }
    let in_dlq = broker.drain(&format!("{refunds}.dlq")).await.len() as u64;
    assert_eq!(in_dlq, of(&refunds).dead_lettered);
    assert_eq!(broker.ready(&orders).await, 0);
    assert_eq!(broker.ready(&refunds).await, 0);
    running.control.shutdown().await;
    for q in [&orders, &refunds] {
        broker.delete(q).await;
        broker.delete(&format!("{q}.dlq")).await;
    }
}
