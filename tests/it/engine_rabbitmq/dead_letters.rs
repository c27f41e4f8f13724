//! Dead letters: a failing batch retried then moved to `<queue>.dlq`, or
//! rejected to the queue's dead-letter exchange, an expired message, a
//! republished letter that is the same message, and a dead-letter queue
//! that refuses.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_is_retried_5_times_then_dead_lettered_to_the_dlq_queue() {
    let broker = Broker::connect().await;
    let queue = unique("retry");
    broker.declare(&queue, FieldTable::default()).await;
    let props = BasicProperties::default()
        .with_message_id("m-1".into())
        .with_content_type("text/plain".into());
    broker.publish(&queue, b"please fail", props).await;
    broker
        .publish(&queue, b"innocent bystander", BasicProperties::default())
        .await;
    let mut setup = Setup::new(&queue);
    setup.window_secs = Some(1);
    let running = Running::start(&setup).await;

    wait_for("the dead letters, moved", || {
        running.dead_letters().iter().filter(|d| d.moved).count() == 2
    })
    .await;
    let events = running.events();
    assert_eq!(events.len(), 6, "one attempt and 5 redeliveries");
    assert!(
        events.iter().all(|e| messages(e).len() == 2),
        "the whole batch is retried"
    );
    let flags: Vec<Vec<bool>> = events
        .iter()
        .map(|e| messages(e).iter().map(|(_, r)| *r).collect())
        .collect();
    assert_eq!(flags[0], [false, false]);
    for retry in &flags[1..] {
        assert_eq!(retry, &[true, true], "each retry says redelivered");
    }
    let letters = running.dead_letters();
    assert!(
        letters
            .iter()
            .all(|l| l.attempts == 6 && l.destination == format!("{queue}.dlq"))
    );
    assert!(
        letters[0]
            .error
            .as_deref()
            .unwrap()
            .contains("told to fail"),
        "{:?}",
        letters[0].error
    );
    wait_for("LastProcessingResult to say so", || {
        running
            .mapping()
            .last_processing_result
            .contains("dead-lettered")
    })
    .await;
    running.control.shutdown().await;

    let dlq = broker.drain(&format!("{queue}.dlq")).await;
    assert_eq!(dlq.len(), 2);
    let first = &dlq[0].delivery;
    assert_eq!(first.data, b"please fail");
    assert_eq!(
        first.properties.message_id().as_ref().map(|s| s.as_str()),
        Some("m-1"),
        "properties are kept"
    );
    let headers = first.properties.headers().as_ref().unwrap();
    assert_eq!(
        headers.inner().get("x-mqtrigger-attempts"),
        Some(&AMQPValue::LongLongInt(6))
    );
    assert_eq!(
        first.properties.delivery_mode(),
        &Some(2),
        "dead letters are persistent"
    );
    assert_eq!(
        broker.ready(&queue).await,
        0,
        "the originals are acked once the dead letters are confirmed"
    );

    // From the journal: a replay invokes the function with the same record, a
    // republish puts the body back on the source queue.
    let letter = running
        .dead_letters()
        .into_iter()
        .find(|d| d.body == b"innocent bystander")
        .unwrap();
    let uuid = running.mapping().uuid;
    let replayed = running
        .control
        .replay(uuid, letter.id)
        .await
        .expect("the bystander alone succeeds");
    assert!(replayed.contains("\"ok\": true"), "{replayed}");
    let last = running.events().pop().unwrap();
    assert_eq!(
        messages(&last),
        vec![(b"innocent bystander".to_vec(), false)]
    );
    let failing = running
        .dead_letters()
        .into_iter()
        .find(|d| d.body == b"please fail")
        .unwrap();
    let err = running.control.replay(uuid, failing.id).await.unwrap_err();
    assert!(format!("{err:#}").contains("told to fail"), "{err:#}");
    running.control.republish(uuid, failing.id).await.unwrap();
    let back = broker.drain(&queue).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].delivery.data, b"please fail");

    // Only through the mapping whose journal holds it.
    let stranger = uuid::Uuid::new_v4();
    let err = running
        .control
        .republish(stranger, failing.id)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("has no dead letter"), "{err:#}");
    // --readonly is the engine's rule, not only the console's.
    running.control.make_readonly();
    for refused in [
        running.control.replay(uuid, failing.id).await.map(|_| ()),
        running.control.republish(uuid, failing.id).await,
        running.control.set_batch_size(uuid, 5).await.map(|_| ()),
        running.control.disable(uuid).await.map(|_| ()),
        running.control.delete(uuid).await.map(|_| ()),
    ] {
        let err = refused.unwrap_err();
        assert!(format!("{err:#}").contains("--readonly"), "{err:#}");
    }
    assert_eq!(broker.ready(&queue).await, 0, "nothing was republished");
    assert_eq!(running.mapping().state, mqtrigger::mapping::State::Enabled);
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_a_dead_letter_exchange_gets_its_failures_rejected_to_it() {
    let broker = Broker::connect().await;
    let queue = unique("dlx");
    let dead = format!("{queue}.dead");
    broker.declare(&dead, FieldTable::default()).await;
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead.as_str().into()),
    );
    broker.declare(&queue, args).await;
    broker
        .publish(&queue, b"fail me", BasicProperties::default())
        .await;
    let mut setup = Setup::new(&queue);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    let running = Running::start(&setup).await;

    wait_for("the dead letter, moved", || {
        running.dead_letters().iter().any(|d| d.moved)
    })
    .await;
    running.control.shutdown().await;
    let moved = broker.drain(&dead).await;
    assert_eq!(
        moved.len(),
        1,
        "RabbitMQ moved the rejected message through the queue's dead-letter exchange"
    );
    assert_eq!(moved[0].delivery.data, b"fail me");
    let death = moved[0].delivery.properties.headers().as_ref().unwrap();
    assert!(
        death.inner().contains_key("x-death"),
        "RabbitMQ's own x-death header shows it was rejected"
    );
    assert_eq!(broker.ready(&queue).await, 0);
    let letters = running.dead_letters();
    assert!(
        letters[0].destination.contains("dead-letter exchange"),
        "{}",
        letters[0].destination
    );
    broker.delete(&queue).await;
    broker.delete(&dead).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_expires_while_retried_is_dead_lettered_as_expired() {
    let broker = Broker::connect().await;
    let queue = unique("expiry");
    broker.declare(&queue, FieldTable::default()).await;
    let props = BasicProperties::default().with_expiration(ShortString::from("1500"));
    broker.publish(&queue, b"short-lived", props).await;
    let mut setup = Setup::new(&queue);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    setup.retry_initial_ms = 400;
    let running = Running::start(&setup).await;

    wait_for("the dead letter, moved", || {
        running.dead_letters().iter().any(|d| d.moved)
    })
    .await;
    let letter = running.dead_letters().remove(0);
    assert!(letter.reason.contains("expired"), "{}", letter.reason);
    assert!(
        letter.attempts < 6,
        "it expired before the retries ran out ({} attempts)",
        letter.attempts
    );
    running.control.shutdown().await;
    let dlq = broker.drain(&format!("{queue}.dlq")).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].delivery.data, b"short-lived");
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_dead_letter_is_the_same_message_with_its_properties_and_headers() {
    let broker = Broker::connect().await;
    let queue = unique("republish");
    broker.declare(&queue, FieldTable::default()).await;
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    headers.insert("retries".into(), AMQPValue::LongLongInt(3));
    headers.insert("urgent".into(), AMQPValue::Boolean(true));
    let original = BasicProperties::default()
        .with_message_id("order-42".into())
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_correlation_id("corr-7".into())
        .with_reply_to("replies".into())
        .with_type("order.created".into())
        .with_app_id("shop".into())
        .with_priority(5)
        .with_delivery_mode(2)
        .with_timestamp(1_700_000_000)
        .with_headers(headers.clone());
    broker
        .publish(&queue, br#"{"order":42}"#, original.clone())
        .await;
    let mut setup = Setup::new(&queue);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    let running = Running::start(&setup).await;
    wait_for("the dead letter, moved", || {
        running.dead_letters().iter().filter(|d| d.moved).count() == 1
    })
    .await;
    let uuid = running.mapping().uuid;
    // Off first, so the copy stays in the queue for us to read.
    running.control.disable(uuid).await.unwrap();
    let letter = running.dead_letters().remove(0);
    running.control.republish(uuid, letter.id).await.unwrap();
    let back = broker.drain(&queue).await;
    assert_eq!(back.len(), 1);
    let copy = &back[0].delivery;
    assert_eq!(copy.data, br#"{"order":42}"#);
    let p = &copy.properties;
    assert_eq!(p.message_id(), original.message_id());
    assert_eq!(p.content_type(), original.content_type());
    assert_eq!(p.content_encoding(), original.content_encoding());
    assert_eq!(p.correlation_id(), original.correlation_id());
    assert_eq!(p.reply_to(), original.reply_to());
    assert_eq!(p.kind(), original.kind());
    assert_eq!(p.app_id(), original.app_id());
    assert_eq!(p.priority(), original.priority());
    assert_eq!(p.delivery_mode(), original.delivery_mode());
    assert_eq!(p.timestamp(), original.timestamp());
    let got = p.headers().as_ref().unwrap().inner();
    for (name, value) in headers.inner() {
        assert_eq!(got.get(name), Some(value), "header {name}");
    }
    assert!(got.contains_key("x-mqtrigger-republished"));
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_queue_that_refuses_is_retried_without_invoking_again_and_the_journal_waits()
{
    let broker = Broker::connect().await;
    let queue = unique("dlq-full");
    let dlq = format!("{queue}.dlq");
    broker.declare(&queue, FieldTable::default()).await;
    let mut full = FieldTable::default();
    full.insert("x-max-length".into(), AMQPValue::LongInt(0));
    full.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    broker.declare(&dlq, full).await;
    for i in 0..3 {
        broker
            .publish(
                &queue,
                format!("doomed-{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await;
    }
    let mut setup = Setup::new(&queue);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    let running = Running::start(&setup).await;
    wait_for("the refusal in LastProcessingResult", || {
        let result = running.mapping().last_processing_result;
        result.contains("cannot be dead-lettered") && result.contains(&dlq)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(running.events().len(), 6, "invoked 6 times, and not again");
    let journal = running.dead_letters();
    assert_eq!(journal.len(), 3, "journaled once");
    assert!(
        journal.iter().all(|d| !d.moved),
        "no move claimed before RabbitMQ took them"
    );
    // The queue is made to take them: the move goes through, once.
    broker.delete(&dlq).await;
    broker.declare(&dlq, FieldTable::default()).await;
    wait_for("the dead letters in the queue", || {
        running.dead_letters().iter().all(|d| d.moved)
    })
    .await;
    assert_eq!(broker.drain(&dlq).await.len(), 3);
    assert_eq!(running.events().len(), 6);
    assert_eq!(running.dead_letters().len(), 3);
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&dlq).await;
}
