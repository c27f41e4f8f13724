//! What every instance shows of every mapping: its owner and that owner's
//! counts in `mappings list`, both instances in `instances`, its own
//! mappings in `/metrics`, and the counts going on after a takeover.

use super::instance;
use crate::common::*;
use std::process::Command;

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
