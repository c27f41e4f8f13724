//! Instances on one database share the mappings out evenly, one consumer
//! per queue, a change made through one reaches the owner, and the others
//! take over what an instance that stops ran.

use super::consumers_become;
use crate::common::*;

/// `n` queues, and the first instance on `db` with a mapping to each (the
/// config file's and `n - 1` made through it); the setup starts others.
async fn first_instance(
    db: &TestDatabase,
    broker: &Broker,
    name: &str,
    n: usize,
) -> (Vec<String>, Setup, Running) {
    let queues: Vec<String> = (0..n).map(|i| unique(&format!("{name}-{i}"))).collect();
    for q in &queues {
        broker.declare(q, Default::default()).await;
    }
    let mut setup = Setup::new(&queues[0]);
    setup.extra_toml = format!("[store]\nurl = {:?}\nlease_seconds = 3\n", db.url);
    let first = Running::start(&setup).await;
    for q in &queues[1..] {
        first
            .control
            .create(beside("recorder", q, 1))
            .await
            .unwrap();
    }
    (queues, setup, first)
}

/// The mappings the instance may run now.
fn owned_by(running: &Running) -> std::collections::BTreeSet<uuid::Uuid> {
    running
        .control
        .store()
        .share()
        .unwrap()
        .borrow()
        .owned
        .clone()
}

fn owned(running: &Running) -> usize {
    owned_by(running).len()
}

/// Two instances on one database with four mappings: two each, one
/// consumer per queue, every message to one of them; one stops and the
/// other runs all four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_mappings_and_one_takes_over_when_the_other_stops() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let (queues, setup, a) = first_instance(&db, &broker, "pg-share", 4).await;
    let b = Running::start(&setup).await;
    assert_eq!(b.control.list().unwrap().len(), 4, "B sees what A made");
    wait_for("two mappings each", || owned(&a) == 2 && owned(&b) == 2).await;
    for q in &queues {
        assert!(consumers_become(&broker, q, 1).await, "one consumer on {q}");
        broker.publish(q, q.as_bytes(), Default::default()).await;
    }
    let both = || {
        let mut got: Vec<String> = [&a, &b]
            .iter()
            .flat_map(|r| r.events())
            .flat_map(|e| messages(&e))
            .map(|(body, _)| String::from_utf8_lossy(&body).into_owned())
            .collect();
        got.sort();
        got
    };
    let mut sorted = queues.clone();
    sorted.sort();
    wait_for("each message once", || both() == sorted).await;

    // A change made through A reaches B, which runs the mapping.
    let on_b = *owned_by(&b).iter().next().unwrap();
    let queue_on_b = a.control.get(on_b).unwrap().spec.queue().to_owned();
    a.control.disable(on_b).await.unwrap();
    let mut stopped = false;
    for _ in 0..600 {
        if broker.consumers(&queue_on_b).await == 0 {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        stopped,
        "B stopped consuming the mapping disabled through A"
    );
    assert_eq!(
        b.control.get(on_b).unwrap().state,
        mqtrigger::mapping::State::Disabled
    );
    a.control.enable(on_b).await.unwrap();
    for _ in 0..600 {
        if broker.consumers(&queue_on_b).await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        broker.consumers(&queue_on_b).await,
        1,
        "enabled through A, run by B"
    );

    a.control.shutdown().await;
    drop(a);
    wait_for("B runs all four", || owned(&b) == 4).await;
    for q in &queues {
        let body = format!("{q} after");
        broker.publish(q, body.as_bytes(), Default::default()).await;
        wait_for("B takes each message", || {
            b.events()
                .iter()
                .flat_map(messages)
                .any(|(got, _)| got == body.as_bytes())
        })
        .await;
        assert_eq!(broker.consumers(q).await, 1);
    }
    b.control.shutdown().await;
}

/// Three instances and 30 mappings: 10 ± 1 each; one stops and the other
/// two own 15 ± 1 each once it is gone, every queue with one consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_thirty_mappings_evenly_and_two_share_them_after_one_stops() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let (queues, setup, a) = first_instance(&db, &broker, "pg-thirty", 30).await;
    let b = Running::start(&setup).await;
    let c = Running::start(&setup).await;
    let near = |n: usize, share: usize| n.abs_diff(share) <= 1;
    wait_for("10 ± 1 each", || {
        let counts = [owned(&a), owned(&b), owned(&c)];
        counts.iter().sum::<usize>() == 30 && counts.iter().all(|n| near(*n, 10))
    })
    .await;
    for q in &queues {
        assert!(consumers_become(&broker, q, 1).await, "one consumer on {q}");
    }

    c.control.shutdown().await;
    drop(c);
    wait_for("15 ± 1 each on the two left", || {
        owned(&a) + owned(&b) == 30 && near(owned(&a), 15) && near(owned(&b), 15)
    })
    .await;
    for q in &queues {
        assert!(consumers_become(&broker, q, 1).await, "one consumer on {q}");
    }
    a.control.shutdown().await;
    b.control.shutdown().await;
    for q in &queues {
        broker.delete(q).await;
    }
}
