//! DestinationConfig.OnFailure on the real brokers: dead letters go as
//! Lambda's on-failure record to a queue of ours or to a function, instead
//! of the broker's dead-letter queue, and nothing is left behind.

use crate::common::*;

/// A mapping whose function always fails, that dead-letters after one
/// retry and whose batch is exactly the `count` messages a test sends: the
/// batch flushes when it is full, so the messages cannot be split between two
/// batches (and two records) by when they happen to arrive.
fn failing(setup: Setup, count: u32) -> Setup {
    Setup {
        batch_size: count,
        window_secs: Some(60),
        max_redeliveries: Some(1),
        function_env: vec![("FAIL".into(), "always".into())],
        ..setup
    }
}

/// The mapping setting that sends dead letters to `failed`, a queue of the
/// test broker.
fn to_queue(failed: &str) -> String {
    format!(
        "DestinationConfig = {{ OnFailure = {{ Destination = \"{BROKER_ARN}:queue:{failed}\" }} }}"
    )
}

/// Publishes `bodies` to `queue` and waits until the mapping has
/// dead-lettered them all.
async fn publish_until_dead(broker: &Broker, queue: &str, running: &Running, bodies: &[&str]) {
    for body in bodies {
        broker
            .publish(queue, body.as_bytes(), Default::default())
            .await;
    }
    let uuid = running.mapping().uuid;
    wait_for("counted dead", || {
        running.control.stats(uuid).dead_lettered == bodies.len() as u64
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_dead_letters_go_to_a_queue_of_ours_as_an_on_failure_record() {
    let queue = unique("dest-src");
    let failed = format!("{queue}-failed");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    broker.declare(&failed, Default::default()).await;
    let mut setup = failing(Setup::new(&queue), 3);
    setup.mapping_toml = to_queue(&failed);
    let running = Running::start(&setup).await;
    publish_until_dead(&broker, &queue, &running, &["a", "b", "c"]).await;
    let records = broker.drain(&failed).await;
    assert_eq!(records.len(), 1, "one record for the batch");
    let record: serde_json::Value = serde_json::from_slice(&records[0].delivery.data).unwrap();
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:recorder"
    );
    let payload = serde_json::to_vec(&record["requestPayload"]).unwrap();
    let bodies: Vec<String> = mqtrigger::event::bodies(&payload)
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect();
    assert_eq!(bodies, ["a", "b", "c"]);
    assert_eq!(broker.ready(&queue).await, 0, "the source queue acked");
    let letters = running.dead_letters();
    assert!(
        letters
            .iter()
            .all(|l| l.moved && l.destination.ends_with(&failed))
    );
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&failed).await;
}

/// A mapping on a virtual host of its own gets its on-failure record in the
/// queue of that virtual host, where its user has rights (the record went
/// to "/" before, where no such queue was).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_on_failure_records_go_to_the_mappings_own_virtual_host() {
    let vhost = unique("dest-vhost");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let queue = unique("dest-vh");
    let failed = format!("{queue}-failed");
    let broker = Broker::connect_to(&amqp_url_on(&vhost)).await;
    broker.declare(&queue, Default::default()).await;
    broker.declare(&failed, Default::default()).await;
    let mut setup = failing(Setup::new(&queue), 2);
    setup.vhost = vhost.clone();
    setup.mapping_toml = to_queue(&failed);
    let running = Running::start(&setup).await;
    publish_until_dead(&broker, &queue, &running, &["a", "b"]).await;
    let records = broker.drain(&failed).await;
    assert_eq!(records.len(), 1, "one record, on the mapping's vhost");
    let record: serde_json::Value = serde_json::from_slice(&records[0].delivery.data).unwrap();
    let payload = serde_json::to_vec(&record["requestPayload"]).unwrap();
    assert_eq!(mqtrigger::event::bodies(&payload).len(), 2);
    assert_eq!(broker.ready(&queue).await, 0, "the source queue acked");
    running.control.shutdown().await;
    rabbitmqctl(&["delete_vhost", &vhost]);
}

/// A destination queue that does not exist refuses the record (it is not
/// dropped): the letters wait, LastProcessingResult says which queue to
/// declare, and once it is declared the record arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_destination_queue_keeps_the_record_until_it_is_declared() {
    let queue = unique("dest-missing");
    let failed = format!("{queue}-failed");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    let mut setup = failing(Setup::new(&queue), 1);
    setup.mapping_toml = to_queue(&failed);
    let running = Running::start(&setup).await;
    broker.publish(&queue, b"kept", Default::default()).await;
    wait_for("the missing queue named", || {
        running
            .mapping()
            .last_processing_result
            .contains(&format!("declare queue '{failed}'"))
    })
    .await;
    broker.declare(&failed, Default::default()).await;
    wait_for("the record delivered", || {
        running.control.stats(running.mapping().uuid).dead_lettered == 1
    })
    .await;
    let records = broker.drain(&failed).await;
    assert_eq!(records.len(), 1, "the record, once");
    assert_eq!(broker.ready(&queue).await, 0, "the source queue acked");
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_dead_letters_go_to_a_function() {
    let queue = unique("dest-amq");
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("sink.jsonl");
    std::fs::write(&sink, b"").unwrap();
    let mut setup = failing(Setup::activemq(&queue), 2);
    setup.mapping_toml = "DestinationConfig = { OnFailure = { Destination = \"sink\" } }".into();
    setup.extra_toml = format!(
        "[functions.sink]\ncommand = [{:?}, \"{}/tests/functions/recorder.py\"]\nenv = {{ RECORD_TO = {:?} }}\n",
        python(),
        env!("CARGO_MANIFEST_DIR"),
        sink.display().to_string()
    );
    let running = Running::start(&setup).await;
    let uuid = running.mapping().uuid;
    publish_persistent(&stomp_url(), &queue, &["x", "y"]).await;
    wait_for("counted dead", || {
        running.control.stats(uuid).dead_lettered == 2
    })
    .await;
    let records = read_events(&sink);
    assert_eq!(records.len(), 1, "the sink invoked once with the record");
    let record = &records[0];
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestPayload"]["eventSource"], "aws:mq");
    assert_eq!(
        record["requestPayload"]["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    running.control.shutdown().await;
}
