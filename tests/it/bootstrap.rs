//! `bootstrap` functions: unmodified Lambda handlers run by their own
//! runtime clients, which nobody here wrote, against the Runtime API that
//! mqtrigger serves: Python's awslambdaric (with Powertools' event types)
//! and Rust's lambda_runtime (with aws_lambda_events), on the real broker.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use mqtrigger::engine::EngineEvent;
use std::collections::HashSet;
use std::time::Duration;

fn app_dir() -> String {
    format!("{}/tests/functions/lambda_app", env!("CARGO_MANIFEST_DIR"))
}

/// The Python handler of tests/functions/lambda_app, run by awslambdaric.
fn python_handler(queue: &str, timeout: u64, handler: &str) -> Setup {
    Setup {
        batch_size: 2,
        timeout,
        function_toml: Some(format!(
            "bootstrap = [{:?}, \"-m\", \"awslambdaric\", \"{handler}\"]\ncwd = {:?}\nmemory_size = 256\nenv = {{ RECORD_TO = \"{{RECORD_TO}}\", TABLE = \"orders\" }}",
            python(),
            app_dir(),
        )),
        ..Setup::new(queue)
    }
}

fn invocations(running: &Running) -> Vec<serde_json::Value> {
    running
        .events()
        .into_iter()
        .filter(|e| e.get("request_id").is_some())
        .collect()
}

fn inits(running: &Running) -> Vec<serde_json::Value> {
    running
        .events()
        .into_iter()
        .filter(|e| e.get("init").is_some())
        .collect()
}

/// Every line the function logged so far, from the engine's FunctionLog events.
fn logged(events: &mut tokio::sync::broadcast::Receiver<EngineEvent>) -> String {
    let mut log = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EngineEvent::FunctionLog { lines, .. } = event {
            log.extend(lines);
        }
    }
    log.join("\n")
}

/// What every runtime client must see: a request id of its own per
/// invocation, and a deadline within the function's timeout.
fn assert_lambda_context(calls: &[serde_json::Value], timeout_ms: i64) {
    let ids: HashSet<_> = calls
        .iter()
        .map(|c| c["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), calls.len(), "a request id per invocation");
    for c in calls {
        let remaining = c["remaining_ms"].as_i64().unwrap();
        assert!(remaining > 0 && remaining <= timeout_ms, "{c}");
    }
}

/// After warm bodies, "boom" and "sleep" went one by one through a runtime
/// client with a 2 s timeout: one process for everything but the timeouts
/// (the first attempt of "sleep" ran on it too), a new one after each of the
/// 5 timeouts, every invocation's context right, and both dead letters
/// saying why (`thrown`: the throw's words).
fn assert_warm_until_each_timeout(running: &Running, calls: &[serde_json::Value], thrown: &str) {
    assert_eq!(
        inits(running).len(),
        6,
        "one warm process, then one after each of 5 timeouts"
    );
    let warm: Vec<_> = calls.iter().filter(|c| c["bodies"][0] != "sleep").collect();
    assert!(
        warm.iter().all(|c| c["pid"] == warm[0]["pid"]),
        "one warm process, a throw included: {warm:?}"
    );
    let slept: HashSet<_> = calls
        .iter()
        .filter(|c| c["bodies"][0] == "sleep")
        .map(|c| c["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(slept.len(), 6, "each timeout gets a new process");
    assert_lambda_context(calls, 2_000);
    let reasons: Vec<String> = running
        .dead_letters()
        .iter()
        .map(|l| l.reason.clone())
        .collect();
    assert!(reasons.iter().any(|r| r.contains(thrown)), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("Task timed out after 2.00 seconds")),
        "{reasons:?}"
    );
}

async fn publish_all(queue: &str, bodies: &[&str]) -> Broker {
    let broker = Broker::connect().await;
    broker.declare(queue, FieldTable::default()).await;
    for body in bodies {
        broker
            .publish(queue, body.as_bytes(), BasicProperties::default())
            .await;
    }
    broker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awslambdaric_handler_stays_warm_and_gets_lambdas_context_and_environment() {
    let queue = unique("boot-warm");
    let bodies = ["m0", "m1", "m2", "m3", "m4", "m5"];
    let broker = publish_all(&queue, &bodies).await;
    let running = Running::start(&python_handler(&queue, 30, "app.handler")).await;
    let mut events = running.control.subscribe();
    wait_for_all("6 messages handled", 6, || {
        invocations(&running)
            .iter()
            .map(|i| i["bodies"].as_array().unwrap().len())
            .sum()
    })
    .await;
    let calls = invocations(&running);
    let inits = inits(&running);
    assert_eq!(inits.len(), 1, "one init for every batch: {inits:?}");
    let pid = &inits[0]["init"];
    assert!(
        calls.iter().all(|c| &c["pid"] == pid),
        "one warm process: {calls:?}"
    );
    assert_lambda_context(&calls, 30_000);
    for c in &calls {
        assert_eq!(c["function_name"], "recorder");
        assert_eq!(c["memory_limit_in_mb"], "256");
        assert_eq!(c["table"], "orders");
        assert!(
            c["function_arn"]
                .as_str()
                .unwrap()
                .ends_with(":function:recorder"),
            "{c}"
        );
    }
    let seen: Vec<&str> = calls
        .iter()
        .flat_map(|c| {
            c["bodies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_str().unwrap())
        })
        .collect();
    assert_eq!(seen, bodies, "Powertools parsed every body, in order");
    assert_eq!(inits[0]["handler"], "app.handler");
    let root = std::fs::canonicalize(app_dir()).unwrap();
    assert_eq!(inits[0]["task_root"], root.display().to_string());

    // The handler's print and Lambda's lines, for the console.
    let text = logged(&mut events);
    assert!(text.contains("handled 2 message(s): m0"), "{text}");
    assert!(text.contains("START RequestId: "), "{text}");
    assert!(text.contains("END RequestId: "), "{text}");
    assert!(
        text.contains("Memory Size: 256 MB\tMax Memory Used: "),
        "{text}"
    );
    assert_eq!(text.matches("Init Duration: ").count(), 1, "{text}");
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_is_retried_whole_then_dead_lettered_with_its_type_and_the_process_stays() {
    let queue = unique("boot-raise");
    let broker = publish_all(&queue, &["boom 7"]).await;
    let running = Running::start(&python_handler(&queue, 30, "app.handler")).await;
    wait_for("the dead letter", || !running.dead_letters().is_empty()).await;
    let calls = invocations(&running);
    assert_eq!(calls.len(), 6, "one attempt and 5 redeliveries");
    assert!(
        calls.iter().all(|c| c["pid"] == calls[0]["pid"]),
        "an exception keeps the process warm"
    );
    let letter = &running.dead_letters()[0];
    assert!(
        letter
            .reason
            .contains("last error ValueError: bad order boom 7"),
        "{}",
        letter.reason
    );
    let error: serde_json::Value = serde_json::from_str(letter.error.as_deref().unwrap()).unwrap();
    assert_eq!(error["errorType"], "ValueError");
    assert!(error["stackTrace"].is_array(), "{error}");
    assert!(
        running
            .mapping()
            .last_processing_result
            .contains("ValueError"),
        "{}",
        running.mapping().last_processing_result
    );
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_or_a_crash_ends_the_process_and_the_next_attempt_gets_a_new_one() {
    let queue = unique("boot-timeout");
    let broker = publish_all(&queue, &["sleep", "exit"]).await;
    let mut setup = python_handler(&queue, 2, "app.handler");
    setup.batch_size = 1;
    let running = Running::start(&setup).await;
    wait_for_all("both dead letters", 2, || running.dead_letters().len()).await;
    let calls = invocations(&running);
    assert_eq!(calls.len(), 12, "6 attempts each");
    let pids: HashSet<_> = calls.iter().map(|c| c["pid"].as_i64().unwrap()).collect();
    assert_eq!(
        pids.len(),
        12,
        "every timeout and every crash ends its process"
    );
    assert_eq!(inits(&running).len(), 12);
    let letters = running.dead_letters();
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("Sandbox.Timedout")
                && r.contains("Task timed out after 2.00 seconds")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("Runtime.ExitError")
            && r.contains("Runtime exited with error: exit status 3")),
        "{reasons:?}"
    );
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_cannot_be_imported_fails_its_init_as_on_lambda() {
    let queue = unique("boot-init");
    let broker = publish_all(&queue, &["m"]).await;
    let running = Running::start(&python_handler(&queue, 30, "nosuch.handler")).await;
    wait_for("the dead letter", || !running.dead_letters().is_empty()).await;
    let letter = &running.dead_letters()[0];
    assert!(
        letter.reason.contains("Runtime.ImportModuleError"),
        "{}",
        letter.reason
    );
    assert!(letter.reason.contains("nosuch"), "{}", letter.reason);
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

/// tests/handlers/rust, built (once per target directory) with cargo.
fn rust_handler() -> std::path::PathBuf {
    let manifest = format!(
        "{}/tests/handlers/rust/Cargo.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let target = format!("{}/target/handlers", env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--locked",
            "--manifest-path",
            &manifest,
            "--target-dir",
            &target,
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the lambda_runtime handler builds");
    std::path::Path::new(&target).join("debug/mqtrigger-test-handler")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_runtime_handler_stays_warm_fails_as_on_lambda_and_times_out() {
    let handler = rust_handler();
    let queue = unique("boot-rust");
    let broker = Broker::connect().await;
    broker.declare(&queue, FieldTable::default()).await;
    // aws_lambda_events types priority as a number: these messages have one.
    for body in ["r0", "r1", "r2", "boom", "sleep"] {
        let props = BasicProperties::default().with_priority(1);
        broker.publish(&queue, body.as_bytes(), props).await;
    }
    let setup = Setup {
        batch_size: 1,
        timeout: 2,
        function_toml: Some(format!(
            "bootstrap = [{:?}]\nenv = {{ RECORD_TO = \"{{RECORD_TO}}\" }}",
            handler.display().to_string()
        )),
        ..Setup::new(&queue)
    };
    let running = Running::start(&setup).await;
    let mut events = running.control.subscribe();
    wait_for_all("both dead letters", 2, || running.dead_letters().len()).await;
    let calls = invocations(&running);
    assert_warm_until_each_timeout(&running, &calls, "bad order boom");
    let text = logged(&mut events);
    assert!(text.contains("handled 1 message(s): r0"), "{text}");
    let by_body = |b: &str| calls.iter().filter(|c| c["bodies"][0] == b).count();
    assert_eq!(
        (
            by_body("r0"),
            by_body("r1"),
            by_body("r2"),
            by_body("boom"),
            by_body("sleep")
        ),
        (1, 1, 1, 6, 6),
        "{calls:?}"
    );
    for c in &calls {
        assert!(
            c["function_arn"]
                .as_str()
                .unwrap()
                .ends_with(":function:recorder")
        );
    }
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

/// aws-lambda-ric from npm (scripts/test runs `npm ci` in tests/functions/lambda_node).
fn node_runtime() -> (String, String) {
    let dir = format!("{}/tests/functions/lambda_node", env!("CARGO_MANIFEST_DIR"));
    let ric = format!("{dir}/node_modules/.bin/aws-lambda-ric");
    assert!(
        std::path::Path::new(&ric).exists(),
        "aws-lambda-ric is not installed: run `npm ci --prefix {dir}` (scripts/test does)"
    );
    (ric, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_lambda_ric_node_handler_stays_warm_throws_as_on_lambda_and_times_out() {
    let (ric, dir) = node_runtime();
    let queue = unique("boot-node");
    let broker = publish_all(&queue, &["n0", "n1", "boom", "sleep"]).await;
    let setup = Setup {
        batch_size: 1,
        timeout: 2,
        function_toml: Some(format!(
            "bootstrap = [{ric:?}, \"index.handler\"]\ncwd = {dir:?}\nenv = {{ RECORD_TO = \"{{RECORD_TO}}\" }}"
        )),
        ..Setup::new(&queue)
    };
    let running = Running::start(&setup).await;
    let mut events = running.control.subscribe();
    wait_for_all("both dead letters", 2, || running.dead_letters().len()).await;
    let calls = invocations(&running);
    assert_eq!(
        calls.len(),
        14,
        "n0, n1, and 6 attempts each of boom and sleep: {calls:?}"
    );
    assert_warm_until_each_timeout(&running, &calls, "TypeError: bad order boom");
    for c in &calls {
        assert_eq!(c["function_name"], "recorder");
    }
    let text = logged(&mut events);
    assert!(text.contains("handled 1 message(s): n0"), "{text}");
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_get_a_warm_process_each_and_no_more() {
    let queue = unique("boot-conc");
    let bodies: Vec<String> = (0..9).map(|i| format!("slow {i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let broker = publish_all(&queue, &refs).await;
    let mut setup = python_handler(&queue, 30, "app.handler");
    setup.batch_size = 1;
    setup.mapping_toml = "ScalingConfig = { MaximumConcurrency = 3 }".into();
    let running = Running::start(&setup).await;
    wait_for_all("9 messages handled", 9, || invocations(&running).len()).await;
    let pids: HashSet<_> = invocations(&running)
        .iter()
        .map(|c| c["pid"].as_i64().unwrap())
        .collect();
    assert!(
        (2..=3).contains(&pids.len()),
        "batches ran side by side, each on a process of at most 3: {pids:?}"
    );
    assert_eq!(
        inits(&running).len(),
        pids.len(),
        "every process was reused"
    );
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_the_invocation_finish_then_ends_the_process() {
    let queue = unique("boot-stop");
    let broker = publish_all(&queue, &["slow stop"]).await;
    let mut setup = python_handler(&queue, 30, "app.handler");
    setup.batch_size = 1;
    let running = Running::start(&setup).await;
    wait_for("the invocation under way", || {
        !invocations(&running).is_empty()
    })
    .await;
    let pid = invocations(&running)[0]["pid"].as_i64().unwrap();
    running.control.shutdown().await;
    assert_eq!(
        broker.ready(&queue).await,
        0,
        "the batch finished and was acked, not handed back"
    );
    assert_eq!(running.mapping().last_processing_result, "OK");
    // Killed when the engine let it go (the signal lands a moment later):
    // gone, or a zombie not yet reaped, either way it runs no more.
    let runs = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    };
    wait_for("the execution environment to end with the engine", || {
        !runs()
    })
    .await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_runtime_logs_after_its_answer_and_before_it_asks_again_is_the_invocations() {
    let queue = unique("boot-late");
    let broker = publish_all(&queue, &["a", "b", "c"]).await;
    let runtime = format!("{}/tests/functions/late_log.py", env!("CARGO_MANIFEST_DIR"));
    let setup = Setup {
        batch_size: 1,
        function_toml: Some(format!("bootstrap = [\"python3\", {runtime:?}]")),
        ..Setup::new(&queue)
    };
    let running = Running::start(&setup).await;
    let mut events = running.control.subscribe();
    let mut logs = Vec::new();
    while logs.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("three invocations within a minute")
            .unwrap();
        if let EngineEvent::FunctionLog { lines, .. } = event {
            logs.push(lines);
        }
    }
    for lines in &logs {
        let start = lines[0]
            .strip_prefix("START RequestId: ")
            .expect("START first");
        let request_id = start.split(' ').next().unwrap();
        let late = format!("after the answer to {request_id}");
        let at = lines.iter().position(|l| *l == late);
        let end = lines.iter().position(|l| l.starts_with("END RequestId: "));
        assert!(
            at.is_some() && at < end,
            "the line written after the answer is the invocation's, before END: {lines:?}"
        );
    }
    running.control.shutdown().await;
    broker.delete(&queue).await;
}
