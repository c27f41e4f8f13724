//! The broker closes every connection while messages flow.

use super::*;
use mqtrigger::engine::EngineEvent;

/// Closes every connection of the user only this test uses (other tests
/// share the broker and must keep theirs): what `close_all_connections`
/// does to mqtrigger, without hurting them.
fn close_connections_of(user: &str) -> usize {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "-q",
            "list_connections",
            "pid",
            "user",
            "--no-table-headers",
        ])
        .output()
        .unwrap();
    let mut closed = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((pid, who)) = line.rsplit_once('\t') else {
            continue;
        };
        if who.trim() == user {
            let status = std::process::Command::new("rabbitmqctl")
                .args(["-q", "close_connection", pid, "mqtrigger fault test"])
                .status()
                .unwrap();
            assert!(status.success());
            closed += 1;
        }
    }
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_closing_the_connection_loses_nothing_and_shows_the_outage() {
    const TOTAL: usize = 3000;
    let queue = unique("fault-close");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    fill(&amqp_url(), &queue, TOTAL).await;
    let mut setup = Setup::new(&queue);
    setup.username = "mqt_fault".into();
    setup.password = "mqt_fault_secret".into();
    setup.batch_size = 50;
    setup.window_secs = Some(0);
    let running = Running::start(&setup).await;
    let mut events = running.control.subscribe();
    let uuid = running.mapping().uuid;

    let mut closes = 0;
    while tally(&running.events()).0.len() < TOTAL && closes < 3 {
        let seen = running.events().len();
        wait_for("progress", || running.events().len() > seen).await;
        // Once mqtrigger is connected (again), take its connection away.
        let mut tries = 0;
        while close_connections_of("mqt_fault") == 0 {
            tries += 1;
            assert!(tries < 600, "mqtrigger never reconnected");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        closes += 1;
        eprintln!(
            "close {closes}: {} messages invoked so far",
            tally(&running.events()).0.len()
        );
    }
    wait_for_all("every message at the function", TOTAL, || {
        tally(&running.events()).0.len()
    })
    .await;
    // The outage was visible on the mapping while it lasted.
    let mut saw_problem = false;
    while let Ok(e) = events.try_recv() {
        if let EngineEvent::MappingChanged(m) = e
            && m.uuid == uuid
            && m.last_processing_result
                .starts_with("PROBLEM: Connection error")
        {
            saw_problem = true;
        }
    }
    assert!(
        saw_problem,
        "LastProcessingResult showed the lost connection"
    );
    // A close after the last ack leaves the outage as the last result: one
    // more message, processed after it, shows the mapping healthy again.
    broker
        .publish(
            &queue,
            b"after the closes",
            lapin::BasicProperties::default(),
        )
        .await;
    wait_for("OK again", || {
        running.mapping().last_processing_result == "OK"
            && tally(&running.events())
                .0
                .contains_key(&b"after the closes"[..])
    })
    .await;
    assert_eq!(running.mapping().state, mqtrigger::mapping::State::Enabled);
    let (counts, unmarked) = tally(&running.events());
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!("{closes} closes: {TOTAL} messages, {duplicates} duplicates");
    assert_eq!(unmarked, 0);
    running.control.shutdown().await;
    let broker = Broker::connect().await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
}
