//! A message's history: its arrival, each attempt and its end, as the
//! engine tells it.

use super::*;
use crate::engine::history::{Timeline, What};
use std::sync::atomic::{AtomicUsize, Ordering};

fn whats(t: &Timeline) -> Vec<What> {
    t.steps.iter().map(|s| s.what.clone()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_timeline_after_two_failures_and_a_success() {
    let calls = AtomicUsize::new(0);
    let function = Function::new(Duration::from_millis(20), move |_| {
        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(function_error())
        } else {
            Ok(())
        }
    });
    let h = Harness::start(
        function,
        Setup {
            mapping: "BatchSize = 2",
            bodies: numbered(2),
            ..Setup::default()
        },
    )
    .await;
    h.until("both acked", |h| h.broker.acked().len() == 2).await;
    let t = h.control.message_history(h.mapping, "m1").unwrap();
    // The error as the function answered it (the console reads its type and message).
    let error = r#"{"errorMessage":"boom"}"#.to_owned();
    let failed = |attempt| What::Failed {
        attempt,
        latency_ms: 20,
        error: error.clone(),
    };
    let sent = |attempt| What::Sent {
        attempt,
        messages: 2,
    };
    assert_eq!(
        whats(&t),
        [
            What::Arrived { redelivered: false },
            sent(1),
            failed(1),
            sent(2),
            failed(2),
            sent(3),
            What::Succeeded {
                attempt: 3,
                latency_ms: 20
            },
            What::Acked,
        ],
        "{t:#?}"
    );
    let batches: Vec<_> = t.steps[1..7].iter().map(|s| s.batch).collect();
    assert!(
        batches.iter().all(|b| b.is_some() && *b == batches[0]),
        "every attempt names the one batch: {batches:?}"
    );
    assert!(
        t.steps.windows(2).all(|w| w[0].at <= w[1].at),
        "in the order they happened: {t:#?}"
    );
    assert_eq!(t.end().map(|s| &s.what), Some(&What::Acked));
}

#[tokio::test(start_paused = true)]
async fn a_timeline_ends_with_its_dead_letter_and_a_filtered_one_with_its_filter() {
    let h = Harness::start(
        Function::failing_on(|b| b.contains("bad")),
        Setup {
            mapping: "BatchSize = 1\nFilterCriteria = { Filters = [ { Pattern = '{\"data\": [{\"prefix\": \"ba\"}]}' } ] }",
            engine: "max_redeliveries = 1",
            bodies: vec!["bad".into(), "skip".into()],
            ..Setup::default()
        },
    )
    .await;
    h.until("one dead letter", |h| h.broker.dead_letters().len() == 1)
        .await;
    h.until("the other acked", |h| h.broker.acked().len() == 1)
        .await;
    let dead = h.control.message_history(h.mapping, "m1").unwrap();
    let sends = whats(&dead)
        .iter()
        .filter(|w| matches!(w, What::Sent { .. }))
        .count();
    assert_eq!(sends, 2, "a try and one redelivery: {dead:#?}");
    match &dead.end().expect("it ended").what {
        What::DeadLettered {
            destination,
            reason,
        } => {
            assert_eq!(destination, "the memory broker's dead letters");
            assert!(reason.starts_with("function failed 2 times"), "{reason}");
        }
        other => panic!("ended as {other:?}"),
    }
    let filtered = h.control.message_history(h.mapping, "m2").unwrap();
    assert_eq!(
        whats(&filtered),
        [What::Arrived { redelivered: false }, What::Filtered]
    );
    assert_eq!(h.control.recent_messages(h.mapping, 10), ["m2", "m1"]);
    assert!(h.control.message_history(h.mapping, "m9").is_err());
}
