//! The engine end to end against the real RabbitMQ, with a real function process.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use mqtrigger::mapping::{State, StateTransitionReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_acks_every_message_in_batches_of_batch_size() {
    let broker = Broker::connect().await;
    let queue = unique("size");
    broker.declare(&queue, FieldTable::default()).await;
    for i in 0..25 {
        broker
            .publish(
                &queue,
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await;
    }
    let mut setup = Setup::new(&queue);
    setup.batch_size = 10;
    setup.window_secs = Some(3);
    let running = Running::start(&setup).await;

    wait_for("25 messages invoked", || {
        running
            .events()
            .iter()
            .map(|e| messages(e).len())
            .sum::<usize>()
            == 25
    })
    .await;
    let sizes: Vec<usize> = running.events().iter().map(|e| messages(e).len()).collect();
    assert_eq!(
        sizes,
        [10, 10, 5],
        "batches flush at BatchSize, the rest at the window"
    );
    let bodies: Vec<Vec<u8>> = running
        .events()
        .iter()
        .flat_map(messages)
        .map(|(b, _)| b)
        .collect();
    let expected: Vec<Vec<u8>> = (0..25).map(|i| format!("m{i}").into_bytes()).collect();
    assert_eq!(bodies, expected, "every message once, in queue order");

    wait_for("LastProcessingResult OK", || {
        running.mapping().last_processing_result == "OK"
    })
    .await;
    running.control.shutdown().await;
    assert_eq!(
        broker.ready(&queue).await,
        0,
        "acked messages do not come back"
    );
    let batches = running
        .control
        .store()
        .batches(running.mapping().uuid, 10)
        .unwrap();
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.outcome == "OK" && b.attempts == 1));
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_flushes_a_partial_batch() {
    let broker = Broker::connect().await;
    let queue = unique("window");
    broker.declare(&queue, FieldTable::default()).await;
    let mut setup = Setup::new(&queue);
    setup.batch_size = 100;
    setup.window_secs = Some(1);
    let running = Running::start(&setup).await;
    for body in ["a", "b", "c"] {
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    wait_for("a first batch", || !running.events().is_empty()).await;
    broker
        .publish(&queue, b"d", BasicProperties::default())
        .await;
    wait_for("a second batch", || running.events().len() == 2).await;
    let sizes: Vec<usize> = running.events().iter().map(|e| messages(e).len()).collect();
    assert_eq!(
        sizes,
        [3, 1],
        "each batch is sent when its window ends, far below BatchSize"
    );
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stay_under_6_mb_and_an_oversized_record_is_dead_lettered() {
    let broker = Broker::connect().await;
    let queue = unique("six-mb");
    broker.declare(&queue, FieldTable::default()).await;
    let big = vec![b'x'; 2 * 1024 * 1024]; // 2.7 MB once base64-encoded
    for i in 0..5u8 {
        let mut body = big.clone();
        body[0] = b'0' + i;
        broker
            .publish(&queue, &body, BasicProperties::default())
            .await;
    }
    let huge = vec![b'h'; 5 * 1024 * 1024]; // 6.7 MB encoded: no event can hold it
    broker
        .publish(
            &queue,
            &huge,
            BasicProperties::default().with_message_id("huge".into()),
        )
        .await;
    let mut setup = Setup::new(&queue);
    setup.batch_size = 10;
    let running = Running::start(&setup).await;

    wait_for("the five 2 MB messages", || {
        running
            .events()
            .iter()
            .map(|e| messages(e).len())
            .sum::<usize>()
            == 5
    })
    .await;
    for event in running.events() {
        let size = serde_json::to_vec(&event).unwrap().len();
        assert!(
            size <= 6 * 1024 * 1024,
            "an event of {size} bytes is over Lambda's limit"
        );
    }
    let sizes: Vec<usize> = running.events().iter().map(|e| messages(e).len()).collect();
    assert_eq!(sizes, [2, 2, 1]);
    wait_for("the huge message in the journal, moved", || {
        running.dead_letters().iter().any(|d| d.moved)
    })
    .await;
    let letters = running.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message_id.as_deref(), Some("huge"));
    assert!(
        letters[0].reason.contains("at most 6291456 bytes"),
        "{}",
        letters[0].reason
    );
    assert_eq!(
        letters[0].body, huge,
        "the journal keeps the body for replay"
    );
    running.control.shutdown().await;
    let dlq = broker.drain(&format!("{queue}.dlq")).await;
    assert_eq!(
        dlq.len(),
        1,
        "the oversized message is in the dead-letter queue, not dropped"
    );
    assert_eq!(dlq[0].delivery.data, huge);
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

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
async fn a_wrong_password_stops_the_mapping_with_event_source_authn_error() {
    let queue = unique("authn");
    let mut setup = Setup::new(&queue);
    setup.password = "not-the-password".into();
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(
        code,
        StateTransitionReason::EventSourceAuthnError,
        "{detail}"
    );
    assert!(
        detail.contains("'guest'") && detail.contains("127.0.0.1:5672"),
        "names the user and broker: {detail}"
    );
}

/// Lambda's rule: a mapping a stop code stopped stays stopped, across
/// restarts too, until a user enables it; State never says Disabled of a
/// mapping that consumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_stopped_by_a_stop_code_stays_stopped_after_a_restart_until_enabled() {
    use mqtrigger::config::Config;
    use mqtrigger::engine::Control;
    use mqtrigger::store::Store;
    let broker = Broker::connect().await;
    let queue = unique("stays");
    broker.declare(&queue, FieldTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    let config_path = dir.path().join("mqtrigger.toml");
    let state = dir.path().join("state");
    let start = |password: &str| {
        let mut setup = Setup::new(&queue);
        setup.password = password.into();
        std::fs::write(&config_path, setup.toml(&record)).unwrap();
        let config = Config::load(&config_path).unwrap();
        let store = Store::open(&state).unwrap();
        Control::start(config, store)
    };
    let control = start("not-the-password").await.unwrap();
    let uuid = control.list().unwrap()[0].uuid;
    wait_for("the stop code", || {
        control.get(uuid).unwrap().state == State::Disabled
    })
    .await;
    control.shutdown().await;
    drop(control);
    // The password is fixed in [secrets]; mqtrigger starts again.
    let control = start("guest").await.unwrap();
    broker
        .publish(&queue, b"waits", BasicProperties::default())
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let m = control.get(uuid).unwrap();
    assert_eq!(m.state, State::Disabled);
    assert_eq!(
        m.state_transition_reason,
        StateTransitionReason::EventSourceAuthnError
    );
    assert_eq!(
        broker.ready(&queue).await,
        1,
        "a Disabled mapping consumes nothing"
    );
    assert!(read_events(&record).is_empty());
    control.enable(uuid).await.unwrap();
    wait_for("the message at the function", || {
        read_events(&record).len() == 1
    })
    .await;
    assert_eq!(control.get(uuid).unwrap().state, State::Enabled);
    control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_host_that_does_not_exist_stops_with_esm_config_not_valid() {
    let mut setup = Setup::new(&unique("novhost"));
    setup.vhost = unique("no-such-vhost");
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(code, StateTransitionReason::EsmConfigNotValid, "{detail}");
    assert!(
        detail.contains("no such virtual host") && detail.contains(&setup.vhost),
        "names the vhost: {detail}"
    );
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

/// A content header larger than the 8 KB frames idle mappings start with
/// (one 9,000-byte header) is consumed, not left at the head of the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_headers_larger_than_a_small_frame_is_consumed() {
    let broker = Broker::connect().await;
    let queue = unique("bigheader");
    broker.declare(&queue, FieldTable::default()).await;
    let mut headers = FieldTable::default();
    headers.insert("big".into(), AMQPValue::LongString("x".repeat(9000).into()));
    broker
        .publish(
            &queue,
            b"big headers",
            BasicProperties::default().with_headers(headers),
        )
        .await;
    broker
        .publish(&queue, b"behind it", BasicProperties::default())
        .await;
    let setup = Setup::new(&queue);
    let running = Running::start(&setup).await;
    wait_for("both messages at the function", || {
        running.events().iter().flat_map(messages).count() >= 2
    })
    .await;
    let first = &running.events()[0];
    let header = &first["rmqMessagesByQueue"][format!("{queue}::/")][0]["basicProperties"]["headers"]
        ["big"]["bytes"];
    assert_eq!(header.as_array().map(|b| b.len()), Some(9000));
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_permissions_stops_with_event_source_authz_error() {
    let broker = Broker::connect().await;
    let queue = unique("authz");
    broker.declare(&queue, FieldTable::default()).await;
    let mut setup = Setup::new(&queue);
    setup.username = "mqt_noperm".into();
    setup.password = "mqt_noperm_secret".into();
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(
        code,
        StateTransitionReason::EventSourceAuthzError,
        "{detail}"
    );
    assert!(detail.contains("mqt_noperm"), "{detail}");

    let mut setup = Setup::new(&queue);
    setup.username = "mqt_noread".into();
    setup.password = "mqt_noread_secret".into();
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(
        code,
        StateTransitionReason::EventSourceAuthzError,
        "no read permission on the queue: {detail}"
    );
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_stops_with_esm_config_not_valid() {
    let setup = Setup::new(&unique("missing"));
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(code, StateTransitionReason::EsmConfigNotValid, "{detail}");
    assert!(detail.contains(&setup.queue), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_function_program_stops_with_function_config_not_valid_and_loses_nothing() {
    let broker = Broker::connect().await;
    let queue = unique("nofunc");
    broker.declare(&queue, FieldTable::default()).await;
    broker
        .publish(&queue, b"keep me", BasicProperties::default())
        .await;
    let mut setup = Setup::new(&queue);
    setup.function_command = Some(vec!["/nonexistent/handler".into()]);
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(
        code,
        StateTransitionReason::FunctionConfigNotValid,
        "{detail}"
    );
    assert!(detail.contains("/nonexistent/handler"), "{detail}");
    running.control.shutdown().await;
    assert_eq!(
        broker.ready(&queue).await,
        1,
        "the message went back to the queue"
    );
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_mapping_leaves_the_others_running() {
    let broker = Broker::connect().await;
    let good = unique("good");
    broker.declare(&good, FieldTable::default()).await;
    broker
        .publish(&good, b"hello", BasicProperties::default())
        .await;
    let setup = Setup::new(&good);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let mut text = setup.toml(&record);
    // A second mapping on a queue that does not exist.
    let bad_mapping =
        text[text.find("[[mappings]]").unwrap()..].replace(&good, "mqt-no-such-queue");
    text.push_str(&bad_mapping);
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let config = mqtrigger::config::Config::load(&path).unwrap();
    let store = mqtrigger::store::Store::open(&dir.path().join("state")).unwrap();
    let control = mqtrigger::engine::Control::start(config, store)
        .await
        .unwrap();
    wait_for("the good mapping to deliver", || {
        !read_events(&record).is_empty()
    })
    .await;
    wait_for("the bad mapping to stop", || {
        control
            .list()
            .unwrap()
            .iter()
            .any(|m| m.state == State::Disabled)
    })
    .await;
    let states: Vec<(String, State)> = control
        .list()
        .unwrap()
        .iter()
        .map(|m| (m.spec.queue().to_owned(), m.state))
        .collect();
    assert!(
        states.contains(&(good.clone(), State::Enabled)),
        "{states:?}"
    );
    control.shutdown().await;
    broker.delete(&good).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_first_endpoint_fails_over_to_the_next() {
    let broker = Broker::connect().await;
    let queue = unique("failover");
    broker.declare(&queue, FieldTable::default()).await;
    broker
        .publish(&queue, b"via standby", BasicProperties::default())
        .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut setup = Setup::new(&queue);
    setup.endpoints = vec![format!("amqp://{closed}"), amqp_endpoint()];
    let running = Running::start(&setup).await;
    wait_for("delivery through the second endpoint", || {
        !running.events().is_empty()
    })
    .await;
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_is_retried_and_reported() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut setup = Setup::new(&unique("down"));
    setup.endpoints = vec![format!("amqp://{closed}")];
    let running = Running::start(&setup).await;
    wait_for("the problem to show", || {
        running
            .mapping()
            .last_processing_result
            .contains("Connection error")
    })
    .await;
    let m = running.mapping();
    assert_eq!(
        m.state,
        State::Enabled,
        "a broker outage is not a stop code: it keeps retrying"
    );
    assert!(
        m.last_processing_result.contains(&closed.to_string()),
        "{}",
        m.last_processing_result
    );
    running.control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_time_changes_survive_a_restart_until_the_file_changes() {
    let broker = Broker::connect().await;
    let queue = unique("persist");
    broker.declare(&queue, FieldTable::default()).await;
    let setup = Setup::new(&queue);
    let running = Running::start(&setup).await;
    let uuid = running.mapping().uuid;
    running.control.set_batch_size(uuid, 42).await.unwrap();
    running.control.disable(uuid).await.unwrap();
    assert!(
        running.control.set_batch_size(uuid, 20_000).await.is_err(),
        "BatchSize is validated"
    );
    running.control.shutdown().await;
    let Running {
        dir,
        config_path,
        control,
        ..
    } = running;
    drop(control);

    let restart = || async {
        let config = mqtrigger::config::Config::load(&config_path).unwrap();
        let store = mqtrigger::store::Store::open(&dir.path().join("state")).unwrap();
        mqtrigger::engine::Control::start(config, store)
            .await
            .unwrap()
    };
    let control = restart().await;
    let m = control.get(uuid).expect("the same mapping, same UUID");
    assert_eq!((m.spec.batch_size, m.state), (Some(42), State::Disabled));
    control.shutdown().await;
    drop(control);

    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("BatchSize = 10", "BatchSize = 7");
    std::fs::write(&config_path, text).unwrap();
    let control = restart().await;
    let m = control.get(uuid).unwrap();
    assert_eq!(
        m.spec.batch_size,
        Some(7),
        "an edited config file wins over the old run-time change"
    );
    control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_is_the_exact_aws_rmq_event() {
    let broker = Broker::connect().await;
    let queue = unique("shape");
    broker.declare(&queue, FieldTable::default()).await;
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    headers.insert("n".into(), AMQPValue::LongInt(10));
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_priority(5)
        .with_message_id("id-1".into())
        .with_timestamp(2021)
        .with_headers(headers);
    broker.publish(&queue, br#"{"order":1}"#, props).await;
    broker
        .publish(&queue, b"", BasicProperties::default())
        .await;
    // Every other property, nested and typed headers, and a binary body.
    let mut nested = FieldTable::default();
    nested.insert("depth".into(), AMQPValue::ShortShortInt(-2));
    let mut headers = FieldTable::default();
    headers.insert("nested".into(), AMQPValue::FieldTable(nested));
    headers.insert(
        "list".into(),
        AMQPValue::FieldArray(vec![AMQPValue::Boolean(true), AMQPValue::Double(1.5)].into()),
    );
    headers.insert("big".into(), AMQPValue::LongLongInt(-9_000_000_000));
    let props = BasicProperties::default()
        .with_content_encoding("gzip".into())
        .with_correlation_id("corr-9".into())
        .with_reply_to("replies".into())
        .with_expiration("60000".into())
        .with_type("order.created".into())
        .with_user_id("guest".into())
        .with_app_id("shop".into())
        .with_cluster_id("c1".into())
        .with_timestamp(1_700_000_000)
        .with_headers(headers);
    broker
        .publish(&queue, &[0, 159, 146, 150, 0xff, 0], props)
        .await;
    let running = Running::start(&Setup::new(&queue)).await;
    wait_for("the event", || !running.events().is_empty()).await;
    let event = running.events().remove(0);
    running.control.shutdown().await;

    let key = format!("{queue}::/");
    let expected = serde_json::json!({
        "eventSource": "aws:rmq",
        "eventSourceArn": BROKER_ARN,
        "rmqMessagesByQueue": { key: [
            {
                "basicProperties": {
                    "contentType": "application/json", "contentEncoding": null,
                    "headers": {"tenant": {"bytes": [97, 99, 109, 101]}, "n": 10},
                    "deliveryMode": 2, "priority": 5, "correlationId": null, "replyTo": null,
                    "expiration": null, "messageId": "id-1", "timestamp": "Jan 1, 1970, 12:33:41 AM",
                    "type": null, "userId": null, "appId": null, "clusterId": null, "bodySize": 11
                },
                "redelivered": false,
                "data": "eyJvcmRlciI6MX0="
            },
            {
                "basicProperties": {
                    "contentType": null, "contentEncoding": null, "headers": {},
                    "deliveryMode": 1, "priority": null, "correlationId": null, "replyTo": null,
                    "expiration": null, "messageId": null, "timestamp": null,
                    "type": null, "userId": null, "appId": null, "clusterId": null, "bodySize": 0
                },
                "redelivered": false,
                "data": ""
            },
            {
                "basicProperties": {
                    "contentType": null, "contentEncoding": "gzip",
                    "headers": {"nested": {"depth": -2}, "list": [true, 1.5], "big": -9_000_000_000i64},
                    "deliveryMode": 1, "priority": null, "correlationId": "corr-9", "replyTo": "replies",
                    "expiration": "60000", "messageId": null, "timestamp": "Nov 14, 2023, 10:13:20 PM",
                    "type": "order.created", "userId": "guest", "appId": "shop", "clusterId": "c1", "bodySize": 6
                },
                "redelivered": false,
                "data": "AJ+Slv8A"
            }
        ]}
    });
    assert_eq!(event, expected);
    broker.delete(&queue).await;
}
