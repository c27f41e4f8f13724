//! Settling: acks only after the function, concurrency, in-flight counts,
//! exact counts under a flood, and connections that go away.

use super::*;
use crate::mapping::{State, StateTransitionReason};

#[tokio::test(start_paused = true)]
async fn nothing_is_acked_before_the_function_returns() {
    let h = Harness::start(
        Function::new(Duration::from_secs(10), |_| Ok(())),
        Setup {
            mapping: "BatchSize = 4",
            bodies: numbered(4),
            ..Setup::default()
        },
    )
    .await;
    h.until("invoked", |h| h.function.calls().len() == 1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(h.broker.acked().is_empty());
    assert_eq!(h.broker.unsettled(), 4);
    assert_eq!(h.stats().in_flight_messages, 4);
    h.until("acked", |h| h.broker.acked().len() == 4).await;
    assert!(h.elapsed() >= Duration::from_secs(10));
    assert_eq!(h.stats().in_flight_messages, 0);
}

#[tokio::test(start_paused = true)]
async fn with_maximum_concurrency_3_three_batches_are_in_flight_at_once() {
    let h = Harness::start(
        Function::new(Duration::from_secs(4), |_| Ok(())),
        Setup {
            mapping: "BatchSize = 1\nScalingConfig = { MaximumConcurrency = 3 }",
            bodies: numbered(10),
            ..Setup::default()
        },
    )
    .await;
    h.until("3 in flight", |h| h.stats().in_flight_batches == 3)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.stats().in_flight_batches, 3, "still 3 half-way through");
    h.until("10 acked", |h| h.broker.acked().len() == 10).await;
    assert_eq!(
        h.function.most_at_once(),
        3,
        "never more than MaximumConcurrency"
    );
    assert_eq!(h.stats().in_flight_batches, 0);
    // 10 batches of 4 s, 3 at a time: 4 rounds.
    assert!(h.elapsed() >= Duration::from_secs(16) && h.elapsed() < Duration::from_secs(17));
}

#[tokio::test(start_paused = true)]
async fn one_slot_runs_one_batch_at_a_time() {
    let h = Harness::start(
        Function::new(Duration::from_secs(1), |_| Ok(())),
        Setup {
            mapping: "BatchSize = 1",
            bodies: numbered(5),
            ..Setup::default()
        },
    )
    .await;
    h.until("5 acked", |h| h.broker.acked().len() == 5).await;
    assert_eq!(h.function.most_at_once(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_batch_does_not_hold_back_the_acks_of_faster_ones() {
    // The first batch takes 10 s, the others 1 s: with two slots the others
    // go by it and are acked first.
    let function = Function::new(Duration::from_secs(1), |_| Ok(()));
    let slow_first = Arc::new(SlowFirst {
        inner: function.clone(),
    });
    let h = Harness::start_with(
        function,
        slow_first,
        Setup {
            mapping: "BatchSize = 1\nScalingConfig = { MaximumConcurrency = 2 }",
            bodies: numbered(5),
            ..Setup::default()
        },
    )
    .await;
    h.until("5 acked", |h| h.broker.acked().len() == 5).await;
    assert_eq!(h.broker.acked(), ["m2", "m3", "m4", "m5", "m1"]);
}

/// m1 takes 10 s; everything else as `inner`.
struct SlowFirst {
    inner: Arc<Function>,
}

impl Invoker for SlowFirst {
    fn invoke(&self, event: Bytes) -> BoxFuture<'_, Result<Bytes, InvokeError>> {
        Box::pin(async move {
            if bodies(&event).first().map(Vec::as_slice) == Some(b"m1".as_slice()) {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            self.inner.invoke(event).await
        })
    }

    fn describe(&self) -> String {
        "slow first".into()
    }
}

#[tokio::test(start_paused = true)]
async fn counts_are_exact_after_a_flood_of_20000_messages() {
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: "BatchSize = 1\nScalingConfig = { MaximumConcurrency = 10 }",
            ..Setup::default()
        },
    )
    .await;
    // A watcher that reads nothing while the flood passes falls far behind.
    let (snapshot, mut lagging) = h.control.watch();
    h.publish(numbered(20_000));
    h.until("20000 acked", |h| h.broker.acked().len() == 20_000)
        .await;
    let s = h.stats();
    assert_eq!(
        (s.received, s.invoked, s.succeeded),
        (20_000, 20_000, 20_000)
    );
    assert_eq!(s.batches_invoked, 20_000);
    assert_eq!((s.in_flight_batches, s.in_flight_messages), (0, 0));
    assert_eq!(s.by_redeliveries, [20_000]);
    // It knows it lagged, and a new snapshot has the whole truth.
    let mut copy = snapshot;
    let mut lagged = false;
    loop {
        match lagging.try_recv() {
            Ok(e) => copy.apply(&e),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
            Err(_) => break,
        }
    }
    assert!(lagged, "4096 slots cannot hold 20000 batches' events");
    assert!(
        copy.of(h.mapping).succeeded < 20_000,
        "a lossy sum undercounts"
    );
    let (fresh, _) = h.control.watch();
    assert_eq!(fresh.of(h.mapping).succeeded, 20_000);
}

#[tokio::test(start_paused = true)]
async fn a_watcher_that_keeps_up_counts_exactly_what_the_engine_counts() {
    let h = Harness::start(
        Function::failing_on(|b| b == "m3"),
        Setup {
            mapping: "BatchSize = 2",
            engine: "retry_initial_ms = 1\nmax_redeliveries = 1",
            ..Setup::default()
        },
    )
    .await;
    let (mut copy, mut events) = h.control.watch();
    h.publish(numbered(10));
    let follow = tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            copy.apply(&e);
            if copy.of(e.mapping()).succeeded + copy.of(e.mapping()).dead_lettered == 10 {
                return copy;
            }
        }
        panic!("the stream ended");
    });
    let copy = follow.await.unwrap();
    assert_eq!(copy.of(h.mapping), h.stats());
    assert_eq!(h.stats().dead_lettered, 2, "m3's batch: m3 and m4");
}

#[tokio::test(start_paused = true)]
async fn a_lost_connection_gives_the_batch_back_and_it_returns_marked_redelivered() {
    let h = Harness::start(
        Function::new(Duration::from_secs(2), |_| Ok(())),
        Setup {
            mapping: "BatchSize = 3",
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    h.until("invoked", |h| h.function.calls().len() == 1).await;
    h.broker.cut_connections();
    h.until("3 acked", |h| h.broker.acked().len() == 3).await;
    let calls = h.function.calls();
    assert_eq!(calls.len(), 2, "the ack was lost, so the batch came again");
    assert_eq!(calls[0].redelivered, [false, false, false]);
    assert_eq!(calls[1].redelivered, [true, true, true]);
    assert_eq!(h.broker.connections(), 2);
    let s = h.stats();
    assert_eq!((s.settle_failed, s.redelivered, s.received), (3, 3, 6));
}

#[tokio::test(start_paused = true)]
async fn a_broker_that_cannot_be_reached_is_retried_and_the_mapping_stays_enabled() {
    let h = Harness::start(Function::ok(), Setup::default()).await;
    h.broker.cut_connections();
    h.broker
        .refuse_connections(Some(SourceError::Connection("connection refused".into())));
    h.until("the problem shows", |h| {
        h.mapping().last_processing_result == "PROBLEM: Connection error. connection refused"
    })
    .await;
    assert_eq!(h.mapping().state, State::Enabled);
    h.broker.refuse_connections(None);
    h.publish(["after"]);
    h.until("acked", |h| h.broker.acked().len() == 1).await;
    assert_eq!(h.mapping().last_processing_result, "OK");
}

#[tokio::test(start_paused = true)]
async fn refused_credentials_stop_the_mapping_with_event_source_authn_error() {
    let broker_refuses = SourceError::Authentication("the broker refused user u".into());
    let h = Harness::start(Function::ok(), Setup::default()).await;
    h.broker.refuse_connections(Some(broker_refuses));
    h.broker.cut_connections();
    h.until("stopped", |h| h.mapping().state == State::Disabled)
        .await;
    let m = h.mapping();
    assert_eq!(
        m.state_transition_reason,
        StateTransitionReason::EventSourceAuthnError
    );
    assert_eq!(m.state_detail.as_deref(), Some("the broker refused user u"));
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_fails_right_after_connecting_backs_off_instead_of_retrying_every_second()
{
    let h = Harness::start(Function::ok(), Setup::default()).await;
    h.broker.fail_after_connect(true);
    h.broker.cut_connections();
    let before = h.broker.connections();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let tries = h.broker.connections() - before;
    // 1 s, 2 s, 4 s, 8 s, 16 s, then 30 s apart: six in a minute, not sixty.
    assert!((5..=7).contains(&tries), "{tries} connections in a minute");
    h.broker.fail_after_connect(false);
    h.publish(["after"]);
    h.until("consumed once the broker recovers", |h| {
        h.broker.acked().len() == 1
    })
    .await;
}
