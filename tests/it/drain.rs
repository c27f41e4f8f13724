//! A poison flood (#29): `mqtrigger drain` takes a paused mapping's queue
//! into a file of Lambda records without invoking its function, losing
//! nothing when it is SIGKILLed, and `mqtrigger publish --from` puts the
//! file back, resuming after a kill where it stopped.

use crate::common::*;
use lapin::types::FieldTable;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const FLOOD: usize = 1000;
/// The drain's group (`cli::drain::GROUP`): a kill between its sync and
/// its ack leaves at most this many messages in the file and the queue both.
const GROUP: usize = 50;

/// `mqtrigger ARGS` with no AWS credentials of the machine's (the loopback
/// API takes any).
fn mqtrigger(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqtrigger"));
    command
        .args(args)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("MQTRIGGER_ENDPOINT");
    command
}

/// `mqtrigger drain` of the service's mapping into `to`.
fn drain(dir: &Path, endpoint: &str, uuid: &str, to: &Path) -> Command {
    let config = dir.join("mqtrigger.toml");
    let to = to.to_str().unwrap();
    let mut command = mqtrigger(&[
        "drain",
        "--mapping",
        uuid,
        "--to",
        to,
        "--endpoint",
        endpoint,
    ]);
    command.arg("--config").arg(config);
    command
}

/// `mqtrigger publish --from FILE` to `queue` on `broker`.
fn publish_from(file: &Path, broker: &str, queue: &str) -> Command {
    let file = file.to_str().unwrap();
    mqtrigger(&[
        "publish", "--from", file, "--broker", broker, "--queue", queue,
    ])
}

/// A command run to its end, which must succeed: its standard error.
fn succeeds(command: &mut Command) -> String {
    let out = run_to_its_end(command, Duration::from_secs(120)).unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

fn lines_in(file: &Path) -> usize {
    std::fs::read(file)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// Each line's record, in the file's order.
fn records(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["record"].clone())
        .collect()
}

fn body(record: &serde_json::Value) -> String {
    String::from_utf8(mqtrigger::event::record_body(record)).unwrap()
}

/// A number from 1 to `n`, different each run: where the kill lands.
fn somewhere_in(n: usize) -> usize {
    (uuid::Uuid::new_v4().as_u128() % n as u128) as usize + 1
}

/// The service's only mapping, by `mqtrigger mappings list`.
fn only_mapping(endpoint: &str) -> String {
    let listed = stdout(&mappings_cli(endpoint, &["--output", "json", "list"]));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    listed["EventSourceMappings"][0]["UUID"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs `command` until `progress()` reaches a random point in 1..=`upto`,
/// then SIGKILLs it: the progress at the kill.
async fn kill_midway(
    command: &mut Command,
    upto: usize,
    progress: impl Fn() -> usize,
) -> (usize, usize) {
    let at = somewhere_in(upto);
    let mut child = KillOnDrop::new(
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let limit = std::time::Instant::now() + Duration::from_secs(90);
    while progress() < at {
        assert!(
            child.try_wait().unwrap().is_none(),
            "it ended before {at} (at {})",
            progress()
        );
        assert!(std::time::Instant::now() < limit, "stuck at {}", progress());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    (at, progress())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_drain_loses_nothing_and_publish_from_puts_it_back_on_rabbitmq() {
    let broker = Broker::connect().await;
    let queue = unique("drain");
    broker.declare(&queue, FieldTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    write_service_config(dir.path(), &Setup::new(&queue));
    let addr = free_port();
    let service = serve_api(dir.path(), addr, &[]);
    wait_listening(addr).await;
    let endpoint = format!("http://{addr}");
    let uuid = only_mapping(&endpoint);
    let file = dir.path().join("flood.jsonl");

    // A consuming mapping is refused, with the fix.
    let refused = run_to_its_end(
        &mut drain(dir.path(), &endpoint, &uuid, &file),
        Duration::from_secs(60),
    )
    .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        said.contains(&format!(
            "mapping {uuid} is consuming: pause it first (mqtrigger mappings pause {uuid})"
        )),
        "{said}"
    );

    stdout(&mappings_cli(&endpoint, &["pause", &uuid]));
    let limit = std::time::Instant::now() + Duration::from_secs(30);
    while broker.consumers(&queue).await > 0 {
        assert!(
            std::time::Instant::now() < limit,
            "the paused consumer went"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let published: BTreeSet<String> = (0..FLOOD).map(|i| format!("poison-{i:04}")).collect();
    let mut publisher = mqtrigger::publish::Publisher::connect(
        &amqp_url(),
        &queue,
        &mqtrigger::publish::Message::default(),
        false,
    )
    .await
    .unwrap();
    for body in &published {
        publisher.send(body.as_bytes()).await.unwrap();
    }
    publisher.finish().await.unwrap();

    // Killed once it wrote some lines, at a different point each run.
    let (aimed, at_kill) = kill_midway(
        &mut drain(dir.path(), &endpoint, &uuid, &file),
        FLOOD - GROUP,
        || lines_in(&file),
    )
    .await;
    let said = succeeds(&mut drain(dir.path(), &endpoint, &uuid, &file));
    assert!(said.contains(&format!("from {queue} to")), "{said}");

    let drained = records(&file);
    let left: Vec<String> = broker
        .drain(&queue)
        .await
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for record in &drained {
        assert!(record["basicProperties"].is_object(), "an aws:rmq record");
        *seen.entry(body(record)).or_default() += 1;
    }
    let twice = drained.len() - seen.len();
    eprintln!(
        "killed at {at_kill} lines (aimed at {aimed}); {} lines in all, {twice} duplicate(s), {} left in the queue",
        drained.len(),
        left.len()
    );
    let mut all: BTreeSet<String> = seen.keys().cloned().collect();
    all.extend(left.iter().cloned());
    assert_eq!(all, published, "none missing, none made up");
    assert!(left.is_empty(), "the second drain took the rest: {left:?}");
    assert!(twice <= GROUP, "only the group at the kill: {twice}");
    let recorded = std::fs::read(dir.path().join("events.jsonl")).unwrap();
    assert!(recorded.is_empty(), "the function was never invoked");

    // Put back, killed half-way and run again.
    let other = unique("drain-back");
    let progress = dir.path().join("flood.jsonl.published");
    let (_, noted) = kill_midway(
        &mut publish_from(&file, &amqp_url(), &other),
        FLOOD / 2,
        || {
            std::fs::read_to_string(&progress)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0)
        },
    )
    .await;
    let said = succeeds(&mut publish_from(&file, &amqp_url(), &other));
    assert!(
        said.contains(&format!(
            "published {} message(s) from {} to {other}",
            drained.len() - noted,
            file.display()
        )),
        "{said}"
    );
    let back = broker.drain(&other).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for m in &back {
        *counts
            .entry(String::from_utf8_lossy(&m.data).into_owned())
            .or_default() += 1;
        let headers = m.properties.headers().as_ref().unwrap();
        assert!(headers.inner().contains_key("x-mqtrigger-republished"));
    }
    eprintln!(
        "publish killed after {noted} lines; {} messages put back for {} lines",
        back.len(),
        drained.len()
    );
    assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), published);
    assert!(
        (drained.len()..=drained.len() + 1).contains(&back.len()),
        "each line once, but the one confirmed at the kill: {} for {}",
        back.len(),
        drained.len()
    );
    let said = succeeds(&mut publish_from(&file, &amqp_url(), &other));
    assert!(said.contains("published 0 message(s)"), "{said}");
    assert_eq!(broker.ready(&other).await, 0);

    stop(service);
    broker.delete(&queue).await;
    broker.delete(&other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_takes_activemq_records_and_publish_from_sends_them_back() {
    const SENT: usize = 100;
    let queue = unique("amq-drain");
    let dir = tempfile::tempdir().unwrap();
    write_service_config(dir.path(), &Setup::activemq(&queue));
    let addr = free_port();
    let service = serve_api(dir.path(), addr, &[]);
    wait_listening(addr).await;
    let endpoint = format!("http://{addr}");
    let uuid = only_mapping(&endpoint);
    stdout(&mappings_cli(&endpoint, &["pause", &uuid]));
    // The session ends once it hears of the pause; nothing waits in it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut client = Stomp::connect("admin", "admin").await;
    let sent: BTreeSet<String> = (0..SENT).map(|i| format!("amq-poison-{i:03}")).collect();
    for body in &sent {
        let headers = [("persistent", "true"), ("tenant", "acme")];
        client.send(&queue, &headers, body.as_bytes(), false).await;
    }

    // Thirty, then the rest, appended to the same file.
    let file: PathBuf = dir.path().join("amq.jsonl");
    let said = succeeds(drain(dir.path(), &endpoint, &uuid, &file).args(["--max", "30"]));
    assert!(
        said.contains(&format!("drained 30 message(s) from {queue}")),
        "{said}"
    );
    let said = succeeds(&mut drain(dir.path(), &endpoint, &uuid, &file));
    assert!(
        said.contains(&format!(
            "drained {} message(s) from {queue} to {}",
            SENT - 30,
            file.display()
        )),
        "{said}"
    );
    let drained = records(&file);
    assert_eq!(drained.len(), SENT);
    let mut bodies = BTreeSet::new();
    for record in &drained {
        let id = record["messageID"].as_str().unwrap_or_default();
        assert!(id.starts_with("ID:"), "an aws:mq record: {record}");
        assert_eq!(record["properties"]["tenant"], "acme", "{record}");
        bodies.insert(body(record));
    }
    assert_eq!(bodies, sent);
    let left = client.take(&queue, Duration::from_secs(2), |_| true).await;
    assert!(left.is_empty(), "{} left in the queue", left.len());
    let recorded = std::fs::read(dir.path().join("events.jsonl")).unwrap();
    assert!(recorded.is_empty(), "the function was never invoked");

    let other = unique("amq-drain-back");
    succeeds(&mut publish_from(&file, &stomp_url(), &other));
    let back = client.take(&other, Duration::from_secs(2), |_| true).await;
    let ids: BTreeSet<&str> = drained
        .iter()
        .map(|r| r["messageID"].as_str().unwrap())
        .collect();
    let mut bodies = BTreeSet::new();
    for frame in &back {
        assert_eq!(frame.get("tenant"), Some("acme"));
        let original = frame.get("x-mqtrigger-original-message-id").unwrap();
        assert!(ids.contains(original), "{original}");
        bodies.insert(String::from_utf8_lossy(&frame.body).into_owned());
    }
    assert_eq!(back.len(), SENT);
    assert_eq!(bodies, sent);
    stop(service);
}
