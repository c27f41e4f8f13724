//! Stopping: a clean shutdown, disable and enable, changes at run time, delete.

use super::*;
use crate::mapping::State;

#[tokio::test(start_paused = true)]
async fn a_clean_stop_lets_the_invocation_under_way_finish_and_settles_it() {
    let h = Harness::start(
        Function::new(Duration::from_secs(10), |_| Ok(())),
        Setup {
            mapping: "BatchSize = 2",
            bodies: numbered(6),
            ..Setup::default()
        },
    )
    .await;
    h.until("invoked", |h| h.function.calls().len() == 1).await;
    h.control.shutdown().await;
    assert!(
        h.elapsed() >= Duration::from_secs(10),
        "waited for the function"
    );
    assert_eq!(
        h.broker.acked(),
        ["m1", "m2"],
        "the batch under way was settled"
    );
    assert_eq!(h.function.calls().len(), 1, "nothing new started");
    assert_eq!(
        (h.broker.ready(), h.broker.unsettled()),
        (4, 0),
        "the rest went back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_between_retries_gives_the_batch_back_without_dead_letters() {
    let h = Harness::start(
        Function::failing_on(|_| true),
        Setup {
            engine: "retry_initial_ms = 60000",
            bodies: numbered(2),
            ..Setup::default()
        },
    )
    .await;
    h.until("failed once", |h| h.stats().failed_batches == 1)
        .await;
    h.control.shutdown().await;
    assert!(
        h.elapsed() < Duration::from_secs(60),
        "did not wait out the back-off"
    );
    assert!(h.broker.dead_letters().is_empty() && h.broker.acked().is_empty());
    assert_eq!(h.broker.ready(), 2);
}

#[tokio::test(start_paused = true)]
async fn disable_stops_consuming_and_enable_goes_on_where_the_queue_is() {
    let h = Harness::start(Function::ok(), Setup::default()).await;
    h.publish(["a"]);
    h.until("a acked", |h| h.broker.acked().len() == 1).await;
    let m = h.control.disable(h.mapping).await.unwrap();
    assert_eq!(m.state, State::Disabled);
    h.publish(["b", "c"]);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(h.broker.ready(), 2, "a disabled mapping takes nothing");
    assert_eq!(h.function.calls().len(), 1);
    h.control.enable(h.mapping).await.unwrap();
    h.until("all acked", |h| h.broker.acked().len() == 3).await;
    assert_eq!(h.mapping().state, State::Enabled);
}

#[tokio::test(start_paused = true)]
async fn a_new_batch_size_applies_at_once_and_loses_nothing() {
    let h = Harness::start(
        Function::new(Duration::from_millis(100), |_| Ok(())),
        Setup {
            mapping: "BatchSize = 2",
            bodies: numbered(40),
            ..Setup::default()
        },
    )
    .await;
    h.until("some acked", |h| h.broker.acked().len() >= 4).await;
    h.control.set_batch_size(h.mapping, 10).await.unwrap();
    h.until("40 acked", |h| {
        let mut acked = h.broker.acked();
        acked.sort();
        acked.dedup();
        acked.len() == 40
    })
    .await;
    let sizes: Vec<usize> = h.function.calls().iter().map(|c| c.bodies.len()).collect();
    assert!(sizes.contains(&10), "{sizes:?}");
    assert_eq!(h.broker.ready() + h.broker.unsettled(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_delete_finishes_in_the_background_and_a_stop_waits_for_it() {
    let h = Harness::start(
        Function::new(Duration::from_secs(20), |_| Ok(())),
        Setup {
            bodies: numbered(1),
            ..Setup::default()
        },
    )
    .await;
    h.until("invoked", |h| h.function.calls().len() == 1).await;
    let answer = h.control.delete(h.mapping).await.unwrap();
    assert_eq!(answer.state, State::Deleting);
    assert!(
        h.control.get(h.mapping).is_ok(),
        "still there while its batch runs"
    );
    h.control.shutdown().await;
    assert!(
        h.control.get(h.mapping).is_err(),
        "gone once the stop returned"
    );
    assert_eq!(h.broker.acked(), ["m1"], "its last batch was settled first");
}

#[tokio::test(start_paused = true)]
async fn a_mapping_stopped_by_a_stop_code_stays_stopped_after_a_restart_until_enabled() {
    let h = Harness::start(Function::ok(), Setup::default()).await;
    h.broker
        .refuse_connections(Some(crate::source::SourceError::Authentication(
            "the broker refused user u".into(),
        )));
    h.broker.cut_connections();
    h.until("stopped", |h| h.mapping().state == State::Disabled)
        .await;
    // The cause is fixed, and mqtrigger restarts.
    h.broker.refuse_connections(None);
    let connections = h.broker.connections();
    let h = h.restarted().await;
    h.publish(["waiting"]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let m = h.mapping();
    assert_eq!(m.state, State::Disabled);
    assert_eq!(
        m.state_transition_reason,
        crate::mapping::StateTransitionReason::EventSourceAuthnError
    );
    assert_eq!(
        h.broker.connections(),
        connections,
        "a Disabled mapping does not connect"
    );
    assert_eq!(h.broker.ready(), 1, "nor consume");
    h.control.enable(h.mapping).await.unwrap();
    h.until("consumed once enabled", |h| h.broker.acked().len() == 1)
        .await;
    assert_eq!(h.mapping().state, State::Enabled);
}

#[tokio::test(start_paused = true)]
async fn a_user_s_disable_survives_a_restart() {
    let h = Harness::start(Function::ok(), Setup::default()).await;
    h.control.disable(h.mapping).await.unwrap();
    let h = h.restarted().await;
    h.publish(["waiting"]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(h.mapping().state, State::Disabled);
    assert_eq!(h.broker.ready(), 1);
}
