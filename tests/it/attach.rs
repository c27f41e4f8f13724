//! A console attached to a running `serve` (`console --endpoint`): the
//! service's /mqtrigger/v1 API signed by botocore (a SigV4 signer nobody
//! here wrote) and by the console's own client (`api::remote::Remote`),
//! against a real `serve` on the real broker.

use crate::common::*;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use mqtrigger::api::remote::Remote;
use mqtrigger::console::driver::Driver;
use mqtrigger::engine::{EngineEvent, EngineStats, FeedItem, Kind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const KEY_ID: &str = API_KEY_ID;
const SECRET: &str = API_SECRET;

fn setup(queue: &str) -> Setup {
    Setup {
        batch_size: 5,
        ..Setup::new(queue)
    }
    .signed()
}

/// A signed `serve --api` on a declared queue of its own, in a directory of
/// its own: the queue, the broker, the directory, the address, the process.
async fn signed_service(name: &str) -> (String, Broker, tempfile::TempDir, SocketAddr, KillOnDrop) {
    let queue = unique(name);
    let broker = Broker::connect().await;
    broker.declare(&queue, FieldTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    write_service_config(dir.path(), &setup(&queue));
    let addr = free_port();
    let service = serve_api(dir.path(), addr, &[]);
    wait_listening(addr).await;
    (queue, broker, dir, addr, service)
}

/// A request signed by botocore with `secret` (None: not signed): the
/// status, the error type header (or the first line), and the body.
fn botocore(method: &str, url: &str, secret: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut command = Command::new(python());
    command
        .arg(format!(
            "{}/tests/functions/signed.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([method, url])
        .args(body)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", secret.unwrap_or("unused"));
    if secret.is_none() {
        command.env("UNSIGNED", "1");
    }
    let out = command.output().expect("python3 runs");
    assert!(
        out.status.success(),
        "signed.py failed (botocore comes with the AWS CLI: scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, rest) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap(), rest.to_owned())
}

fn remote(addr: SocketAddr, secret: &str) -> Remote {
    let credentials = Credentials::new(KEY_ID, secret, None, None, "test");
    Remote::signing_with(
        &format!("http://{addr}"),
        SharedCredentialsProvider::new(credentials),
        "us-east-1".into(),
    )
    .unwrap()
}

/// The next item of a followed stream, within a minute.
async fn next(items: &mut tokio::sync::mpsc::Receiver<FeedItem>) -> FeedItem {
    tokio::time::timeout(Duration::from_secs(60), items.recv())
        .await
        .expect("an item within a minute")
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_api_answers_signed_requests_only_and_readonly_refuses_changes() {
    let (queue, broker, dir, addr, service) = signed_service("attach-api").await;
    let url = |path: &str| format!("http://{addr}/mqtrigger/v1/{path}");

    let (status, body) = botocore("GET", &url("snapshot"), None, None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.starts_with("MissingAuthenticationTokenException"),
        "{body}"
    );
    let (status, body) = botocore("GET", &url("snapshot"), Some("not-the-secret"), None);
    assert_eq!(status, 403, "{body}");
    assert!(body.starts_with("InvalidSignatureException"), "{body}");

    let (status, body) = botocore("GET", &url("snapshot"), Some(SECRET), None);
    assert_eq!(status, 200, "{body}");
    let snapshot: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mapping = &snapshot["mappings"][0];
    assert_eq!(mapping["Queues"][0], queue.as_str());
    let uuid = mapping["UUID"].as_str().unwrap().to_owned();
    assert_eq!(snapshot["stats"]["mappings"][&uuid]["succeeded"], 0);

    // The stream starts with a snapshot.
    let (status, body) = botocore("GET", &url("events"), Some(SECRET), None);
    assert_eq!(status, 200, "{body}");
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("event: synced"), "{body}");
    let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
    let first: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(first["Synced"]["mappings"][0]["UUID"], uuid.as_str());

    let (status, body) = botocore("GET", &url("service"), Some(SECRET), None);
    assert_eq!(status, 200);
    let service_info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(service_info["readonly"], false);
    assert_eq!(service_info["functions"][0], "recorder");
    assert!(
        !body.contains("guest"),
        "the service tells names, never a secret's value: {body}"
    );
    drop(service);

    // The same service, read-only: it reads, and refuses every change.
    let service = serve_api(dir.path(), addr, &["--readonly"]);
    wait_listening(addr).await;
    let (status, body) = botocore("GET", &url("service"), Some(SECRET), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"readonly\":true"), "{body}");
    let replay = url(&format!("mappings/{uuid}/replay"));
    let (status, body) = botocore(
        "POST",
        &replay,
        Some(SECRET),
        Some("{\"eventSource\":\"aws:rmq\"}"),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.starts_with("AccessDeniedException"), "{body}");
    assert!(body.contains("--readonly"), "{body}");
    let client = remote(addr, SECRET);
    let described = client.describe().await.unwrap();
    assert!(described.readonly);
    let refused = client.disable(uuid.parse().unwrap()).await.unwrap_err();
    assert_eq!(refused.kind(), Kind::ReadOnly, "{refused:?}");
    drop(service);
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_client_follows_serve_exactly_and_through_a_restart() {
    let (queue, broker, dir, addr, service) = signed_service("attach-follow").await;
    let client = remote(addr, SECRET);
    let described = client.describe().await.unwrap();
    assert_eq!(described.endpoint, Some(format!("http://{addr}")));
    assert!(!described.readonly);

    let mut items = client.follow();
    // A second console watching the same service.
    let mut other = remote(addr, SECRET).follow();
    let FeedItem::Synced(snapshot) = next(&mut items).await else {
        panic!("a snapshot first");
    };
    let uuid = snapshot.mappings[0].uuid;
    let mut stats = snapshot.stats;
    for i in 0..12 {
        let body = format!("m{i}");
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    // Applied as the console applies them, the events add up to the service's counts.
    let mut started = HashMap::new();
    let mut succeeded = Vec::new();
    while stats.of(uuid).succeeded < 12 {
        match next(&mut items).await {
            FeedItem::Event(event) => {
                stats.apply(&event);
                match event {
                    EngineEvent::BatchStarted { batch, event, .. } => {
                        let parsed: serde_json::Value = serde_json::from_slice(&event).unwrap();
                        assert_eq!(parsed["eventSource"], "aws:rmq");
                        started.insert(batch, parsed);
                    }
                    EngineEvent::BatchSucceeded { batch, .. } => succeeded.push(batch),
                    _ => {}
                }
            }
            FeedItem::Synced(s) => stats = s.stats,
            other => panic!("nothing else was asked for: {other:?}"),
        }
    }
    assert!(!succeeded.is_empty());
    for batch in &succeeded {
        assert!(
            started.contains_key(batch),
            "batch {batch} succeeded unstarted"
        );
    }
    let (_, body) = botocore(
        "GET",
        &format!("http://{addr}/mqtrigger/v1/snapshot"),
        Some(SECRET),
        None,
    );
    let theirs: mqtrigger::engine::Snapshot = serde_json::from_str(&body).unwrap();
    assert_eq!(
        theirs.stats.of(uuid),
        stats.of(uuid),
        "the copy is the service's"
    );
    let mut others = EngineStats::default();
    while others.of(uuid).succeeded < 12 {
        match next(&mut other).await {
            FeedItem::Synced(s) => others = s.stats,
            FeedItem::Event(e) => others.apply(&e),
            _ => {}
        }
    }
    assert_eq!(
        others.of(uuid),
        stats.of(uuid),
        "two consoles see the same numbers"
    );

    let v1 = |path: &str| format!("http://{addr}/mqtrigger/v1/mappings/{uuid}/{path}");
    let (status, body) = botocore("GET", &v1("batches"), Some(SECRET), None);
    assert_eq!(status, 200, "{body}");
    let batches: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let messages: u64 = batches
        .iter()
        .map(|b| b["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(messages, 12, "{body}");
    assert!(batches.iter().all(|b| b["outcome"] == "Ok"), "{body}");
    let dry_run = serde_json::json!({
        "FilterCriteria": { "Filters": [
            { "Pattern": r#"{"data":{"amount":[{"numeric":[">",100]}]}}"# }
        ] },
        "Bodies": ["eyJhbW91bnQiOiAxNTB9", "eyJhbW91bnQiOiA1fQ=="],
    });
    let (status, body) = botocore(
        "POST",
        &v1("filter-dry-run"),
        Some(SECRET),
        Some(&dry_run.to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let tried: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        tried,
        serde_json::json!([
            { "source": "body 1", "passed_by": 1 },
            { "source": "body 2", "passed_by": null },
        ]),
        "{{\"amount\": 150}} passes, {{\"amount\": 5}} does not"
    );

    // A change through the client is the service's, as the AWS CLI reads it.
    client.disable(uuid).await.unwrap();
    wait_for("the AWS CLI to read Disabled", || {
        aws_cli_state(addr, &uuid.to_string()) == "Disabled"
    })
    .await;

    // The service goes away: the follower is told so, then gets a fresh start.
    stop(service);
    let lost = loop {
        match next(&mut items).await {
            FeedItem::Lost(why) => break why,
            FeedItem::Event(_) | FeedItem::DeadLetters(_) => {}
            FeedItem::Synced(_) => panic!("no snapshot while the service stops"),
        }
    };
    assert!(lost.contains(&addr.to_string()), "{lost}");
    let service = serve_api(dir.path(), addr, &[]);
    let back = loop {
        match next(&mut items).await {
            FeedItem::Synced(s) => break s,
            FeedItem::Lost(_) => {}
            other => panic!("a snapshot comes first on a new stream: {other:?}"),
        }
    };
    // A new engine's counts start over; the mapping kept its state.
    assert_eq!(back.stats.of(uuid), EngineStats::default().of(uuid));
    assert_eq!(back.mappings[0].uuid, uuid);
    assert_eq!(back.mappings[0].state.to_string(), "Disabled");
    drop(service);
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_url_a_wrong_secret_or_another_server_is_a_clear_message() {
    let nobody = free_port();
    let e = remote(nobody, SECRET)
        .describe()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("cannot reach mqtrigger at http://{nobody}")),
        "{e}"
    );

    // Something else answers HTTP there.
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_addr = other.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/mqtrigger/v1/service",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({
                    "service": "mqtrigger", "version": "9.0.0", "protocol": 99,
                    "readonly": false, "max_redeliveries": 5,
                    "brokers": [], "functions": [], "secrets": []
                }))
            }),
        )
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "<html>nope</html>") });
    tokio::spawn(async move { axum::serve(other, app).await });
    let e = remote(other_addr, SECRET)
        .describe()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("runs mqtrigger 9.0.0 (console protocol 99)"),
        "{e}"
    );
    assert!(e.contains("use the same version on both sides"), "{e}");
    let e = remote(other_addr, SECRET)
        .enable(uuid::Uuid::new_v4())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not an mqtrigger API"), "{e}");

    // An mqtrigger from before /mqtrigger/v1: its fallback answers.
    let old = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let old_addr = old.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            [("x-amzn-ErrorType", "ResourceNotFoundException")],
            axum::Json(serde_json::json!({
                "Type": "User",
                "message": "mqtrigger serves only Lambda's event-source-mappings API"
            })),
        )
    });
    tokio::spawn(async move { axum::serve(old, app).await });
    let e = remote(old_addr, SECRET)
        .describe()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("an older version: upgrade it"), "{e}");

    let (queue, broker, _dir, addr, _service) = signed_service("attach-refused").await;
    let e = remote(addr, "not-the-secret")
        .describe()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused this console's signature"), "{e}");
    assert!(e.contains("[api] access_keys"), "{e}");
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_console_gets_the_dead_letters_and_replays_and_republishes_them() {
    let (queue, broker, dir, addr, _service) = signed_service("attach-dlq").await;
    let client = remote(addr, SECRET);
    let mut items = client.follow();
    let FeedItem::Synced(snapshot) = next(&mut items).await else {
        panic!("a snapshot first");
    };
    let uuid = snapshot.mappings[0].uuid;
    broker
        .publish(&queue, b"please fail", BasicProperties::default())
        .await;
    let letter = loop {
        if let FeedItem::DeadLetters(letters) = next(&mut items).await
            && let Some(l) = letters.into_iter().find(|l| l.mapping == uuid)
        {
            break l;
        }
    };
    assert_eq!(letter.body, b"please fail");
    assert_eq!(letter.attempts, 6);

    let recorded = || read_events(&dir.path().join("events.jsonl")).len();
    let before = recorded();
    // The recorder fails bodies with "fail" in them: the replay says so.
    let replayed = client.replay(uuid, letter.id).await;
    assert_eq!(
        recorded(),
        before + 1,
        "the function got the dead letter's record: {replayed:?}"
    );

    client.republish(uuid, letter.id).await.unwrap();
    let again = loop {
        if let FeedItem::DeadLetters(letters) = next(&mut items).await {
            let mine: Vec<_> = letters.into_iter().filter(|l| l.mapping == uuid).collect();
            if mine.len() == 2 {
                break mine;
            }
        }
    };
    assert!(again.iter().all(|l| l.body == b"please fail"), "{again:?}");
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}
