//! `mqtrigger serve --api --metrics`, the `mqtrigger mappings` CLI, and
//! BASIC_AUTH secrets read from a Secrets Manager endpoint: the binary as a
//! user runs it.

use crate::common::*;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `serve` with its stderr (the log) kept in `log`.
fn serve(dir: &std::path::Path, args: &[String]) -> KillOnDrop {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(["serve", "--config"])
            .arg(dir.join("mqtrigger.toml"))
            .arg("--state")
            .arg(dir.join("state"))
            .args(args)
            .env("RUST_LOG", "debug,lapin=debug,aws=debug,hyper=info,h2=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary runs"),
    )
}

fn write_config(dir: &std::path::Path, setup: &Setup) -> std::path::PathBuf {
    let record = dir.join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    std::fs::write(dir.join("mqtrigger.toml"), setup.toml(&record)).unwrap();
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mappings_cli_and_the_metrics_endpoint_work_against_serve() {
    let broker = Broker::connect().await;
    let config_queue = unique("cp-config");
    let queue = unique("cp-cli");
    broker.declare(&config_queue, Default::default()).await;
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let record = write_config(dir.path(), &Setup::new(&config_queue));
    let (api, metrics) = (free_port(), free_port());
    let server = serve(
        dir.path(),
        &[
            "--api".into(),
            api.to_string(),
            "--metrics".into(),
            metrics.to_string(),
        ],
    );
    wait_listening(api).await;
    let endpoint = format!("http://{api}");

    let out = mappings_cli(&endpoint, &["list"]);
    let table = stdout(&out);
    assert!(table.starts_with("UUID"), "{table}");
    assert!(table.contains(&config_queue), "{table}");

    let created = create_through_cli(&endpoint, &queue, &["--batch-size", "5"]);
    assert_eq!(created["State"], "Creating");
    assert_eq!(created["BatchSize"], 5);
    let uuid = created["UUID"].as_str().unwrap().to_owned();

    for i in 0..7 {
        broker
            .publish(&queue, format!("m{i}").as_bytes(), Default::default())
            .await;
    }
    wait_for("7 messages at the function", || {
        read_events(&record)
            .iter()
            .map(|e| messages(e).len())
            .sum::<usize>()
            == 7
    })
    .await;

    // mqtrigger's own: pause, a table that says so, resume.
    let out = mappings_cli(&endpoint, &["pause", &uuid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = stdout(&mappings_cli(&endpoint, &["list"]));
    let row = table.lines().find(|l| l.starts_with(&uuid)).unwrap();
    assert!(row.contains(" Paused "), "{table}");
    let out = mappings_cli(&endpoint, &["--output", "json", "resume", &uuid]);
    let resumed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(resumed["Mqtrigger"]["Paused"], false);
    let table = stdout(&mappings_cli(&endpoint, &["list"]));
    let row = table.lines().find(|l| l.starts_with(&uuid)).unwrap();
    assert!(row.contains(" Enabled "), "{table}");

    let out = mappings_cli(&endpoint, &["update", &uuid, "--batch-size", "2"]);
    assert!(stdout(&out).contains("Updating"));
    let out = mappings_cli(&endpoint, &["--output", "json", "get", &uuid]);
    let got: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(got["BatchSize"], 2);
    let out = mappings_cli(&endpoint, &["disable", &uuid]);
    assert!(
        stdout(&out).contains("Disabling"),
        "Lambda's answer to Enabled=false"
    );
    let out = mappings_cli(&endpoint, &["--output", "json", "list", "--max-items", "1"]);
    let all: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(all["EventSourceMappings"].as_array().unwrap().len(), 2);

    // Lambda's error, and a non-zero exit.
    let out = mappings_cli(&endpoint, &["get", "2a4d9d52-0000-4000-8000-000000000000"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    let out = mappings_cli("http://127.0.0.1:9", &["list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the mqtrigger API"), "{err}");
    assert!(err.contains("Connection refused"), "says why: {err}");
    assert!(!err.contains("DispatchFailure("), "no Debug dump: {err}");
    // --output and --endpoint also after the subcommand.
    let out = mappings_cli(&endpoint, &["list", "--output", "json"]);
    let all: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(all["EventSourceMappings"].as_array().unwrap().len(), 2);

    // The metrics a user would graph.
    let text = http_get(metrics, "/metrics").await.unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains(&uuid))
            .unwrap_or_else(|| panic!("no {name} for {uuid} in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(line("mqtrigger_messages_received_total"), 7.0);
    assert_eq!(line("mqtrigger_messages_succeeded_total"), 7.0);
    assert_eq!(line("mqtrigger_messages_in_flight"), 0.0);
    assert!(line("mqtrigger_batches_invoked_total") >= 2.0);
    assert!(text.contains("mqtrigger_function_latency_seconds_bucket"));
    assert!(text.contains("mqtrigger_batch_size_messages_bucket"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("mqtrigger_mapping_state")
                && l.contains(&uuid)
                && l.contains("state=\"Disabled\"")
                && l.ends_with(" 1")),
        "{text}"
    );

    let out = mappings_cli(&endpoint, &["delete", &uuid]);
    assert!(stdout(&out).contains("Deleting"));
    stop(server);
    broker.delete(&queue).await;
    broker.delete(&config_queue).await;
}

/// A Secrets Manager endpoint: GetSecretValue answers `stale` the first
/// time (a secret since rotated), `fresh` after that.
async fn secrets_manager(stale: &'static str, fresh: &'static str) -> (String, Arc<AtomicUsize>) {
    use axum::http::HeaderMap;
    let reads = Arc::new(AtomicUsize::new(0));
    let counter = reads.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let counter = counter.clone();
            async move {
                let target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(target, "secretsmanager.GetSecretValue");
                let asked: serde_json::Value = serde_json::from_str(&body).unwrap();
                let arn = asked["SecretId"].as_str().unwrap().to_owned();
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let password = if n == 0 { stale } else { fresh };
                let secret = serde_json::json!({ "username": "mqt_app", "password": password });
                let answer = serde_json::json!({
                    "ARN": arn, "Name": "broker", "VersionId": format!("v{n}"),
                    "SecretString": secret.to_string(), "CreatedDate": 1.7e9,
                });
                (
                    [("content-type", "application/x-amz-json-1.1")],
                    answer.to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_manager_secrets_are_read_reread_on_refusal_and_never_shown() {
    const STALE: &str = "stale-password-4b1d";
    const FRESH: &str = "mqt_app_secret";
    let (sm_url, reads) = secrets_manager(STALE, FRESH).await;
    let broker = Broker::connect().await;
    let queue = unique("cp-secret");
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(&queue);
    setup.secret_arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:broker-app".into();
    setup.extra_toml = format!("[secrets_manager]\nendpoint_url = \"{sm_url}\"\n");
    let record = write_config(dir.path(), &setup);
    let api = free_port();
    let server = serve(dir.path(), &["--api".into(), api.to_string()]);

    broker
        .publish(&queue, b"needs the rotated secret", Default::default())
        .await;
    wait_for("the message at the function", || {
        !read_events(&record).is_empty()
    })
    .await;
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "read once, refused by RabbitMQ, read again"
    );
    let mappings = http_get(api, "/2015-03-31/event-source-mappings/")
        .await
        .unwrap();
    assert!(mappings.contains("\"State\":\"Enabled\""), "{mappings}");
    stop(server);

    // Everything the run produced: the log, the API's answers, the store.
    let mut seen = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(seen.contains("reading the secret again"), "{seen}");
    seen.push_str(&mappings);
    use std::os::unix::fs::PermissionsExt;
    let state = dir.path().join("state");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700, "the state directory is private");
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{} is private", path.display());
        let bytes = std::fs::read(&path).unwrap();
        seen.push_str(&String::from_utf8_lossy(&bytes));
    }
    for secret in [STALE, FRESH] {
        assert!(!seen.contains(secret), "{secret} was shown");
    }
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_refused_after_a_fresh_read_stops_the_mapping_without_showing_it() {
    const WRONG: &str = "wrong-password-9c2e";
    let (sm_url, reads) = secrets_manager(WRONG, WRONG).await;
    let queue = unique("cp-wrong");
    let mut setup = Setup::new(&queue);
    setup.secret_arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:wrong".into();
    setup.extra_toml = format!("[secrets_manager]\nendpoint_url = \"{sm_url}\"\n");
    let running = Running::start(&setup).await;
    let (reason, detail) = running.stopped().await;
    assert_eq!(
        reason,
        mqtrigger::mapping::StateTransitionReason::EventSourceAuthnError
    );
    assert_eq!(reads.load(Ordering::SeqCst), 2);
    assert!(!detail.contains(WRONG), "{detail}");
    assert!(detail.contains("mqt_app"), "names the user: {detail}");
}

/// Metrics name every mapping, queue and function: beyond loopback only
/// when asked for, as the keyless API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_beyond_loopback_need_metrics_public() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &Setup::new(&unique("cp-metrics")));
    let port = free_port().port();
    let everywhere = format!("0.0.0.0:{port}");
    let mut public = Command::new(env!("CARGO_BIN_EXE_mqtrigger"));
    public
        .args(["serve", "--config"])
        .arg(dir.path().join("mqtrigger.toml"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["--metrics", &everywhere]);
    let out = run_to_its_end(&mut public, std::time::Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("serve started with public metrics: {e}"));
    assert!(!out.status.success(), "serve started with public metrics");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("refusing to serve metrics on {everywhere}"))
            && stderr.contains("--metrics-public"),
        "{stderr}"
    );
    // Refused before anything started: no store was made.
    assert!(!dir.path().join("state").exists(), "{stderr}");

    let _server = serve(
        dir.path(),
        &["--metrics".into(), everywhere, "--metrics-public".into()],
    );
    let local: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(local).await;
    let text = http_get(local, "/metrics").await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}
