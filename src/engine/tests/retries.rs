//! A failing batch: retried whole with back-off, then dead letters.

use super::*;
use crate::mapping::{State, StateTransitionReason};
use crate::source::DeadLetterReason;
use crate::source::memory::MemoryMessage;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

/// Fails the first `n` invocations, then succeeds.
fn failing_first(n: usize) -> Arc<Function> {
    let calls = AtomicUsize::new(0);
    Function::new(Duration::ZERO, move |_| {
        if calls.fetch_add(1, Ordering::SeqCst) < n {
            Err(function_error())
        } else {
            Ok(())
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_is_retried_whole_with_doubling_back_off() {
    let h = Harness::start(
        failing_first(3),
        Setup {
            mapping: "BatchSize = 5",
            bodies: numbered(5),
            ..Setup::default()
        },
    )
    .await;
    h.until("5 acked", |h| h.broker.acked().len() == 5).await;
    let calls = h.function.calls();
    assert_eq!(calls.len(), 4);
    assert!(
        calls.iter().all(|c| c.bodies == numbered(5)),
        "the whole batch each time"
    );
    let gaps: Vec<u128> = calls
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis())
        .collect();
    // Lambda's back-off as configured by default: 1 s, then doubling.
    assert_eq!(gaps, [1000, 2000, 4000]);
    let s = h.stats();
    assert_eq!((s.failed_batches, s.failed, s.succeeded), (3, 15, 5));
    assert_eq!(s.by_redeliveries, [0, 0, 0, 5]);
    assert!(h.broker.dead_letters().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_back_off_is_capped_at_retry_max() {
    let h = Harness::start(
        failing_first(4),
        Setup {
            engine: "retry_initial_ms = 100\nretry_max_ms = 250",
            bodies: numbered(1),
            ..Setup::default()
        },
    )
    .await;
    h.until("acked", |h| h.broker.acked().len() == 1).await;
    let calls = h.function.calls();
    let gaps: Vec<u128> = calls
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis())
        .collect();
    assert_eq!(gaps, [100, 200, 250, 250]);
}

#[tokio::test(start_paused = true)]
async fn after_five_redeliveries_every_message_is_dead_lettered() {
    let h = Harness::start(
        Function::failing_on(|_| true),
        Setup {
            mapping: "BatchSize = 3",
            engine: "retry_initial_ms = 10",
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    h.until("3 dead letters", |h| h.broker.dead_letters().len() == 3)
        .await;
    assert_eq!(
        h.function.calls().len(),
        6,
        "the first attempt and 5 redeliveries"
    );
    for (id, reason) in h.broker.dead_letters() {
        assert!(
            matches!(
                reason,
                DeadLetterReason::RetriesExhausted { attempts: 6, .. }
            ),
            "{id}: {reason}"
        );
    }
    assert!(h.broker.acked().is_empty());
    let journal = h.control.store().dead_letters(Some(h.mapping), 10).unwrap();
    assert_eq!(journal.len(), 3, "journaled before the broker moved them");
    assert!(
        journal
            .iter()
            .all(|d| d.attempts == 6 && d.error.as_deref() == Some(r#"{"errorMessage":"boom"}"#))
    );
    let s = h.stats();
    assert_eq!((s.dead_lettered, s.failed_batches, s.succeeded), (3, 6, 0));
    assert!(h.mapping().last_processing_result.contains("dead-lettered"));
}

#[tokio::test(start_paused = true)]
async fn max_redeliveries_sets_the_attempts_before_a_dead_letter() {
    for (max, attempts) in [(0, 1), (2, 3), (8, 9)] {
        let engine: &'static str =
            Box::leak(format!("retry_initial_ms = 1\nmax_redeliveries = {max}").into_boxed_str());
        let h = Harness::start(
            Function::failing_on(|_| true),
            Setup {
                engine,
                bodies: numbered(1),
                ..Setup::default()
            },
        )
        .await;
        h.until("a dead letter", |h| h.broker.dead_letters().len() == 1)
            .await;
        assert_eq!(
            h.function.calls().len(),
            attempts,
            "max_redeliveries = {max}"
        );
        let reason = &h.broker.dead_letters()[0].1;
        assert!(
            matches!(reason, DeadLetterReason::RetriesExhausted { attempts: n, .. } if *n == attempts as u32),
            "{reason}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_batch_is_retried_before_anything_after_it_with_one_slot() {
    let h = Harness::start(
        Function::new(Duration::ZERO, {
            let failures = AtomicUsize::new(0);
            move |call| {
                if call.bodies.contains(&"m1".to_owned())
                    && failures.fetch_add(1, Ordering::SeqCst) < 2
                {
                    Err(function_error())
                } else {
                    Ok(())
                }
            }
        }),
        Setup {
            mapping: "BatchSize = 2",
            engine: "retry_initial_ms = 10",
            bodies: numbered(6),
            ..Setup::default()
        },
    )
    .await;
    h.until("6 acked", |h| h.broker.acked().len() == 6).await;
    let order: Vec<Vec<String>> = h.function.calls().into_iter().map(|c| c.bodies).collect();
    let first = vec!["m1".to_owned(), "m2".to_owned()];
    assert_eq!(order[..3], [first.clone(), first.clone(), first]);
    assert_eq!(h.broker.acked(), numbered(6));
}

#[tokio::test(start_paused = true)]
async fn a_message_expired_before_its_batch_is_invoked_is_dead_lettered_alone() {
    let broker_message = |id: &str, expires_at| MemoryMessage {
        id: id.into(),
        body: Bytes::from(id.to_owned()),
        expires_at,
        redelivered: false,
    };
    let h = Harness::start(Function::ok(), Setup::default()).await;
    let past = SystemTime::now() - Duration::from_secs(1);
    h.broker.publish_message(broker_message("gone", Some(past)));
    h.broker.publish_message(broker_message("fresh", None));
    h.until("1 acked, 1 dead", |h| {
        h.broker.acked().len() == 1 && h.broker.dead_letters().len() == 1
    })
    .await;
    assert_eq!(
        h.broker.dead_letters()[0],
        ("gone".into(), DeadLetterReason::Expired)
    );
    let invoked: Vec<String> = h
        .function
        .calls()
        .into_iter()
        .flat_map(|c| c.bodies)
        .collect();
    assert_eq!(invoked, ["fresh"]);
}

#[tokio::test(start_paused = true)]
async fn a_message_that_expires_between_attempts_leaves_the_batch_the_rest_is_retried() {
    // The clock of expirations is the wall clock: the first attempt takes
    // 1.5 s of it, past the TTL of one message (1 s, room for a slow machine
    // before the first attempt).
    let attempts = AtomicUsize::new(0);
    let function = Function::new(Duration::ZERO, move |_| {
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1500));
            Err(function_error())
        } else {
            Ok(())
        }
    });
    let h = Harness::start(
        function,
        Setup {
            engine: "retry_initial_ms = 10",
            ..Setup::default()
        },
    )
    .await;
    h.broker.publish_message(MemoryMessage {
        id: "short".into(),
        body: Bytes::from_static(b"short"),
        expires_at: Some(SystemTime::now() + Duration::from_millis(1000)),
        redelivered: false,
    });
    h.broker.publish("long");
    h.until("1 acked, 1 dead", |h| {
        h.broker.acked().len() == 1 && h.broker.dead_letters().len() == 1
    })
    .await;
    let calls = h.function.calls();
    assert_eq!(calls[0].bodies, ["short", "long"]);
    assert_eq!(calls[1].bodies, ["long"]);
    assert_eq!(
        h.broker.dead_letters()[0],
        ("short".into(), DeadLetterReason::Expired)
    );
    assert_eq!(h.broker.acked(), ["m2"]);
}

#[tokio::test(start_paused = true)]
async fn a_function_that_cannot_be_built_stops_the_mapping_with_function_config_not_valid() {
    let h = Harness::start(
        Function::ok(),
        Setup {
            invoker_error: Some(InvokeError::ConfigNotValid(
                "no such program: ./nope".into(),
            )),
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    h.until("stopped", |h| h.mapping().state == State::Disabled)
        .await;
    let m = h.mapping();
    assert_eq!(
        m.state_transition_reason,
        StateTransitionReason::FunctionConfigNotValid
    );
    assert_eq!(m.state_detail.as_deref(), Some("no such program: ./nope"));
    assert_eq!(h.broker.ready(), 3, "nothing was taken from the queue");
    assert!(h.function.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_function_found_misconfigured_mid_run_stops_the_mapping_and_gives_the_batch_back() {
    let h = Harness::start(
        Function::new(Duration::ZERO, |_| {
            Err(InvokeError::ConfigNotValid(
                "AccessDeniedException: not allowed".into(),
            ))
        }),
        Setup {
            bodies: numbered(2),
            ..Setup::default()
        },
    )
    .await;
    h.until("stopped", |h| h.mapping().state == State::Disabled)
        .await;
    assert_eq!(
        h.mapping().state_transition_reason,
        StateTransitionReason::FunctionConfigNotValid
    );
    h.until("back in the queue", |h| h.broker.ready() == 2)
        .await;
    assert!(h.broker.acked().is_empty() && h.broker.dead_letters().is_empty());
    assert_eq!(h.function.calls().len(), 1, "not retried");
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_destination_that_refuses_is_tried_again_and_the_function_not_invoked_again()
{
    let h = Harness::start(
        Function::failing_on(|_| true),
        Setup {
            mapping: "BatchSize = 3",
            engine: "retry_initial_ms = 100\nretry_max_ms = 1000\nmax_redeliveries = 1",
            ..Setup::default()
        },
    )
    .await;
    h.broker
        .refuse_dead_letters(Some("the dead-letter queue is full".into()));
    h.publish(numbered(3));
    h.until("the refusal shows", |h| {
        h.mapping()
            .last_processing_result
            .contains("cannot be dead-lettered")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        h.function.calls().len(),
        2,
        "its fate is known: no more invocations"
    );
    let result = h.mapping().last_processing_result;
    assert!(result.contains("the dead-letter queue is full"), "{result}");
    let journal = h.control.store().dead_letters(Some(h.mapping), 10).unwrap();
    assert_eq!(journal.len(), 3, "journaled once, not once per try");
    assert!(journal.iter().all(|d| !d.moved), "not claimed moved");
    assert_eq!(h.stats().dead_lettered, 0);
    assert_eq!(h.broker.unsettled(), 3, "the broker still has them");
    h.broker.refuse_dead_letters(None);
    h.until("moved", |h| h.broker.dead_letters().len() == 3)
        .await;
    let journal = h.control.store().dead_letters(Some(h.mapping), 10).unwrap();
    assert_eq!(journal.len(), 3);
    assert!(
        journal.iter().all(|d| d.moved),
        "moved once the broker took them"
    );
    assert_eq!(h.stats().dead_lettered, 3);
    assert_eq!(h.function.calls().len(), 2);
}
