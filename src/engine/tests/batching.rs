//! Where messages become batches: BatchSize, the window, 6 MB, filters.

use super::*;
use crate::engine::CloseReason;
use crate::engine::stats::AttemptOutcome;
use crate::source::DeadLetterReason;

fn closed_by(h: &Harness) -> Vec<CloseReason> {
    let mut rows: Vec<_> = h.stats().recent.into_iter().collect();
    rows.reverse();
    rows.iter().map(|r| r.closed_by).collect()
}

#[tokio::test(start_paused = true)]
async fn a_batch_closes_at_batch_size() {
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: "BatchSize = 10\nMaximumBatchingWindowInSeconds = 5",
            bodies: numbered(25),
            ..Setup::default()
        },
    )
    .await;
    h.until("25 acked", |h| h.broker.acked().len() == 25).await;
    let sizes: Vec<usize> = h.function.calls().iter().map(|c| c.bodies.len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(
        closed_by(&h),
        [CloseReason::Count, CloseReason::Count, CloseReason::Window]
    );
    let calls = h.function.calls();
    assert!(
        calls[1].at < Duration::from_secs(1),
        "full batches wait for no window"
    );
    assert!(
        calls[2].at >= Duration::from_secs(5),
        "the rest waits for the window"
    );
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_closes_when_the_window_passes() {
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: "MaximumBatchingWindowInSeconds = 2",
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    h.until("3 acked", |h| h.broker.acked().len() == 3).await;
    let calls = h.function.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].bodies, ["m1", "m2", "m3"]);
    assert!(
        calls[0].at >= Duration::from_secs(2) && calls[0].at < Duration::from_millis(2100),
        "invoked at {:?}",
        calls[0].at
    );
    assert_eq!(closed_by(&h), [CloseReason::Window]);
}

#[tokio::test(start_paused = true)]
async fn the_default_window_is_lambda_s_half_second() {
    let h = Harness::start(
        Function::ok(),
        Setup {
            bodies: numbered(1),
            ..Setup::default()
        },
    )
    .await;
    h.until("acked", |h| h.broker.acked().len() == 1).await;
    let at = h.function.calls()[0].at;
    assert!(
        at >= Duration::from_millis(500) && at < Duration::from_millis(600),
        "invoked at {at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_closes_before_its_event_would_pass_6_mb() {
    // A 1 MB body is a 1.33 MB record in base64: four fit in 6 MB, five do not.
    let body = "x".repeat(1 << 20);
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: "BatchSize = 100",
            bodies: vec![body; 6],
            ..Setup::default()
        },
    )
    .await;
    h.until("6 acked", |h| h.broker.acked().len() == 6).await;
    let sizes: Vec<usize> = h.function.calls().iter().map(|c| c.bodies.len()).collect();
    assert_eq!(sizes, [4, 2]);
    assert_eq!(closed_by(&h), [CloseReason::Size, CloseReason::Window]);
    let biggest = h.stats().recent.iter().map(|r| r.bytes).max().unwrap();
    assert!(biggest <= crate::event::MAX_EVENT_BYTES, "{biggest} bytes");
}

#[tokio::test(start_paused = true)]
async fn a_record_too_large_for_any_event_is_dead_lettered_and_never_invoked() {
    let huge = "x".repeat(5 << 20);
    let h = Harness::start(
        Function::ok(),
        Setup {
            bodies: vec!["small".into(), huge, "after".into()],
            ..Setup::default()
        },
    )
    .await;
    h.until("2 acked, 1 dead", |h| {
        h.broker.acked().len() == 2 && h.broker.dead_letters().len() == 1
    })
    .await;
    let (id, reason) = &h.broker.dead_letters()[0];
    assert_eq!(id, "m2");
    assert!(
        matches!(reason, DeadLetterReason::TooLarge { .. }),
        "{reason:?}"
    );
    let invoked: Vec<String> = h
        .function
        .calls()
        .into_iter()
        .flat_map(|c| c.bodies)
        .collect();
    assert_eq!(invoked, ["small", "after"]);
    let journal = h.control.store().dead_letters(Some(h.mapping), 10).unwrap();
    assert_eq!(journal.len(), 1);
    assert!(journal[0].reason.contains("bytes"), "{}", journal[0].reason);
    let s = h.stats();
    assert_eq!((s.received, s.dead_lettered, s.succeeded), (3, 1, 2));
}

#[tokio::test(start_paused = true)]
async fn filtered_messages_are_acked_and_counted_never_invoked() {
    let bodies: Vec<String> = (1..=10)
        .map(|i| {
            format!(
                r#"{{"kind":"{}","n":{i}}}"#,
                if i % 2 == 0 { "keep" } else { "drop" }
            )
        })
        .collect();
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: r#"FilterCriteria = { Filters = [ { Pattern = '{"data":{"kind":["keep"]}}' } ] }"#,
            bodies,
            ..Setup::default()
        },
    )
    .await;
    h.until("10 acked", |h| h.broker.acked().len() == 10).await;
    let invoked: Vec<String> = h
        .function
        .calls()
        .into_iter()
        .flat_map(|c| c.bodies)
        .collect();
    assert_eq!(invoked.len(), 5);
    assert!(invoked.iter().all(|b| b.contains("keep")), "{invoked:?}");
    let s = h.stats();
    assert_eq!(
        (s.received, s.filtered, s.invoked, s.succeeded),
        (10, 5, 5, 5)
    );
    assert!(h.broker.dead_letters().is_empty());
}

#[tokio::test(start_paused = true)]
async fn batches_keep_the_queue_s_order_with_one_slot() {
    let h = Harness::start(
        Function::new(Duration::from_millis(50), |_| Ok(())),
        Setup {
            mapping: "BatchSize = 7",
            bodies: numbered(100),
            ..Setup::default()
        },
    )
    .await;
    h.until("100 acked", |h| h.broker.acked().len() == 100)
        .await;
    let invoked: Vec<String> = h
        .function
        .calls()
        .into_iter()
        .flat_map(|c| c.bodies)
        .collect();
    assert_eq!(invoked, numbered(100));
    assert_eq!(h.broker.acked(), numbered(100));
    assert_eq!(h.function.most_at_once(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_attempt_of_a_batch_carries_the_same_batch_id_and_other_batches_another() {
    let failed_once = std::sync::atomic::AtomicBool::new(false);
    let h = Harness::start(
        Function::new(Duration::ZERO, move |call| {
            // m1's batch fails once.
            if call.bodies == ["m1"] && !failed_once.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                Err(function_error())
            } else {
                Ok(())
            }
        }),
        Setup {
            mapping: "BatchSize = 1",
            engine: "retry_initial_ms = 10",
            bodies: numbered(2),
            ..Setup::default()
        },
    )
    .await;
    h.until("2 acked", |h| h.broker.acked().len() == 2).await;
    let mut rows: Vec<_> = h.stats().recent.into_iter().collect();
    rows.reverse();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].batch, rows[1].batch);
    assert_eq!((rows[0].attempt, rows[1].attempt), (1, 2));
    assert!(matches!(rows[0].outcome, AttemptOutcome::Failed(_)));
    assert_eq!(rows[1].outcome, AttemptOutcome::Ok);
    assert_ne!(rows[2].batch, rows[0].batch);
}

/// The batcher stops waiting whenever the engine has something else to do
/// (a batch to settle), and comes back: nothing it had gathered is lost.
#[tokio::test(start_paused = true)]
async fn the_batcher_loses_nothing_when_its_wait_is_cut_short() {
    use crate::engine::{Batcher, Gathered};
    let broker = MemoryBroker::new();
    let mut source = broker.connect(1000).unwrap();
    let frame = crate::event::mq::frame(BROKER_ARN);
    let mut batcher = Batcher::new(frame, 10, Duration::from_secs(1), None);
    let publisher = broker.clone();
    tokio::spawn(async move {
        for i in 1..=25 {
            publisher.publish(format!("m{i}"));
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    let mut got = Vec::new();
    while got.len() < 25 {
        tokio::select! {
            gathered = batcher.gather(&mut source, false) => match gathered.unwrap() {
                Gathered::Batch(b) => got.extend(b.deliveries.iter().map(|d| String::from_utf8(d.original_body().to_vec()).unwrap())),
                other => panic!("{other:?}"),
            },
            // Cut short every 7 ms, as a settle would.
            _ = tokio::time::sleep(Duration::from_millis(7)) => {}
        }
    }
    assert_eq!(got, numbered(25));
}
