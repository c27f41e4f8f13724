//! The Lambda Runtime API mqtrigger serves a `bootstrap` process, spoken to
//! the way a runtime client speaks it, over real HTTP; and what keeps one
//! environment's API and output its own.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mqtrigger::invoke::bootstrap::runtime_api::{Invocation, Reply, RuntimeApi};
use std::time::Duration;
use tokio::sync::oneshot;

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn call(
    http: &Http,
    api: &RuntimeApi,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{}/2018-06-01/runtime/{path}", api.addr))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(60), http.request(request))
        .await
        .expect("an answer")
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn invocation(id: &str) -> (Invocation, oneshot::Receiver<Reply>) {
    let (reply, answer) = oneshot::channel();
    (
        Invocation {
            request_id: id.into(),
            event: Bytes::from_static(br#"{"eventSource":"aws:rmq"}"#),
            deadline_ms: 1_900_000_000_000,
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:orders".into(),
            trace_id: "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"
                .into(),
            reply,
        },
        answer,
    )
}

#[tokio::test]
async fn next_hands_out_the_event_with_lambdas_headers_and_answers_are_checked() {
    let api = RuntimeApi::start("orders").await.unwrap();
    api.admit_session_of(std::process::id());
    let http: Http = Client::builder(TokioExecutor::new()).build_http();

    let (first, answer) = invocation("req-1");
    api.invocations.send(first).await.unwrap();
    let (status, headers, body) = call(&http, &api, Method::GET, "invocation/next", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"eventSource":"aws:rmq"}"#);
    assert_eq!(headers["lambda-runtime-aws-request-id"], "req-1");
    assert_eq!(headers["lambda-runtime-deadline-ms"], "1900000000000");
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:orders"
    );
    assert!(
        headers["lambda-runtime-trace-id"]
            .to_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    // The optional ones only when set: never, for an MQ event.
    assert!(headers.get("lambda-runtime-client-context").is_none());
    assert!(headers.get("lambda-runtime-cognito-identity").is_none());

    let (status, _, _) = call(
        &http,
        &api,
        Method::POST,
        "invocation/req-1/response",
        b"{\"ok\":1}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(matches!(answer.await.unwrap(), Reply::Response(b) if b == "{\"ok\":1}"));
    // Answered already, or never handed out: 400.
    let (status, _, body) = call(
        &http,
        &api,
        Method::POST,
        "invocation/req-1/response",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
    let (status, _, _) = call(
        &http,
        &api,
        Method::POST,
        "invocation/nope/error",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // An error: its type from the header.
    let (second, answer) = invocation("req-2");
    api.invocations.send(second).await.unwrap();
    call(&http, &api, Method::GET, "invocation/next", vec![]).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!(
            "http://{}/2018-06-01/runtime/invocation/req-2/error",
            api.addr
        ))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.HandlerError")
        .body(Full::new(Bytes::from_static(
            br#"{"errorType":"ValueError","errorMessage":"bad","stackTrace":[]}"#,
        )))
        .unwrap();
    let response = http.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    match answer.await.unwrap() {
        Reply::Error { error_type, body } => {
            assert_eq!(error_type, "Runtime.HandlerError");
            assert!(String::from_utf8_lossy(&body).contains("ValueError"));
        }
        other => panic!("{other:?}"),
    }

    // Past 6 MB: 413, and the invocation fails as too large.
    let (third, answer) = invocation("req-3");
    api.invocations.send(third).await.unwrap();
    call(&http, &api, Method::GET, "invocation/next", vec![]).await;
    let big = vec![b'x'; 6 * 1024 * 1024 + 1];
    let (status, _, _) = call(&http, &api, Method::POST, "invocation/req-3/response", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(matches!(answer.await.unwrap(), Reply::TooLarge(n) if n == 6 * 1024 * 1024 + 1));

    // An init error is told, whatever it is about.
    let (status, _, _) = call(
        &http,
        &api,
        Method::POST,
        "init/error",
        br#"{"errorType":"Runtime.ImportModuleError","errorMessage":"no module"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let told = api.init_error.borrow().clone().expect("the init error");
    assert_eq!(told.error_type, "Runtime.ImportModuleError");
}

#[tokio::test]
async fn a_process_outside_the_environment_is_refused_with_403() {
    // Nobody's session is admitted: this process is outside, as another
    // function's runtime would be.
    let api = RuntimeApi::start("orders").await.unwrap();
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let (first, mut answer) = invocation("req-1");
    api.invocations.send(first).await.unwrap();
    let (status, _, body) = call(&http, &api, Method::GET, "invocation/next", vec![]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("AccessDenied") && body.contains("function orders's execution environment"),
        "{body}"
    );
    let (status, _, _) = call(
        &http,
        &api,
        Method::POST,
        "invocation/req-1/response",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer.try_recv().is_err(), "nobody answered the invocation");
}

/// Lines of a JSON-lines record file, once complete.
fn thief_record(running: &Running, name: &str) -> Vec<serde_json::Value> {
    read_events(&running.dir.path().join(name))
}

fn bodies_seen(running: &Running) -> Vec<String> {
    running
        .events()
        .iter()
        .filter_map(|e| e["bodies"].as_array())
        .flatten()
        .map(|b| b.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_cannot_take_another_functions_invocation() {
    let broker = Broker::connect().await;
    // The thief: a hand-written runtime that asks every other environment's
    // Runtime API it can find for work (tests/functions/thief.py). Its
    // environment starts with its first batch.
    let bait = unique("steal-bait");
    broker.declare(&bait, FieldTable::default()).await;
    let thief_script = format!("{}/tests/functions/thief.py", env!("CARGO_MANIFEST_DIR"));
    let thief = Running::start(&Setup {
        batch_size: 1,
        function_toml: Some(format!(
            "bootstrap = [{:?}, {thief_script:?}]\nenv = {{ THIEF_RECORD = \"{{RECORD_TO}}.thief\" }}",
            python()
        )),
        ..Setup::new(&bait)
    })
    .await;
    let thief_log = format!(
        "{}.thief",
        thief.record.file_name().unwrap().to_str().unwrap()
    );
    broker
        .publish(&bait, b"bait", BasicProperties::default())
        .await;
    wait_for("the thief's own invocation", || {
        thief_record(&thief, &thief_log)
            .iter()
            .any(|e| e.get("own").is_some())
    })
    .await;

    // The victim: an awslambdaric handler. Its environment starts with the
    // first message; the rest wait until the thief has found its API.
    let queue = unique("steal-victim");
    broker.declare(&queue, FieldTable::default()).await;
    let app = format!("{}/tests/functions/lambda_app", env!("CARGO_MANIFEST_DIR"));
    let victim = Running::start(&Setup {
        batch_size: 1,
        function_toml: Some(format!(
            "bootstrap = [{:?}, \"-m\", \"awslambdaric\", \"app.handler\"]\ncwd = {app:?}\nenv = {{ RECORD_TO = \"{{RECORD_TO}}\" }}",
            python()
        )),
        ..Setup::new(&queue)
    })
    .await;
    let bodies: Vec<String> = (0..9).map(|i| format!("order {i}")).collect();
    let stolen = || -> Vec<String> {
        thief_record(&thief, &thief_log)
            .iter()
            .filter_map(|e| e.get("stole"))
            .flat_map(messages)
            .map(|(data, _)| String::from_utf8(data).unwrap())
            .collect()
    };
    let handled = || {
        let mut all = bodies_seen(&victim);
        all.extend(stolen());
        all.sort();
        all.dedup();
        all.len()
    };
    broker
        .publish(&queue, bodies[0].as_bytes(), BasicProperties::default())
        .await;
    wait_for("the victim's first message handled", || handled() == 1).await;
    wait_for("the thief to find the victim's Runtime API", || {
        thief_record(&thief, &thief_log)
            .iter()
            .any(|e| e.get("found").is_some())
    })
    .await;
    for body in &bodies[1..] {
        broker
            .publish(&queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    wait_for_all(
        "the victim's 9 messages handled, by it or the thief",
        9,
        handled,
    )
    .await;

    assert_eq!(stolen(), Vec::<String>::new(), "the thief took nothing");
    let mut seen = bodies_seen(&victim);
    seen.sort();
    assert_eq!(
        seen, bodies,
        "each of the victim's messages reached it, once"
    );
    let tries = thief_record(&thief, &thief_log);
    let refused = tries.iter().filter(|e| e["status"] == 403).count();
    assert!(refused > 0, "the thief tried, and was refused: {tries:?}");
    assert!(
        tries
            .iter()
            .filter(|e| e.get("tried").is_some())
            .all(|e| e["status"] == 403 || e.get("error").is_some()),
        "every attempt refused: {tries:?}"
    );
    victim.control.shutdown().await;
    thief.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&bait).await;
}

/// This process's peak resident memory, in MB.
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_writes_100_mb_without_a_newline_leaves_memory_bounded() {
    let queue = unique("flood");
    let broker = Broker::connect().await;
    broker.declare(&queue, FieldTable::default()).await;
    let script = format!("{}/tests/functions/flood.py", env!("CARGO_MANIFEST_DIR"));
    let running = Running::start(&Setup {
        batch_size: 1,
        function_toml: Some(format!(
            "bootstrap = [{:?}, {script:?}]\nenv = {{ FLOOD_MB = \"100\" }}",
            python()
        )),
        ..Setup::new(&queue)
    })
    .await;
    let mut events = running.control.subscribe();
    let before = peak_rss_mb();
    for i in 0..3 {
        broker
            .publish(
                &queue,
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await;
    }
    let mut logs = Vec::new();
    while logs.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(120), events.recv())
            .await
            .expect("three invocations within two minutes")
            .unwrap();
        if let mqtrigger::engine::EngineEvent::FunctionLog { lines, .. } = event {
            logs.push(lines);
        }
    }
    let grew = peak_rss_mb().saturating_sub(before);
    assert!(
        grew < 100,
        "300 MB of output without a newline took {grew} MB of memory"
    );
    // The first invocation's line was cut, and says so in what the console
    // keeps of it; the line goes on through the next invocations, where its
    // rest is dropped.
    let cut = logs[0]
        .iter()
        .find(|l| l.starts_with("xxx"))
        .expect("the line, cut");
    assert!(cut.len() < 4200, "the console keeps 4 KiB of it");
    assert!(
        cut.ends_with("[cut: the console keeps the first 4 KiB of a log line]"),
        "{cut:.100}"
    );
    for log in &logs[1..] {
        assert!(!log.iter().any(|l| l.starts_with("xxx")), "{log:?}");
    }
    assert_eq!(running.mapping().last_processing_result, "OK");
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

/// Whether the process runs (a zombie has ended; it waits only to be reaped).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_runtime_leaves_running_in_sessions_of_its_own_ends_with_its_environment() {
    let queue = unique("daemons");
    let broker = Broker::connect().await;
    broker.declare(&queue, FieldTable::default()).await;
    let script = format!("{}/tests/functions/daemons.py", env!("CARGO_MANIFEST_DIR"));
    let running = Running::start(&Setup {
        batch_size: 1,
        function_toml: Some(format!(
            "bootstrap = [{:?}, {script:?}]\nenv = {{ DAEMONS_TO = \"{{RECORD_TO}}.daemons\" }}",
            python()
        )),
        ..Setup::new(&queue)
    })
    .await;
    let pidfile = running.dir.path().join("events.jsonl.daemons");
    broker
        .publish(&queue, b"go", BasicProperties::default())
        .await;
    wait_for("the mapping's batch", || {
        running.mapping().last_processing_result == "OK"
    })
    .await;
    let pids: Vec<u32> = std::fs::read_to_string(&pidfile)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&pid| runs(pid)), "both started: {pids:?}");
    running.control.shutdown().await;
    wait_for(
        "the child and the orphan to end with the environment",
        || !pids.iter().any(|&pid| runs(pid)),
    )
    .await;
    broker.delete(&queue).await;
}
