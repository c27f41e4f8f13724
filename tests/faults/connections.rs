//! The broker closes every connection while messages flow.

use super::*;
use mqtrigger::engine::EngineEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_closing_all_connections_loses_nothing_and_shows_the_outage() {
    const TOTAL: usize = 3000;
    let queue = unique("fault-close");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    fill(&amqp_url(), &queue, TOTAL).await;
    let mut setup = Setup::new(&queue);
    setup.batch_size = 50;
    setup.window_secs = Some(0);
    let running = Running::start(&setup).await;
    let mut events = running.control.subscribe();
    let uuid = running.mapping().uuid;

    let mut closes = 0;
    while tally(&running.events()).0.len() < TOTAL && closes < 3 {
        let seen = running.events().len();
        wait_for("progress", || running.events().len() > seen).await;
        let out = std::process::Command::new("rabbitmqctl")
            .args(["-q", "close_all_connections", "mqtrigger fault test"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        closes += 1;
        eprintln!(
            "close {closes}: {} messages invoked so far",
            tally(&running.events()).0.len()
        );
    }
    wait_for("every message at the function", || {
        tally(&running.events()).0.len() == TOTAL
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
    wait_for("OK again", || {
        running.mapping().last_processing_result == "OK"
    })
    .await;
    assert_eq!(running.mapping().state, mqtrigger::mapping::State::Enabled);
    let (counts, unmarked) = tally(&running.events());
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!("{closes} closes: {TOTAL} messages, {duplicates} duplicates");
    assert_eq!(unmarked, 0);
    running.control.shutdown().await;
    // The broker broadcasts close_all_connections to every connection,
    // the test's own included: use a fresh one to look.
    let broker = Broker::connect().await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
}
