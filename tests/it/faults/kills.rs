//! SIGKILL of `mqtrigger serve` at random moments while 20,000 messages flow.

use super::*;
use std::time::Duration;

const TOTAL: usize = 20_000;
const KILLS: usize = 10;
const BATCH: u32 = 100;

/// A small xorshift: random kill times, reproducible from the printed seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

async fn kill_at_random(setup: Setup, url: &str) {
    let mut setup = setup;
    setup.batch_size = BATCH;
    setup.window_secs = Some(0);
    fill(url, &setup.queue, TOTAL).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    std::fs::write(dir.path().join("c.toml"), setup.toml(&record)).unwrap();

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!(
        "{}: {TOTAL} messages, {KILLS} kills, seed {seed}",
        setup.queue
    );
    for kill in 1..=KILLS {
        let mut child = spawn_serve(&dir.path().join("c.toml"), &dir.path().join("state"));
        // Each kill waits for its share of the flow (kill k once k/11 of
        // the messages reached the function), so the kills are spread over
        // the whole flow however fast it runs, and the last lands before
        // its end; then a random moment within a batch or two.
        let share = kill * TOTAL / (KILLS + 1);
        wait_for("the flow to reach this kill's share", || {
            tally(&read_events(&record)).0.len() >= share
        })
        .await;
        tokio::time::sleep(Duration::from_millis(next(&mut seed) % 300)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        eprintln!(
            "kill {kill}: {} invocations so far",
            read_events(&record).len()
        );
    }
    let child = spawn_serve(&dir.path().join("c.toml"), &dir.path().join("state"));
    wait_for_all("every message at the function", TOTAL, || {
        tally(&read_events(&record)).0.len()
    })
    .await;
    assert!(stop(child).success());

    let (counts, unmarked) = tally(&read_events(&record));
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "{}: {} distinct messages invoked, {duplicates} duplicates after {KILLS} kills",
        setup.queue,
        counts.len()
    );
    assert_eq!(counts.len(), TOTAL, "every message reached the function");
    if unmarked > 0 {
        // Which invocations saw a message again unmarked, and which saw it
        // first: consecutive ones point at a retry, distant ones at a kill.
        let events = read_events(&record);
        let mut first_seen = std::collections::HashMap::new();
        for (i, e) in events.iter().enumerate() {
            for (body, redelivered) in messages(e) {
                match first_seen.get(&body) {
                    Some(first) if !redelivered => {
                        eprintln!(
                            "unmarked duplicate {}: invocation {first}, again in {i} of {}",
                            String::from_utf8_lossy(&body),
                            events.len()
                        );
                        break;
                    }
                    Some(_) => {}
                    None => {
                        first_seen.insert(body, i);
                    }
                }
            }
        }
    }
    assert_eq!(unmarked, 0, "every duplicate was marked redelivered");
    // Only batches under way at a kill come twice: the one being invoked
    // (MaximumConcurrency 1), and the one before it if its ack had not
    // reached the broker yet (the next invocation starts while it is sent).
    assert!(
        duplicates <= KILLS * 2 * BATCH as usize,
        "{duplicates} duplicates: more than the batches in flight at {KILLS} kills"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_sigkills_lose_nothing_on_rabbitmq() {
    let queue = unique("fault-kill");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    kill_at_random(Setup::new(&queue), &amqp_url()).await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_sigkills_lose_nothing_on_activemq() {
    let queue = unique("fault-kill-amq");
    kill_at_random(Setup::activemq(&queue), &stomp_url()).await;
}
