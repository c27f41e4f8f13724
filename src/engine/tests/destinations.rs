//! DestinationConfig.OnFailure: dead letters go to a function or a queue
//! as Lambda's on-failure record, instead of the broker's dead-letter
//! queue, and are acked only once the destination took them.

use super::*;

const TO_SINK: &str =
    "BatchSize = 2\nDestinationConfig = { OnFailure = { Destination = \"sink\" } }";

#[tokio::test(start_paused = true)]
async fn dead_letters_go_to_the_destination_as_one_on_failure_record_and_are_acked() {
    let h = Harness::start(
        Function::failing_on(|_| true),
        Setup {
            mapping: TO_SINK,
            engine: "max_redeliveries = 1",
            bodies: numbered(2),
            ..Setup::default()
        },
    )
    .await;
    h.until("acked after the destination took them", |h| {
        h.broker.acked().len() == 2
    })
    .await;
    assert!(h.broker.dead_letters().is_empty(), "not the broker's DLQ");
    let sent = h.wiring.destinations.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one record for the batch");
    assert_eq!(sent[0].0, "sink");
    let record: serde_json::Value = serde_json::from_slice(&sent[0].1).unwrap();
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    let bodies: Vec<_> =
        crate::event::bodies(&serde_json::to_vec(&record["requestPayload"]).unwrap())
            .into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect();
    assert_eq!(bodies, numbered(2));
    assert_eq!(record["responsePayload"]["errorMessage"], "boom");
    let journal = h.control.store().dead_letters(Some(h.mapping), 10).unwrap();
    assert_eq!(journal.len(), 2);
    assert!(journal.iter().all(|l| l.destination == "sink" && l.moved));
    assert_eq!(h.stats().dead_lettered, 2);
}

#[tokio::test(start_paused = true)]
async fn a_refusing_destination_is_tried_again_and_nothing_is_acked_before_it_takes_them() {
    let h = Harness::start(
        Function::failing_on(|_| true),
        Setup {
            mapping: TO_SINK,
            engine: "max_redeliveries = 0",
            ..Setup::default()
        },
    )
    .await;
    *h.wiring.refuse_destinations.lock().unwrap() = Some("the sink is down".into());
    h.publish(numbered(2));
    h.until("the refusal shown", |h| {
        h.mapping()
            .last_processing_result
            .contains("the sink is down")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(h.broker.acked().is_empty(), "nothing acked while refused");
    assert_eq!(
        h.function.calls().len(),
        1,
        "the function is not invoked again"
    );
    *h.wiring.refuse_destinations.lock().unwrap() = None;
    h.until("acked once taken", |h| h.broker.acked().len() == 2)
        .await;
    assert_eq!(h.wiring.destinations.lock().unwrap().len(), 1);
}
