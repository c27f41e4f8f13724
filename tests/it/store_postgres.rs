//! `--store postgres://…`: mappings made through the API live in
//! PostgreSQL, not in the state directory; instances on one database share
//! the mappings out, each run by one of them, and take over from one that
//! stops; an instance without its database runs nothing.

use crate::common::*;
use std::process::{Command, Stdio};

fn serve(dir: &std::path::Path, state: &str, args: &[String]) -> KillOnDrop {
    let log = std::fs::File::create(dir.join(format!("serve-{state}.log"))).unwrap();
    KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(["serve", "--config"])
            .arg(dir.join("mqtrigger.toml"))
            .arg("--state")
            .arg(dir.join(state))
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary runs"),
    )
}

fn bodies(record: &std::path::Path) -> Vec<String> {
    read_events(record)
        .iter()
        .flat_map(messages)
        .map(|(body, _)| String::from_utf8_lossy(&body).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_made_through_the_api_lives_in_postgres_across_restarts() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let config_queue = unique("pg-config");
    let queue = unique("pg-api");
    broker.declare(&config_queue, Default::default()).await;
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    let setup = Setup::new(&config_queue);
    std::fs::write(dir.path().join("mqtrigger.toml"), setup.toml(&record)).unwrap();

    let api = free_port();
    let first = serve(
        dir.path(),
        "state-a",
        &[
            "--store".into(),
            db.url.clone(),
            "--api".into(),
            api.to_string(),
        ],
    );
    wait_listening(api).await;
    let endpoint = format!("http://{api}");
    let created = create_through_cli(&endpoint, &queue, &[]);
    let uuid = created["UUID"].as_str().unwrap().to_owned();
    broker.publish(&queue, b"before", Default::default()).await;
    wait_for("the first message", || !bodies(&record).is_empty()).await;

    drop(first);

    // Started again from another state directory, with the store named in
    // the config file this time: the API-made mapping is still there.
    let mut toml = std::fs::read_to_string(dir.path().join("mqtrigger.toml")).unwrap();
    toml.push_str(&format!("\n[store]\nurl = {:?}\n", db.url));
    std::fs::write(dir.path().join("mqtrigger.toml"), toml).unwrap();
    let api = free_port();
    let _again = serve(dir.path(), "state-c", &["--api".into(), api.to_string()]);
    wait_listening(api).await;
    let endpoint = format!("http://{api}");
    let table = stdout(&mappings_cli(&endpoint, &["list"]));
    assert!(table.contains(&uuid) && table.contains(&queue), "{table}");
    assert_eq!(
        table.matches(&config_queue).count(),
        1,
        "the config file's mapping is not made twice: {table}"
    );
    broker.publish(&queue, b"after", Default::default()).await;
    // "before" may come again too, marked redelivered: the first engine
    // was killed, maybe before its ack.
    wait_for("the message after the restart", || {
        bodies(&record).contains(&"after".to_owned())
    })
    .await;
    assert!(
        !dir.path().join("state-c").join("mqtrigger.db").exists(),
        "nothing in SQLite"
    );
}

fn postgres_outage(what: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/brokers");
    let status = Command::new(script)
        .args(["postgres-outage", what])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/brokers postgres-outage {what}");
}

/// Starts the outage cluster again even when the test fails half-way.
struct BringBack;

impl Drop for BringBack {
    fn drop(&mut self) {
        postgres_outage("start");
    }
}

fn delivered_bodies(running: &Running) -> std::collections::BTreeSet<String> {
    running
        .events()
        .iter()
        .flat_map(messages)
        .map(|(body, _)| String::from_utf8_lossy(&body).into_owned())
        .collect()
}

/// PostgreSQL stopped for 20 s under a flow: the engine's lock may be
/// another's now, so it stops consuming at once (the broker sees no
/// consumer) and nothing is invoked meanwhile; once the database is back it
/// takes its lock again and goes on by itself, and every message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_twenty_seconds_fences_the_engine_until_it_is_back() {
    let db = TestDatabase::on(&TestDatabase::outage_server());
    let broker = Broker::connect().await;
    let queue = unique("pg-outage");
    broker.declare(&queue, Default::default()).await;
    let mut setup = Setup::new(&queue);
    setup.extra_toml = format!("[store]\nurl = {:?}\n", db.url);
    let running = Running::start(&setup).await;
    let publish = async |from: usize, to: usize| {
        for i in from..to {
            broker
                .publish(&queue, format!("m{i}").as_bytes(), Default::default())
                .await;
        }
    };
    publish(0, 10).await;
    wait_for("the first ten", || delivered_bodies(&running).len() == 10).await;
    assert!(consumers_become(&broker, &queue, 1).await);

    let _bring_back = BringBack;
    postgres_outage("stop");
    assert!(
        consumers_become(&broker, &queue, 0).await,
        "the engine still consumes without its database"
    );
    publish(10, 20).await;
    tokio::time::sleep(std::time::Duration::from_secs(20)).await;
    assert_eq!(
        delivered_bodies(&running).len(),
        10,
        "nothing is invoked while the database is away"
    );
    assert_eq!(broker.ready(&queue).await, 10, "they wait in the queue");

    postgres_outage("start");
    wait_for("every message, once the database is back", || {
        delivered_bodies(&running).len() == 20
    })
    .await;
    assert!(
        consumers_become(&broker, &queue, 1).await,
        "consuming again"
    );
    running.control.shutdown().await;
}

/// Waits (a minute at most, as `wait_for`) for the broker to count `n`
/// consumers on the queue; whether it did.
async fn consumers_become(broker: &Broker, queue: &str, n: u32) -> bool {
    for _ in 0..600 {
        if broker.consumers(queue).await == n {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// `n` queues, and the first instance on `db` with a mapping to each (the
/// config file's and `n - 1` made through it); the setup starts others.
async fn first_instance(
    db: &TestDatabase,
    broker: &Broker,
    name: &str,
    n: usize,
) -> (Vec<String>, Setup, Running) {
    let queues: Vec<String> = (0..n).map(|i| unique(&format!("{name}-{i}"))).collect();
    for q in &queues {
        broker.declare(q, Default::default()).await;
    }
    let mut setup = Setup::new(&queues[0]);
    setup.extra_toml = format!("[store]\nurl = {:?}\nlease_seconds = 3\n", db.url);
    let first = Running::start(&setup).await;
    for q in &queues[1..] {
        first
            .control
            .create(beside("recorder", q, 1))
            .await
            .unwrap();
    }
    (queues, setup, first)
}

/// The mappings the instance may run now.
fn owned_by(running: &Running) -> std::collections::BTreeSet<uuid::Uuid> {
    running
        .control
        .store()
        .share()
        .unwrap()
        .borrow()
        .owned
        .clone()
}

fn owned(running: &Running) -> usize {
    owned_by(running).len()
}

/// Two instances on one database with four mappings: two each, one
/// consumer per queue, every message to one of them; one stops and the
/// other runs all four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_mappings_and_one_takes_over_when_the_other_stops() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let (queues, setup, a) = first_instance(&db, &broker, "pg-share", 4).await;
    let b = Running::start(&setup).await;
    assert_eq!(b.control.list().unwrap().len(), 4, "B sees what A made");
    wait_for("two mappings each", || owned(&a) == 2 && owned(&b) == 2).await;
    for q in &queues {
        assert!(consumers_become(&broker, q, 1).await, "one consumer on {q}");
        broker.publish(q, q.as_bytes(), Default::default()).await;
    }
    let both = || {
        let mut got: Vec<String> = [&a, &b]
            .iter()
            .flat_map(|r| r.events())
            .flat_map(|e| messages(&e))
            .map(|(body, _)| String::from_utf8_lossy(&body).into_owned())
            .collect();
        got.sort();
        got
    };
    let mut sorted = queues.clone();
    sorted.sort();
    wait_for("each message once", || both() == sorted).await;

    // A change made through A reaches B, which runs the mapping.
    let on_b = *owned_by(&b).iter().next().unwrap();
    let queue_on_b = a.control.get(on_b).unwrap().spec.queue().to_owned();
    a.control.disable(on_b).await.unwrap();
    let mut stopped = false;
    for _ in 0..600 {
        if broker.consumers(&queue_on_b).await == 0 {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        stopped,
        "B stopped consuming the mapping disabled through A"
    );
    assert_eq!(
        b.control.get(on_b).unwrap().state,
        mqtrigger::mapping::State::Disabled
    );
    a.control.enable(on_b).await.unwrap();
    for _ in 0..600 {
        if broker.consumers(&queue_on_b).await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        broker.consumers(&queue_on_b).await,
        1,
        "enabled through A, run by B"
    );

    a.control.shutdown().await;
    drop(a);
    wait_for("B runs all four", || owned(&b) == 4).await;
    for q in &queues {
        let body = format!("{q} after");
        broker.publish(q, body.as_bytes(), Default::default()).await;
        wait_for("B takes each message", || {
            b.events()
                .iter()
                .flat_map(messages)
                .any(|(got, _)| got == body.as_bytes())
        })
        .await;
        assert_eq!(broker.consumers(q).await, 1);
    }
    b.control.shutdown().await;
}

/// Three instances and 30 mappings: 10 ± 1 each; one stops and the other
/// two own 15 ± 1 each once it is gone, every queue with one consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_thirty_mappings_evenly_and_two_share_them_after_one_stops() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let (queues, setup, a) = first_instance(&db, &broker, "pg-thirty", 30).await;
    let b = Running::start(&setup).await;
    let c = Running::start(&setup).await;
    let near = |n: usize, share: usize| n.abs_diff(share) <= 1;
    wait_for("10 ± 1 each", || {
        let counts = [owned(&a), owned(&b), owned(&c)];
        counts.iter().sum::<usize>() == 30 && counts.iter().all(|n| near(*n, 10))
    })
    .await;
    for q in &queues {
        assert!(consumers_become(&broker, q, 1).await, "one consumer on {q}");
    }

    c.control.shutdown().await;
    drop(c);
    wait_for("15 ± 1 each on the two left", || {
        owned(&a) + owned(&b) == 30 && near(owned(&a), 15) && near(owned(&b), 15)
    })
    .await;
    for q in &queues {
        assert!(consumers_become(&broker, q, 1).await, "one consumer on {q}");
    }
    a.control.shutdown().await;
    b.control.shutdown().await;
    for q in &queues {
        broker.delete(q).await;
    }
}

/// `serve` named `name` on `db` (lease 3 s) with `setup`'s config, its
/// function recording to DIR/events-NAME.jsonl (returned), its log in
/// DIR/NAME.log.
fn instance(
    dir: &std::path::Path,
    name: &str,
    setup: &Setup,
    db: &TestDatabase,
    args: &[String],
) -> (KillOnDrop, std::path::PathBuf) {
    let record = dir.join(format!("events-{name}.jsonl"));
    std::fs::write(&record, b"").unwrap();
    let toml = format!(
        "{}\n[store]\nurl = {:?}\nlease_seconds = 3\n",
        setup.toml(&record),
        db.url
    );
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--state")
        .arg(dir.join(format!("state-{name}")))
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the binary runs");
    (KillOnDrop::new(child), record)
}

/// Two `serve` processes on one database, one mapping, a steady flow; the
/// owner is SIGKILLed half-way. The other takes the mapping over, every
/// message arrives, and a message that arrives twice is marked redelivered
/// the second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sigkilled_under_a_flow_is_taken_over_and_nothing_is_lost() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let queue = unique("pg-sigkill");
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(&queue);
    let (mut first, first_record) = instance(dir.path(), "a", &setup, &db, &[]);
    let (second, second_record) = instance(dir.path(), "b", &setup, &db, &[]);
    assert!(
        consumers_become(&broker, &queue, 1).await,
        "one instance consumes"
    );

    let total = 300;
    let publisher = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let broker = Broker::connect().await;
            for i in 0..total {
                broker
                    .publish(&queue, format!("m{i}").as_bytes(), Default::default())
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };
    let seen = |record: &std::path::Path| read_events(record).iter().flat_map(messages).count();
    wait_for("the flow to reach an instance", || {
        seen(&first_record) + seen(&second_record) >= 50
    })
    .await;
    let (owner_record, other_record) = if seen(&first_record) > 0 {
        first.kill().unwrap();
        (first_record, second_record)
    } else {
        drop(second);
        (second_record, first_record)
    };
    publisher.await.unwrap();
    let all = || -> Vec<(Vec<u8>, bool)> {
        [&owner_record, &other_record]
            .iter()
            .flat_map(|r| read_events(r))
            .flat_map(|e| messages(&e))
            .collect()
    };
    wait_for("every message, through the instance that took over", || {
        all()
            .iter()
            .map(|(b, _)| b.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == total
    })
    .await;
    assert!(seen(&other_record) > 0, "the other instance took over");
    let mut firsts = std::collections::BTreeSet::new();
    for (body, redelivered) in all() {
        if !firsts.insert(body.clone()) {
            assert!(
                redelivered,
                "{} came twice without `redelivered`",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

/// `mqtrigger instances --output json` asked of `endpoint`.
fn instances_json(endpoint: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args(["instances", "--endpoint", endpoint, "--output", "json"])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// Each mapping's (owner, received, succeeded, in flight), as `mappings
/// list --output json` on `endpoint` shows them.
fn listed(endpoint: &str) -> std::collections::BTreeMap<String, (String, u64, u64, u64)> {
    let all: serde_json::Value = serde_json::from_str(&stdout(&mappings_cli(
        endpoint,
        &["--output", "json", "list"],
    )))
    .unwrap();
    all["EventSourceMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let x = &m["Mqtrigger"];
            (
                m["UUID"].as_str().unwrap().to_owned(),
                (
                    x["Owner"].as_str().unwrap_or("none").to_owned(),
                    x["Received"].as_u64().unwrap(),
                    x["Succeeded"].as_u64().unwrap(),
                    x["InFlight"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Two `serve` processes with APIs on one database, a mapping each: asked
/// of either instance, `mappings list` shows every mapping with the
/// instance that runs it and the counts that instance made, `instances`
/// shows both and what each runs, and each `/metrics` shows its own
/// mappings under its `instance`. The owner of one is SIGKILLed: the other
/// takes it over and counts on from its counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_shows_every_mapping_with_its_owner_and_counts() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let queues = [unique("pg-owner-0"), unique("pg-owner-1")];
    for q in &queues {
        broker.declare(q, Default::default()).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(&queues[0]);
    let (apis, metrics) = ([free_port(), free_port()], [free_port(), free_port()]);
    let mut started = Vec::new();
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let args = [
            "--api".into(),
            apis[i].to_string(),
            "--metrics".into(),
            metrics[i].to_string(),
        ];
        started.push(instance(dir.path(), name, &setup, &db, &args));
        wait_listening(apis[i]).await;
    }
    let endpoints = apis.map(|a| format!("http://{a}"));
    // The second mapping, made through A; B shows it too.
    let created = create_through_cli(&endpoints[0], &queues[1], &[]);
    let made = created["UUID"].as_str().unwrap().to_owned();
    wait_for("B lists the mapping made through A", || {
        listed(&endpoints[1]).contains_key(&made)
    })
    .await;

    // Which instance is which process, as they say themselves.
    let mut ids = Vec::new();
    for (child, _) in &started {
        let pid = child.id();
        let mut id = None;
        wait_for("both instances alive, and one mapping each", || {
            let answer = instances_json(&endpoints[1]);
            let all = answer["instances"].as_array().unwrap().clone();
            id = all
                .iter()
                .find(|i| i["pid"].as_u64() == Some(pid as u64))
                .map(|i| i["id"].as_str().unwrap().to_owned());
            all.len() == 2 && all.iter().all(|i| i["owns"].as_array().unwrap().len() == 1)
        })
        .await;
        ids.push(id.unwrap());
    }
    let per_queue = 7;
    for q in &queues {
        for n in 0..per_queue {
            broker
                .publish(q, format!("{q}-{n}").as_bytes(), Default::default())
                .await;
        }
    }
    let seen = |record: &std::path::Path| read_events(record).iter().flat_map(messages).count();
    wait_for("every message", || {
        seen(&started[0].1) + seen(&started[1].1) == 2 * per_queue as usize
    })
    .await;
    // Who ran each mapping: the instance whose function got its queue's messages.
    let uuids: Vec<String> = listed(&endpoints[0]).into_keys().collect();
    let queue_of = |uuid: &str| {
        let m: serde_json::Value = serde_json::from_str(&stdout(&mappings_cli(
            &endpoints[0],
            &["--output", "json", "get", uuid],
        )))
        .unwrap();
        m["Queues"][0].as_str().unwrap().to_owned()
    };
    let mut runner = std::collections::BTreeMap::new();
    for uuid in &uuids {
        let queue = queue_of(uuid);
        let by = (0..2)
            .find(|i| {
                read_events(&started[*i].1)
                    .iter()
                    .flat_map(messages)
                    .any(|(body, _)| body.starts_with(queue.as_bytes()))
            })
            .unwrap();
        runner.insert(uuid.clone(), by);
    }
    assert_ne!(runner[&uuids[0]], runner[&uuids[1]], "one mapping each");
    for endpoint in &endpoints {
        wait_for("each owner's counts on every instance", || {
            let shown = listed(endpoint);
            uuids
                .iter()
                .all(|u| shown[u] == (ids[runner[u]].clone(), per_queue, per_queue, 0))
        })
        .await;
    }
    let table = stdout(&mappings_cli(&endpoints[1], &["list"]));
    assert!(table.lines().next().unwrap().contains("OWNER"), "{table}");
    for (i, metrics) in metrics.iter().enumerate() {
        let text = http_get(*metrics, "/metrics").await.unwrap();
        for uuid in &uuids {
            let line = format!(
                "mqtrigger_messages_succeeded_total{{mapping=\"{uuid}\",function=\"recorder\",queue=\"{}\",instance=\"{}\"}} {per_queue}",
                queue_of(uuid),
                ids[i]
            );
            assert_eq!(
                text.contains(&line),
                runner[uuid] == i,
                "instance {i}'s /metrics shows {uuid} if and only if it runs it:\n{text}"
            );
        }
    }

    // A is killed: B takes its mapping over and counts on from A's counts.
    let on_a = uuids.iter().find(|u| runner[*u] == 0).unwrap().clone();
    let queue_on_a = queue_of(&on_a);
    let (mut a, _) = started.remove(0);
    a.kill().unwrap();
    let _ = a.wait();
    wait_for("B runs both", || {
        let shown = listed(&endpoints[1]);
        uuids.iter().all(|u| shown[u].0 == ids[1])
    })
    .await;
    broker
        .publish(&queue_on_a, b"after the takeover", Default::default())
        .await;
    wait_for("the counts go on from A's", || {
        listed(&endpoints[1])[&on_a] == (ids[1].clone(), per_queue + 1, per_queue + 1, 0)
    })
    .await;
    let answer = instances_json(&endpoints[1]);
    assert_eq!(answer["instances"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["this"].as_str(), Some(ids[1].as_str()));
}

/// A plain HTTP/1.1 request to one instance's API (no signature: an API
/// without access keys on loopback takes any): the status and the JSON body.
async fn call(
    api: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let json = response.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(json).unwrap_or_default())
}

/// Two `serve` processes on one database, one mapping: 30 times, at the
/// same moment, BatchSize=N through A and MaximumBatchingWindowInSeconds=M
/// through B. Both answer 202, and after each pair either instance shows N
/// and M: a write through one instance never puts back what the other
/// changed (issue #26: 29 of 30 pairs lost one before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_changes_of_one_mapping_through_two_instances_at_once_are_both_kept() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let queue = unique("pg-race");
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(&queue);
    let apis = [free_port(), free_port()];
    let mut started = Vec::new();
    for (name, api) in ["a", "b"].into_iter().zip(apis) {
        started.push(instance(
            dir.path(),
            name,
            &setup,
            &db,
            &["--api".into(), api.to_string()],
        ));
        wait_listening(api).await;
    }
    let mappings = "/2015-03-31/event-source-mappings/";
    let (_, list) = call(apis[0], "GET", mappings, "").await;
    let uuid = list["EventSourceMappings"][0]["UUID"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{mappings}{uuid}");
    let mut lost = Vec::new();
    for n in 0..30u64 {
        let (batch, window) = (104 + n, 1 + n);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let put = |api: std::net::SocketAddr, body: String| {
            let (barrier, path) = (barrier.clone(), path.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                call(api, "PUT", &path, &body).await
            })
        };
        let through_a = put(apis[0], format!(r#"{{"BatchSize":{batch}}}"#));
        let through_b = put(
            apis[1],
            format!(r#"{{"MaximumBatchingWindowInSeconds":{window}}}"#),
        );
        let (a, b) = (through_a.await.unwrap(), through_b.await.unwrap());
        assert_eq!((a.0, b.0), (202, 202), "both accepted: {a:?} {b:?}");
        let mut shown = Vec::new();
        for api in apis {
            let (status, got) = call(api, "GET", &path, "").await;
            assert_eq!(status, 200, "{got}");
            shown.push((
                got["BatchSize"].as_u64(),
                got["MaximumBatchingWindowInSeconds"].as_u64(),
            ));
        }
        if shown.iter().any(|s| *s != (Some(batch), Some(window))) {
            lost.push(format!(
                "pair {n}: wanted BatchSize {batch} and window {window}; A and B show {shown:?}"
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of 30 pairs lost a change:\n{}",
        lost.len(),
        lost.join("\n")
    );
    // The last pair's changes reached the owner too: it settles Enabled
    // with both (the state a get shows once the restart is done).
    wait_for_state(apis[1], &path, "Enabled").await;
}

/// Waits (a minute at most) for the mapping at `path` to show `state`.
async fn wait_for_state(api: std::net::SocketAddr, path: &str, state: &str) {
    for _ in 0..600 {
        let (_, got) = call(api, "GET", path, "").await;
        if got["State"] == state {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the mapping at {path} never showed {state}");
}
