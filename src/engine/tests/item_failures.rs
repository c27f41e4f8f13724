//! A function that reports batch item failures (`FunctionResponseTypes:
//! ["ReportBatchItemFailures"]`): the messages it does not name are acked,
//! only the named ones are tried again, each with its own attempts.

use super::*;
use crate::engine::history::What;
use std::sync::atomic::{AtomicUsize, Ordering};

const REPORTS: &str = "BatchSize = 3\nFunctionResponseTypes = [\"ReportBatchItemFailures\"]";

fn failures(ids: &[&str]) -> String {
    let items: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"itemIdentifier": "{id}"}}"#))
        .collect();
    format!(r#"{{"batchItemFailures": [{}]}}"#, items.join(","))
}

#[tokio::test(start_paused = true)]
async fn only_the_named_message_is_tried_again_and_the_others_are_acked() {
    let calls = AtomicUsize::new(0);
    let h = Harness::start(
        Function::answering(move |_| match calls.fetch_add(1, Ordering::SeqCst) {
            0 => failures(&["m2"]),
            _ => String::new(),
        }),
        Setup {
            mapping: REPORTS,
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    h.until("all acked", |h| h.broker.acked().len() == 3).await;
    let calls = h.function.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].bodies, numbered(3));
    assert_eq!(calls[1].bodies, ["m2"], "the named one alone");
    assert_eq!(calls[1].redelivered, [true], "marked redelivered");
    assert_eq!(
        &h.broker.acked()[..2],
        ["m1", "m3"],
        "the others acked first"
    );
    let s = h.stats();
    assert_eq!((s.succeeded, s.failed, s.failed_batches), (3, 1, 1));
    assert_eq!(
        s.by_redeliveries,
        [2, 1],
        "m1 and m3 on the first try, m2 on the second"
    );
    assert_eq!(s.in_flight_messages, 0);
    assert!(h.broker.dead_letters().is_empty());
    let m2 = h.control.message_history(h.mapping, "m2").unwrap();
    let whats: Vec<_> = m2.steps.iter().map(|s| s.what.clone()).collect();
    assert!(
        matches!(whats[2], What::Failed { attempt: 1, .. }),
        "{whats:?}"
    );
    assert!(
        matches!(whats[4], What::Succeeded { attempt: 2, .. }),
        "{whats:?}"
    );
    let m1 = h.control.message_history(h.mapping, "m1").unwrap();
    assert!(matches!(
        m1.steps[2].what,
        What::Succeeded { attempt: 1, .. }
    ));
    assert_eq!(m1.end().map(|s| &s.what), Some(&What::Acked));
}

#[tokio::test(start_paused = true)]
async fn a_message_named_every_time_is_dead_lettered_alone() {
    let h = Harness::start(
        Function::answering(|_| failures(&["m3"])),
        Setup {
            mapping: REPORTS,
            engine: "max_redeliveries = 2",
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    h.until("m3 dead", |h| h.broker.dead_letters().len() == 1)
        .await;
    assert_eq!(h.broker.dead_letters()[0].0, "m3");
    assert_eq!(h.broker.acked(), ["m1", "m2"]);
    let calls = h.function.calls();
    assert_eq!(calls.len(), 3, "one try and two redeliveries");
    assert!(calls[1..].iter().all(|c| c.bodies == ["m3"]));
    assert_eq!(h.stats().dead_lettered, 1);
}

#[tokio::test(start_paused = true)]
async fn an_identifier_not_in_the_batch_fails_the_whole_batch() {
    let calls = AtomicUsize::new(0);
    let h = Harness::start(
        Function::answering(move |_| match calls.fetch_add(1, Ordering::SeqCst) {
            0 => failures(&["nobody"]),
            _ => "{}".into(),
        }),
        Setup {
            mapping: REPORTS,
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    h.until("all acked", |h| h.broker.acked().len() == 3).await;
    let calls = h.function.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].bodies, numbered(3), "the whole batch again");
    let recent = &h.stats().errors;
    assert!(
        recent[0].contains("itemIdentifier \"nobody\" names no message of the batch"),
        "{recent:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_report_batch_item_failures_the_answer_is_not_read() {
    let h = Harness::start(
        Function::answering(|_| failures(&["m2"])),
        Setup {
            mapping: "BatchSize = 3",
            bodies: numbered(3),
            ..Setup::default()
        },
    )
    .await;
    h.until("all acked", |h| h.broker.acked().len() == 3).await;
    assert_eq!(
        h.function.calls().len(),
        1,
        "a success, as on Lambda for MQ"
    );
}
