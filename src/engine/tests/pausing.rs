//! Pause, step and resume: a paused mapping takes nothing new and loses
//! nothing, a step lets exactly one batch through, a resume goes on in the
//! queue's order, and a pause holds across a restart.

use super::*;

/// BatchSize 5 and a one-second window, ten messages waiting.
async fn paused_with_ten() -> Harness {
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: "BatchSize = 5\nMaximumBatchingWindowInSeconds = 1",
            ..Setup::default()
        },
    )
    .await;
    h.control.pause(h.mapping).await.unwrap();
    h.until("the consumer let go", |h| h.broker.unsettled() == 0)
        .await;
    h.publish(numbered(10));
    h
}

fn bodies_called(h: &Harness) -> Vec<String> {
    h.function
        .calls()
        .into_iter()
        .flat_map(|c| c.bodies)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_paused_mapping_takes_nothing_and_loses_nothing() {
    let h = paused_with_ten().await;
    assert!(h.mapping().paused);
    assert_eq!(h.mapping().shown_state(), "Paused");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        h.function.calls().is_empty(),
        "nothing invoked while paused"
    );
    assert_eq!(h.broker.ready(), 10, "every message still in the queue");
    assert_eq!(h.broker.unsettled(), 0, "and none held by a consumer");
    assert_eq!(h.stats().received, 0);
}

#[tokio::test(start_paused = true)]
async fn pausing_lets_the_batch_under_way_finish_and_gives_back_the_rest() {
    // A function that takes 10 s: the first batch is with it when the
    // pause comes; the second, gathered ahead, goes back to the queue.
    let function = Function::new(Duration::from_secs(10), |_| Ok(()));
    let h = Harness::start(
        function,
        Setup {
            mapping: "BatchSize = 5\nMaximumBatchingWindowInSeconds = 1",
            bodies: numbered(20),
            ..Setup::default()
        },
    )
    .await;
    h.until("the first batch is with the function", |h| {
        h.function.calls().len() == 1
    })
    .await;
    h.control.pause(h.mapping).await.unwrap();
    h.until("the first batch acked", |h| h.broker.acked().len() == 5)
        .await;
    h.until("the rest back in the queue", |h| {
        h.broker.unsettled() == 0 && h.broker.ready() == 15
    })
    .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.function.calls().len(), 1, "nothing after the pause");
    assert_eq!(h.broker.ready(), 15);
}

#[tokio::test(start_paused = true)]
async fn a_step_lets_exactly_one_batch_through_then_resume_goes_on_in_order() {
    let h = paused_with_ten().await;
    h.control.step(h.mapping).await.unwrap();
    h.until("one batch acked", |h| h.broker.acked().len() == 5)
        .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.function.calls().len(), 1, "one batch, no more");
    assert_eq!(bodies_called(&h), numbered(5));
    assert!(h.mapping().paused, "paused again after the step");
    assert_eq!(h.broker.ready(), 5);

    h.control.resume(h.mapping).await.unwrap();
    assert!(!h.mapping().paused);
    h.until("every message acked", |h| h.broker.acked().len() == 10)
        .await;
    assert_eq!(bodies_called(&h), numbered(10), "in the queue's order");
    assert_eq!(h.broker.dead_letters(), vec![]);
}

#[tokio::test(start_paused = true)]
async fn two_steps_let_two_batches_through() {
    let h = paused_with_ten().await;
    h.control.step(h.mapping).await.unwrap();
    h.control.step(h.mapping).await.unwrap();
    h.until("two batches acked", |h| h.broker.acked().len() == 10)
        .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(h.function.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_across_a_restart_and_old_steps_are_not_taken_again() {
    let h = paused_with_ten().await;
    h.control.step(h.mapping).await.unwrap();
    h.until("the step's batch acked", |h| h.broker.acked().len() == 5)
        .await;
    let h = h.restarted().await;
    assert!(h.mapping().paused, "still paused after the restart");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.broker.acked().len(), 5, "the step was not taken again");
    assert_eq!(h.broker.ready(), 5);
    h.control.resume(h.mapping).await.unwrap();
    h.until("the rest acked", |h| h.broker.acked().len() == 10)
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_step_on_a_running_mapping_pauses_it_after_one_more_batch() {
    let h = Harness::start(
        Function::ok(),
        Setup {
            mapping: "BatchSize = 5\nMaximumBatchingWindowInSeconds = 1",
            ..Setup::default()
        },
    )
    .await;
    h.control.step(h.mapping).await.unwrap();
    h.publish(numbered(10));
    h.until("one batch acked", |h| h.broker.acked().len() == 5)
        .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.broker.acked().len(), 5);
    assert!(h.mapping().paused);
}

#[tokio::test(start_paused = true)]
async fn a_paused_mapping_shows_what_waits_in_its_queue() {
    use crate::source::backlog::Backlog;
    let h = paused_with_ten().await;
    h.until("the backlog told", |h| {
        matches!(h.stats().backlog, Some((Backlog::Messages(10), _)))
    })
    .await;
    h.control.resume(h.mapping).await.unwrap();
    h.until("the backlog drained", |h| {
        matches!(h.stats().backlog, Some((Backlog::Messages(0), _)))
    })
    .await;
}
