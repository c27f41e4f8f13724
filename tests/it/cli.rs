//! The `mqtrigger` binary as a user runs it.

use crate::common::*;
use lapin::types::{AMQPValue, FieldTable};
use std::process::{Command, Output, Stdio};

/// Writes SETUP's config into DIR (events recorded to DIR/r); the config's
/// path and a state directory beside it.
fn config_in(dir: &std::path::Path, setup: &Setup) -> (std::path::PathBuf, std::path::PathBuf) {
    let path = dir.join("c.toml");
    std::fs::write(&path, setup.toml(&dir.join("r"))).unwrap();
    (path, dir.join("state"))
}

fn mqtrigger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

#[test]
fn a_bad_config_file_names_the_file_the_line_and_the_field_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = Setup::new("q")
        .toml(&dir.path().join("r"))
        .replace("BatchSize = 10", "BatchSize = 0");
    std::fs::write(&path, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("BatchSize"))
        .unwrap()
        + 1;
    let out = mqtrigger(&[
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--state",
        dir.path().join("s").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("bad.toml:{line}: ")), "{stderr}");
    assert!(
        stderr.contains("BatchSize 0 is out of range: it must be 1 to 10000"),
        "{stderr}"
    );

    let out = mqtrigger(&[
        "serve",
        "--config",
        dir.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing.toml") && stderr.contains("cannot read the config file"),
        "{stderr}"
    );
}

#[test]
fn a_second_serve_on_the_same_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, state) = config_in(dir.path(), &Setup::new(&unique("lock")));
    let _held = mqtrigger::store::Store::open(&state).unwrap();
    let out = mqtrigger(&[
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another mqtrigger"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_is_refused_even_after_the_lock_file_is_deleted() {
    let broker = Broker::connect().await;
    let queue = unique("lock2");
    broker
        .declare(&queue, lapin::types::FieldTable::default())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (path, state) = config_in(dir.path(), &Setup::new(&queue));
    let first = spawn_serve(&path, &state);
    let lock = state.join("mqtrigger.lock");
    wait_for("the first serve's lock file", || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t.trim() == first.id().to_string())
    })
    .await;
    std::fs::remove_file(&lock).unwrap();
    let out = mqtrigger(&[
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "a second serve shares the state");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another mqtrigger"), "{stderr}");
    stop(first);
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_sends_bodies_properties_and_typed_headers() {
    let broker = Broker::connect().await;
    let queue = unique("publish");
    let out = mqtrigger(&[
        "publish",
        "--broker",
        &amqp_url(),
        "--queue",
        &queue,
        "--count",
        "3",
        "--body",
        "{\"order\":1}",
        "--property",
        "content_type=application/json",
        "--property",
        "priority=7",
        "--property",
        "message_id=abc",
        "--property",
        "timestamp=2021",
        "--header",
        "tenant=acme",
        "--header",
        "retries=int:3",
        "--header",
        "urgent=bool:true",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = broker.drain(&queue).await;
    assert_eq!(got.len(), 3, "--count 3");
    let d = &got[0].delivery;
    assert_eq!(d.data, b"{\"order\":1}");
    assert_eq!(
        d.properties.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(d.properties.priority(), &Some(7));
    assert_eq!(d.properties.timestamp(), &Some(2021));
    let headers: &FieldTable = d.properties.headers().as_ref().unwrap();
    assert_eq!(
        headers.inner().get("retries"),
        Some(&AMQPValue::LongLongInt(3))
    );
    assert_eq!(
        headers.inner().get("urgent"),
        Some(&AMQPValue::Boolean(true))
    );
    assert_eq!(
        headers.inner().get("tenant"),
        Some(&AMQPValue::LongString("acme".into()))
    );

    let out = mqtrigger(&[
        "publish",
        "--broker",
        &amqp_url(),
        "--queue",
        &queue,
        "--property",
        "colour=red",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown property `colour`"));
    broker.delete(&queue).await;
}

#[test]
fn plain_mqtrigger_without_a_config_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mqtrigger.toml"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "created {left:?}");
}

#[test]
fn the_console_keeps_its_state_directory_private_and_needs_a_terminal() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (path, state) = config_in(dir.path(), &Setup::new(&unique("console")));
    let out = mqtrigger(&[
        "console",
        "--config",
        path.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a clean error, not a panic: {stderr}"
    );
    assert!(
        stderr.contains("needs a terminal") && stderr.contains("mqtrigger serve"),
        "{stderr}"
    );
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the state directory is {mode:o}");
}

/// `serve` as an operator runs it from a service manager: `--api` takes a
/// host name, logs into a file or pipe carry no colour codes, the first
/// Ctrl-C says what it waits for, and a second one stops at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_says_what_it_waits_for_and_a_second_ctrl_c_stops_it_at_once() {
    use std::sync::{Arc, Mutex};
    let broker = Broker::connect().await;
    let queue = unique("ctrlc");
    broker
        .declare(&queue, lapin::types::FieldTable::default())
        .await;
    broker
        .publish(&queue, b"slow", lapin::BasicProperties::default())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(&queue);
    setup.function_env = vec![("SLEEP".into(), "60".into())];
    setup.timeout = 120;
    let (path, state) = config_in(dir.path(), &setup);
    let record = dir.path().join("r");
    let mut child = KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(["serve", "--api", "localhost:0", "--config"])
            .arg(&path)
            .arg("--state")
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Raw bytes, so a last line without its newline would show.
    let bytes = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut stderr = child.stderr.take().unwrap();
    let collected = bytes.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stderr, &mut chunk) {
            if n == 0 {
                break;
            }
            collected.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    let said = |text: &str| String::from_utf8_lossy(&bytes.lock().unwrap()).contains(text);
    wait_for("the API on localhost", || {
        said("serving Lambda's event-source-mapping API") && said("addr=127.0.0.1:")
    })
    .await;
    wait_for("the slow invocation under way", || {
        read_events(&record).len() == 1
    })
    .await;
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    wait_for("what the stop waits for", || {
        said("waiting for 1 invocation(s) under way") && said("Ctrl-C again")
    })
    .await;
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    // 130 comes only from the second Ctrl-C: a clean stop would wait for the
    // 60 s function and exit 0.
    assert_eq!(status.code(), Some(130));
    wait_for("the last word", || said("stopped at once")).await;
    let all = String::from_utf8_lossy(&bytes.lock().unwrap()).into_owned();
    assert!(
        all.ends_with("delivered again\n"),
        "the last line ends:\n{all}"
    );
    assert!(!all.contains('\u{1b}'), "colour codes in a pipe:\n{all}");
    // Nothing is lost: the batch under way goes back to the queue.
    let mut ready = 0;
    for _ in 0..100 {
        ready = broker.ready(&queue).await;
        if ready == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 1, "the message is back in the queue");
    drop(child);
    broker.delete(&queue).await;
}

/// Off EC2 there is no instance metadata: the SDK's multi-kilobyte dumps of
/// that stay out of the log, and one line says what it means.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_function_without_a_region_is_said_in_one_line() {
    let broker = Broker::connect().await;
    let queue = unique("no-region");
    broker.declare(&queue, FieldTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        function_toml: Some("lambda = \"orders\"".into()),
        ..Setup::new(&queue)
    };
    let (path, state) = config_in(dir.path(), &setup);
    let log = dir.path().join("stderr");
    let mut child = KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(["serve", "--config"])
            .arg(&path)
            .arg("--state")
            .arg(&state)
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.path().join("no-credentials"),
            )
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the region's line", || text().contains("no region in its")).await;
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    let text = text();
    let line = text
        .lines()
        .find(|l| l.contains("no region in its"))
        .unwrap();
    assert!(
        line.contains("function orders") && line.contains("set the function's `region`"),
        "{line}"
    );
    assert!(!text.contains("aws_config::imds"), "{text}");
    assert!(
        text.lines().all(|l| l.len() < 600),
        "one line each:\n{text}"
    );
    broker.delete(&queue).await;
}
