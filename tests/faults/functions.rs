//! Functions that misbehave: one mapping's trouble is not another's.

use super::*;
use mqtrigger::engine::EngineEvent;
use mqtrigger::mapping::{MappingSpec, SourceAccessConfiguration, SourceAccessType};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_function_does_not_slow_another_mapping() {
    let healthy = unique("fault-healthy");
    let stuck = unique("fault-stuck");
    let broker = Broker::connect().await;
    broker.declare(&healthy, Default::default()).await;
    broker.declare(&stuck, Default::default()).await;
    let mut setup = Setup::new(&healthy);
    setup.retry_initial_ms = 100;
    let behave = format!("{}/tests/functions/behave.py", env!("CARGO_MANIFEST_DIR"));
    let marker = tempfile::NamedTempFile::new().unwrap();
    setup.extra_toml = format!(
        "[functions.hang]\ncommand = [\"python3\", {behave:?}, \"hang\", {:?}]\ntimeout = 1\n",
        marker.path().display().to_string()
    );
    let running = Running::start(&setup).await;
    let mut events = running.control.subscribe();
    let stuck_mapping = running
        .control
        .create(MappingSpec {
            function_name: "hang".into(),
            event_source_arn: BROKER_ARN.into(),
            queues: vec![stuck.clone()],
            batch_size: Some(1),
            maximum_batching_window_in_seconds: Some(0),
            enabled: None,
            filter_criteria: None,
            source_access_configurations: vec![SourceAccessConfiguration {
                kind: SourceAccessType::BasicAuth,
                uri: SECRET_ARN.into(),
            }],
            scaling_config: None,
        })
        .await
        .unwrap();
    broker
        .publish(&stuck, b"never answered", Default::default())
        .await;
    // Wait until the stuck function is being retried, then send the other work.
    loop {
        if let Ok(EngineEvent::BatchFailed { mapping, .. }) = events.recv().await
            && mapping == stuck_mapping.uuid
        {
            break;
        }
    }
    for i in 0..300 {
        broker
            .publish(&healthy, format!("h{i}").as_bytes(), Default::default())
            .await;
    }
    // All 300 are through while the stuck batch is still being retried
    // (it needs 6 attempts of a 1 s timeout before it is dead-lettered).
    let mut healthy_done = 0;
    let mut stuck_dead = false;
    while healthy_done < 300 {
        match events.recv().await.unwrap() {
            EngineEvent::BatchSucceeded {
                mapping, messages, ..
            } if mapping != stuck_mapping.uuid => {
                healthy_done += messages;
            }
            EngineEvent::DeadLettered { mapping, .. } if mapping == stuck_mapping.uuid => {
                stuck_dead = true;
            }
            _ => {}
        }
    }
    eprintln!("300 healthy messages done; the stuck batch dead-lettered yet: {stuck_dead}");
    assert!(!stuck_dead, "the healthy mapping waited for the stuck one");
    // And the stuck one ends as Lambda's would: a dead letter with the timeout.
    loop {
        if let Ok(EngineEvent::DeadLettered {
            mapping, reason, ..
        }) = events.recv().await
            && mapping == stuck_mapping.uuid
        {
            assert!(reason.contains("maximumRedeliveries"), "{reason}");
            break;
        }
    }
    let letter = &running
        .control
        .store()
        .dead_letters(Some(stuck_mapping.uuid), 10)
        .unwrap()[0];
    assert_eq!(letter.attempts, 6);
    assert!(
        letter
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{:?}",
        letter.error
    );
    running.control.shutdown().await;
    broker.delete(&healthy).await;
    broker.delete(&stuck).await;
    broker.delete(&format!("{stuck}.dlq")).await;
}
