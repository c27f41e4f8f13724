//! Two engines on one store, as two instances on one database: changes
//! made through both at the same moment are all kept. These tests run on
//! real threads (not the paused clock), so the two writers truly race.

use super::*;
use crate::mapping::{MappingUpdate, State};

/// Pairs of updates raced against each other; on the code before the fix
/// 3 to 33 of 200 pairs lost one of their changes.
const PAIRS: u32 = 200;

/// Runs `a` and `b` at the same moment on two threads of their own (a
/// barrier releases both), as two instances' requests would run: as tasks
/// on the runtime's workers they would mostly take turns, not race.
async fn at_once<A: Send + 'static, B: Send + 'static>(
    a: impl Future<Output = A> + Send + 'static,
    b: impl Future<Output = B> + Send + 'static,
) -> (A, B) {
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let (a, b) = (released_by(barrier.clone(), a), released_by(barrier, b));
    (a.await.unwrap(), b.await.unwrap())
}

fn released_by<T: Send + 'static>(
    barrier: Arc<std::sync::Barrier>,
    future: impl Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        barrier.wait();
        runtime.block_on(future)
    })
}

/// The harness's engine, and a second one on its store (a second instance).
async fn two_engines() -> (Harness, Control) {
    let h = Harness::start(
        Function::ok(),
        Setup {
            // Nothing runs: the test is about what is written.
            mapping: "Enabled = false",
            ..Setup::default()
        },
    )
    .await;
    let twin = h.control.store().sharing();
    let other = Control::start_wired(h.config.clone(), twin, h.wiring.clone())
        .await
        .unwrap();
    (h, other)
}

/// At the same moment, BatchSize through one engine and
/// MaximumBatchingWindowInSeconds through the other: the mapping ends with
/// both, every time, and each answer is Updating with its own change in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_size_and_a_window_set_through_two_engines_at_once_are_both_kept() {
    let (h, other) = two_engines().await;
    let uuid = h.mapping;
    let mut lost = Vec::new();
    for n in 0..PAIRS {
        let (batch, window) = (101 + n, 1 + n);
        let (a, b) = (h.control.clone(), other.clone());
        let (a, b) = at_once(
            async move {
                let change = MappingUpdate {
                    batch_size: Some(batch),
                    ..MappingUpdate::default()
                };
                a.update(uuid, change).await
            },
            async move {
                let change = MappingUpdate {
                    maximum_batching_window_in_seconds: Some(window),
                    ..MappingUpdate::default()
                };
                b.update(uuid, change).await
            },
        )
        .await;
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.spec.batch_size, Some(batch));
        assert_eq!(b.spec.maximum_batching_window_in_seconds, Some(window));
        assert_eq!((a.state, b.state), (State::Updating, State::Updating));
        let stored = h.control.get(uuid).unwrap().spec;
        if stored.batch_size != Some(batch)
            || stored.maximum_batching_window_in_seconds != Some(window)
        {
            lost.push(format!(
                "pair {n} wanted BatchSize {batch} and window {window}, the store has {:?} and {:?}",
                stored.batch_size, stored.maximum_batching_window_in_seconds
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {PAIRS} pairs lost a change:\n{}",
        lost.len(),
        lost.join("\n")
    );
    other.shutdown().await;
    h.control.shutdown().await;
    let settled = h.control.get(uuid).unwrap();
    assert_eq!(settled.state, State::Disabled, "each update finished");
}

/// Enable and disable pairs raced against each other: the window they can
/// meet in is short (between a disable's two writes), so it takes more.
const TOGGLES: u32 = 1000;

/// A disable through one engine while the other enables: whichever
/// finishes last, State agrees with what the spec asks for (a disable's
/// second half must not write Disabled over the other's Enabled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enable_and_a_disable_through_two_engines_leave_state_and_spec_agreeing() {
    let (h, other) = two_engines().await;
    let uuid = h.mapping;
    let mut wrong = Vec::new();
    for n in 0..TOGGLES {
        let (a, b) = (h.control.clone(), other.clone());
        let (disabled, enabled) = at_once(async move { a.disable(uuid).await }, async move {
            b.enable(uuid).await
        })
        .await;
        disabled.unwrap();
        enabled.unwrap();
        let m = h.control.get(uuid).unwrap();
        let wanted = if m.wants_to_run() {
            State::Enabled
        } else {
            State::Disabled
        };
        if m.state != wanted {
            wrong.push(format!(
                "pair {n}: State {} while Enabled is {:?}",
                m.state, m.spec.enabled
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {TOGGLES} pairs left State saying what the mapping does not do:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    other.shutdown().await;
    h.control.shutdown().await;
}
