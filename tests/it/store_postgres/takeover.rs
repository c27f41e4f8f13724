//! The owner SIGKILLed under a flow: the other instance takes the mapping
//! over, every message arrives, and one that arrives twice is marked
//! redelivered.

use super::{consumers_become, instance};
use crate::common::*;

/// Two `serve` processes on one database, one mapping, a steady flow; the
/// owner is SIGKILLed half-way. The other takes the mapping over, every
/// message arrives, and a message that arrives twice is marked redelivered
/// the second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sigkilled_under_a_flow_is_taken_over_and_nothing_is_lost() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let queue = unique("pg-sigkill");
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(&queue);
    let (mut first, first_record) = instance(dir.path(), "a", &setup, &db, &[]);
    let (second, second_record) = instance(dir.path(), "b", &setup, &db, &[]);
    assert!(
        consumers_become(&broker, &queue, 1).await,
        "one instance consumes"
    );

    let total = 300;
    let publisher = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let broker = Broker::connect().await;
            for i in 0..total {
                broker
                    .publish(&queue, format!("m{i}").as_bytes(), Default::default())
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };
    let seen = |record: &std::path::Path| read_events(record).iter().flat_map(messages).count();
    wait_for("the flow to reach an instance", || {
        seen(&first_record) + seen(&second_record) >= 50
    })
    .await;
    let (owner_record, other_record) = if seen(&first_record) > 0 {
        first.kill().unwrap();
        (first_record, second_record)
    } else {
        drop(second);
        (second_record, first_record)
    };
    publisher.await.unwrap();
    let all = || -> Vec<(Vec<u8>, bool)> {
        [&owner_record, &other_record]
            .iter()
            .flat_map(|r| read_events(r))
            .flat_map(|e| messages(&e))
            .collect()
    };
    wait_for("every message, through the instance that took over", || {
        all()
            .iter()
            .map(|(b, _)| b.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == total
    })
    .await;
    assert!(seen(&other_record) > 0, "the other instance took over");
    let mut firsts = std::collections::BTreeSet::new();
    for (body, redelivered) in all() {
        if !firsts.insert(body.clone()) {
            assert!(
                redelivered,
                "{} came twice without `redelivered`",
                String::from_utf8_lossy(&body)
            );
        }
    }
}
