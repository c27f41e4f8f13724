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
    // 4 s × 6 attempts: the stuck batch is with the function for 24 s or more,
    // several times what 300 healthy messages take even on a loaded machine.
    setup.extra_toml = format!(
        "[functions.hang]\ncommand = [{:?}, {behave:?}, \"hang\", {:?}]\ntimeout = 4\n",
        python(),
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
            ..Default::default()
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
    // (it needs 6 attempts of a 4 s timeout before it is dead-lettered).
    let started = std::time::Instant::now();
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
    eprintln!(
        "300 healthy messages done in {:?}; the stuck batch dead-lettered yet: {stuck_dead}",
        started.elapsed()
    );
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

fn behave(args: &[&str]) -> Vec<String> {
    let script = format!("{}/tests/functions/behave.py", env!("CARGO_MANIFEST_DIR"));
    let mut command = vec![python(), script];
    command.extend(args.iter().map(|a| a.to_string()));
    command
}

fn lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}

/// The batch outcomes the journal holds for a mapping, oldest first, once
/// there are `count` of them.
async fn batch_outcomes(running: &Running, mapping: uuid::Uuid, count: usize) -> Vec<String> {
    let store = running.control.store();
    wait_for("the journal's batch records", || {
        store.batches(mapping, 100).unwrap().len() >= count
    })
    .await;
    let mut batches = store.batches(mapping, 100).unwrap();
    batches.sort_by_key(|b| b.at);
    batches.into_iter().map(|b| b.outcome).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_crashes_half_way_gets_the_whole_batch_again() {
    let (recovers, doomed) = (unique("fault-half-ok"), unique("fault-half-dead"));
    let broker = Broker::connect().await;
    for queue in [&recovers, &doomed] {
        broker.declare(queue, Default::default()).await;
        for i in 0..4 {
            let body = format!("{queue}-{i}");
            broker
                .publish(queue, body.as_bytes(), Default::default())
                .await;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).display().to_string();
    // The Setup's mapping crashes twice, then handles the batch; the other
    // crashes every time.
    let mut setup = Setup::new(&recovers);
    setup.batch_size = 4;
    setup.retry_initial_ms = 100;
    setup.function_command = Some(behave(&["half", "2", &file("ok.n"), &file("ok.log")]));
    let doomed_command = behave(&["half", "99", &file("dead.n"), &file("dead.log")]);
    setup.extra_toml = format!("[functions.doomed]\ncommand = {doomed_command:?}\n");
    let running = Running::start(&setup).await;
    let uuid = running.mapping().uuid;
    let doomed_mapping = running
        .control
        .create(beside("doomed", &doomed, 4))
        .await
        .unwrap();

    let first_half = |n: u32| {
        (0..2)
            .map(|i| format!("{n} {recovers}-{i}"))
            .collect::<Vec<_>>()
    };
    let mut expected = [first_half(1), first_half(2)].concat();
    expected.extend((0..4).map(|i| format!("3 {recovers}-{i}")));
    wait_for("the recovering function's third attempt", || {
        lines(&dir.path().join("ok.log")).len() >= expected.len()
    })
    .await;
    eprintln!(
        "crashed twice half-way, then: {:?}",
        lines(&dir.path().join("ok.log"))
    );
    assert_eq!(
        lines(&dir.path().join("ok.log")),
        expected,
        "each attempt had the whole batch"
    );
    assert_eq!(
        batch_outcomes(&running, uuid, 3).await,
        ["FAILED", "FAILED", "OK"]
    );

    wait_for("the doomed batch in the journal", || {
        running
            .control
            .store()
            .dead_letters(Some(doomed_mapping.uuid), 10)
            .unwrap()
            .len()
            == 4
    })
    .await;
    let letters = running
        .control
        .store()
        .dead_letters(Some(doomed_mapping.uuid), 10)
        .unwrap();
    let crashes = lines(&dir.path().join("dead.log"));
    eprintln!(
        "crashed {} times half-way; dead letters: {}",
        crashes.len() / 2,
        letters.len()
    );
    assert_eq!(
        crashes.len(),
        6 * 2,
        "six attempts, each crashing after two messages"
    );
    for letter in &letters {
        assert_eq!(letter.attempts, 6);
        let error = letter.error.as_deref().unwrap_or_default();
        assert!(error.contains("(SIGKILL)"), "{error}");
    }
    // The journal has them first; the broker's dead-letter queue a moment later.
    let mut in_dlq = Vec::new();
    for _ in 0..100 {
        in_dlq.extend(broker.drain(&format!("{doomed}.dlq")).await);
        if in_dlq.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(in_dlq.len(), 4, "the broker holds the dead letters too");

    for m in running.control.list().unwrap() {
        assert_eq!(m.state, mqtrigger::mapping::State::Enabled, "{m:?}");
    }
    running.control.shutdown().await;
    assert_eq!(broker.ready(&recovers).await, 0);
    assert_eq!(broker.ready(&doomed).await, 0);
    for queue in [&recovers, &doomed, &format!("{doomed}.dlq")] {
        broker.delete(queue).await;
    }
}

/// A Lambda endpoint that reads each request whole, then answers `answer`
/// and hangs up: what a broken proxy or the wrong service on the port does.
async fn broken_lambda(answer: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length: usize = text[..head_end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if request.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_retried_then_dead_lettered_and_others_keep_going() {
    // What each broken endpoint sends back, and what the dead letter must say.
    let answers: [(&str, &'static [u8], &str); 3] = [
        (
            "truncated",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{\"statusCode\":",
            "127.0.0.1",
        ),
        ("not-http", b"SSH-2.0-OpenSSH_9.2\r\n", "127.0.0.1"),
        (
            "binary-error",
            b"HTTP/1.1 200 OK\r\nx-amz-function-error: Unhandled\r\ncontent-length: 7\r\n\r\n\xff\xfe\x00oops",
            "oops",
        ),
    ];
    let healthy = unique("fault-malformed-ok");
    let broker = Broker::connect().await;
    broker.declare(&healthy, Default::default()).await;
    let mut setup = Setup::new(&healthy);
    setup.retry_initial_ms = 100;
    // And a function whose successful output is neither JSON nor UTF-8:
    // Lambda does not judge a successful answer, and neither do we.
    setup.function_command = Some(behave(&["garbage"]));
    for (name, answer, _) in &answers {
        setup.extra_toml.push_str(&format!(
            "[functions.{name}]\nlambda = \"{name}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n",
            broken_lambda(answer).await
        ));
    }
    let running = Running::start(&setup).await;
    let healthy_uuid = running.mapping().uuid;
    let mut broken = Vec::new();
    for (name, _, said) in &answers {
        let queue = unique(&format!("fault-{name}"));
        broker.declare(&queue, Default::default()).await;
        let mapping = running
            .control
            .create(beside(name, &queue, 10))
            .await
            .unwrap();
        broker
            .publish(&queue, name.as_bytes(), Default::default())
            .await;
        broken.push((queue, mapping.uuid, *said));
    }
    for i in 0..200 {
        broker
            .publish(&healthy, format!("h{i}").as_bytes(), Default::default())
            .await;
    }
    wait_for("the healthy mapping's 200 messages", || {
        let batches = running.control.store().batches(healthy_uuid, 1000).unwrap();
        batches
            .iter()
            .filter(|b| b.outcome == "OK")
            .map(|b| b.messages)
            .sum::<usize>()
            == 200
    })
    .await;
    for (queue, uuid, said) in &broken {
        // Journaled first, then moved: the queue has it once the journal says so.
        wait_for("a dead letter, moved", || {
            running
                .control
                .store()
                .dead_letters(Some(*uuid), 10)
                .unwrap()
                .iter()
                .any(|d| d.moved)
        })
        .await;
        let letter = &running
            .control
            .store()
            .dead_letters(Some(*uuid), 10)
            .unwrap()[0];
        let error = letter.error.clone().unwrap_or_default();
        eprintln!(
            "{queue}: dead-lettered after {} attempts: {error}",
            letter.attempts
        );
        assert_eq!(letter.attempts, 6, "{queue}");
        assert!(error.contains(said), "{queue}: {error}");
        assert_eq!(broker.drain(&format!("{queue}.dlq")).await.len(), 1);
        let mapping = running.control.get(*uuid).unwrap();
        assert_eq!(
            mapping.state,
            mqtrigger::mapping::State::Enabled,
            "{mapping:?}"
        );
    }
    let healthy_letters = running.control.store().dead_letters(Some(healthy_uuid), 10);
    assert!(
        healthy_letters.unwrap().is_empty(),
        "garbage output is a success"
    );
    running.control.shutdown().await;
    broker.delete(&healthy).await;
    for (queue, ..) in &broken {
        broker.delete(queue).await;
        broker.delete(&format!("{queue}.dlq")).await;
    }
}
