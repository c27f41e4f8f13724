//! The `command` runtime with real processes (python3 scripts in tests/functions).

use bytes::Bytes;
use mqtrigger::invoke::command::CommandInvoker;
use mqtrigger::invoke::{InvokeError, Invoker, MAX_RESPONSE_BYTES};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn behave_command(args: &[&str]) -> Vec<String> {
    let script = format!("{}/tests/functions/behave.py", env!("CARGO_MANIFEST_DIR"));
    let mut command = vec!["python3".to_owned(), script];
    command.extend(args.iter().map(|a| a.to_string()));
    command
}

fn behave(args: &[&str], timeout: Duration) -> CommandInvoker {
    let env = BTreeMap::from([("GREETING".to_owned(), "hello from env".to_owned())]);
    CommandInvoker::new(behave_command(args), env, None, timeout)
}

/// Longer than any of these functions should take: a safety net only.
const LONG: Duration = Duration::from_secs(60);

fn function_error(err: InvokeError) -> (String, String) {
    match err {
        InvokeError::Function {
            error_type,
            payload,
        } => (error_type, payload),
        other => panic!("expected a function error, got {other:?}"),
    }
}

/// The (function, grandchild) pids a `hang` or `background` run wrote.
fn read_pids(file: &Path) -> (i32, i32) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut pids = text.split_whitespace().map(|p| p.parse().unwrap());
    (pids.next().unwrap(), pids.next().unwrap())
}

/// Our own child must be dead *and reaped*: `kill(pid, 0)` fails once no
/// process, not even a zombie, has the pid.
async fn assert_reaped(pid: i32) {
    for _ in 0..100 {
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the function's process {pid} is still there (alive or a zombie)");
}

/// A grandchild belongs to init once its parent is gone, so being a zombie
/// waiting for init counts as dead.
async fn assert_dead(pid: i32) {
    for _ in 0..100 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name in parentheses.
        let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        if stat.is_empty() || state == Some("Z") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the grandchild {pid} outlived the function");
}

#[tokio::test]
async fn stdout_is_the_response_even_for_a_5_mb_event() {
    let event = Bytes::from(format!("{{\"data\":\"{}\"}}", "x".repeat(5 * 1024 * 1024)));
    let out = behave(&["echo"], LONG).invoke(event.clone()).await.unwrap();
    assert_eq!(out, event);
}

#[tokio::test]
async fn env_is_passed_and_unread_stdin_is_not_an_error() {
    let out = behave(&["env"], LONG)
        .invoke(Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(out, "hello from env\n");
    let big = Bytes::from(vec![b' '; 1024 * 1024]);
    let out = behave(&["ignore-stdin"], LONG).invoke(big).await.unwrap();
    assert_eq!(out, "done\n");
}

#[tokio::test]
async fn a_lambda_style_error_is_passed_through() {
    let err = behave(&["lambda-error"], LONG)
        .invoke(Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    let (error_type, payload) = function_error(err);
    assert_eq!(error_type, "OrderInvalid");
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["errorMessage"], "order 7 has no lines");
}

#[tokio::test]
async fn a_plain_failure_gets_a_lambda_style_payload_with_exit_status_and_stderr() {
    let err = behave(&["plain-fail"], LONG)
        .invoke(Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    let (error_type, payload) = function_error(err);
    assert_eq!(error_type, "Runtime.ExitError");
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["errorType"], "Runtime.ExitError");
    assert_eq!(payload["errorMessage"], "exit status 2");
    assert_eq!(payload["stderr"], "bad input");
}

#[tokio::test]
async fn a_crash_reports_the_exit_status_and_the_end_of_stderr() {
    let err = behave(&["crash"], LONG)
        .invoke(Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    let (error_type, payload) = function_error(err);
    assert_eq!(error_type, "Runtime.ExitError");
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["errorMessage"], "exit status 3");
    let stderr = payload["stderr"].as_str().unwrap();
    assert!(stderr.ends_with("Traceback: something broke"), "{stderr}");
    assert!(
        stderr.starts_with("trace line "),
        "starts at a line: {stderr}"
    );
    assert!(
        !stderr.contains("trace line 0\n") && stderr.len() <= 4096 && stderr.len() > 3500,
        "only the last ~4 KB is kept: {} bytes",
        stderr.len()
    );
}

#[tokio::test]
async fn a_function_killed_by_a_signal_says_which() {
    let err = behave(&["signal"], LONG)
        .invoke(Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    let (error_type, payload) = function_error(err);
    assert_eq!(error_type, "Runtime.Signal");
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["errorMessage"], "killed by signal 15 (SIGTERM)");
    assert_eq!(payload["stderr"], "about to die");
}

#[tokio::test]
async fn a_response_over_6_mb_is_a_function_error() {
    let err = behave(&["huge-response"], LONG)
        .invoke(Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    let (error_type, payload) = function_error(err);
    assert_eq!(error_type, "Function.ResponseSizeTooLarge");
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let message = payload["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("response too large")
            && message.contains(&(7 * 1024 * 1024).to_string())
            && message.contains(&MAX_RESPONSE_BYTES.to_string()),
        "{message}"
    );
}

/// Collects what the `tracing` fmt layer writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn megabytes_of_stderr_do_not_block_the_function_and_go_to_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // This test runs on one thread, so the subscriber sees the whole invocation.
    let _guard = tracing::subscriber::set_default(subscriber);
    let event = Bytes::from(vec![b'1'; 3 * 1024 * 1024]);
    let out = behave(&["stderr"], LONG).invoke(event).await.unwrap();
    assert_eq!(out, format!("{}\n", 3 * 1024 * 1024));
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("log line 0 with some padding"))
        .expect("the stderr line is logged");
    assert!(
        line.contains("mqtrigger::function") && line.contains("program=\"python3\""),
        "{line}"
    );
    assert!(log.contains("log line 15000 with some padding"));
    assert!(
        log.contains("\u{fffd}\u{fffd} not utf-8"),
        "bytes that are not UTF-8 are logged lossily"
    );
    // An invocation's log keeps 1 MiB (about 17,500 of these lines); the
    // rest is read, dropped and counted.
    assert!(!log.contains("log line 39999 with some padding"));
    assert!(!log.contains("hello from stderr"));
    let summary = log
        .lines()
        .find(|l| l.contains("more log lines"))
        .expect("the log says what it dropped");
    assert!(
        summary.contains("bytes) dropped: an invocation keeps at most 1 MiB of log")
            && summary.contains("program=\"python3\""),
        "{summary}"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_function_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let invoker = behave(
        &["hang", pid_file.to_str().unwrap()],
        Duration::from_secs(2),
    );
    let started = Instant::now();
    let err = invoker.invoke(Bytes::from_static(b"{}")).await.unwrap_err();
    assert!(
        matches!(err, InvokeError::Timeout(t) if t == Duration::from_secs(2)),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    let (function, grandchild) = read_pids(&pid_file);
    assert_reaped(function).await;
    assert_dead(grandchild).await;
}

#[tokio::test]
async fn a_finished_function_does_not_wait_for_what_it_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let invoker = behave(&["background", pid_file.to_str().unwrap()], LONG);
    let out = invoker.invoke(Bytes::from_static(b"{}")).await.unwrap();
    assert_eq!(out, "done\n");
    let (function, grandchild) = read_pids(&pid_file);
    assert_reaped(function).await;
    assert_dead(grandchild).await;
}

#[tokio::test]
async fn a_cancelled_invocation_kills_the_function_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let invoker = behave(&["hang", pid_file.to_str().unwrap()], LONG);
    let invocation = invoker.invoke(Bytes::from_static(b"{}"));
    let pid_written = async {
        while !std::fs::read_to_string(&pid_file).is_ok_and(|t| t.contains(' ')) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        r = invocation => panic!("the function was meant to hang: {r:?}"),
        _ = pid_written => {} // drops the invocation, as a shutting-down engine does
    }
    let (function, grandchild) = read_pids(&pid_file);
    assert_reaped(function).await;
    assert_dead(grandchild).await;
}

#[tokio::test]
async fn a_missing_program_is_a_config_error_naming_it() {
    let invoker = CommandInvoker::new(vec!["/no/such/handler".into()], BTreeMap::new(), None, LONG);
    let err = invoker.invoke(Bytes::from_static(b"{}")).await.unwrap_err();
    let InvokeError::ConfigNotValid(message) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        message,
        "function command `/no/such/handler` cannot be started: No such file or directory — check the function's `command`"
    );
}

#[tokio::test]
async fn a_program_that_is_not_executable_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("handler.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap(); // no +x
    let program = script.to_str().unwrap().to_owned();
    let invoker = CommandInvoker::new(vec![program.clone()], BTreeMap::new(), None, LONG);
    let err = invoker.invoke(Bytes::from_static(b"{}")).await.unwrap_err();
    let InvokeError::ConfigNotValid(message) = err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains(&format!("`{program}`")) && message.contains("Permission denied"),
        "{message}"
    );
}

#[test]
fn describe_names_the_command() {
    let invoker = CommandInvoker::new(
        vec!["python3".into(), "assets/functions/echo.py".into()],
        BTreeMap::new(),
        None,
        LONG,
    );
    assert_eq!(
        invoker.describe(),
        "command python3 assets/functions/echo.py"
    );
}
