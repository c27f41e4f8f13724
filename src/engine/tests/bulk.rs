//! Dead letters in bulk: a filter selects, each is acted on, the summary
//! says how many and why some failed.

use super::*;
use crate::engine::bulk::{BulkAction, LetterFilter};

/// Six dead letters: m1…m3 fail with "bad", m4…m6 with "worse" in the body.
async fn six_dead() -> Harness {
    let h = Harness::start(
        Function::failing_on(|_| true),
        Setup {
            mapping: "BatchSize = 1",
            engine: "max_redeliveries = 0",
            bodies: vec![
                "bad 1".into(),
                "bad 2".into(),
                "bad 3".into(),
                "worse 4".into(),
                "worse 5".into(),
                "worse 6".into(),
            ],
            ..Setup::default()
        },
    )
    .await;
    h.until("six dead letters", |h| h.stats().dead_lettered == 6)
        .await;
    h
}

#[tokio::test(start_paused = true)]
async fn a_text_filter_selects_and_delete_takes_them_out_of_the_journal() {
    let h = six_dead().await;
    let worse = LetterFilter {
        text: Some("WORSE".into()),
        ..LetterFilter::default()
    };
    let selected = h.control.dead_letters_matching(h.mapping, &worse).unwrap();
    assert_eq!(selected.len(), 3);
    let seen = std::sync::Mutex::new(Vec::new());
    let summary = h
        .control
        .bulk(h.mapping, &worse, BulkAction::Delete, |done, total| {
            seen.lock().unwrap().push((done, total))
        })
        .await
        .unwrap();
    assert_eq!((summary.total, summary.done), (3, 3));
    assert!(summary.failed.is_empty());
    assert_eq!(*seen.lock().unwrap(), [(1, 3), (2, 3), (3, 3)]);
    let left = h
        .control
        .dead_letters_matching(h.mapping, &LetterFilter::default())
        .unwrap();
    let bodies: Vec<_> = left
        .iter()
        .map(|l| String::from_utf8_lossy(&l.body).into_owned())
        .collect();
    assert_eq!(bodies, ["bad 3", "bad 2", "bad 1"]);
}

#[tokio::test(start_paused = true)]
async fn a_bulk_replay_invokes_once_a_letter_and_says_what_failed() {
    let h = six_dead().await;
    let before = h.function.calls().len();
    let bad = LetterFilter {
        text: Some("bad".into()),
        reason: Some("retries".into()),
        ..LetterFilter::default()
    };
    let summary = h
        .control
        .bulk(h.mapping, &bad, BulkAction::Replay, |_, _| {})
        .await
        .unwrap();
    // The replays go to the mapping's function, which fails them all.
    let replayed: Vec<_> = h.function.calls()[before..]
        .iter()
        .map(|c| c.bodies.join(","))
        .collect();
    assert_eq!(
        replayed,
        ["bad 1", "bad 2", "bad 3"],
        "oldest first, once each"
    );
    assert_eq!(
        (summary.total, summary.done, summary.failed.len()),
        (3, 0, 3)
    );
    assert_eq!(
        summary.sentence(BulkAction::Replay),
        "0 of 3 replayed; 3 failed (letter 1: function error Unhandled: {\"errorMessage\":\"boom\"})"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_reason_word_is_refused() {
    let h = six_dead().await;
    let wrong = LetterFilter {
        reason: Some("sad".into()),
        ..LetterFilter::default()
    };
    let e = h
        .control
        .dead_letters_matching(h.mapping, &wrong)
        .unwrap_err();
    assert!(e.to_string().contains("retries, expired, too large"), "{e}");
}
