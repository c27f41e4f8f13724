//! The `command` runtime with real processes.

use bytes::Bytes;
use mqtrigger::invoke::command::CommandInvoker;
use mqtrigger::invoke::{InvokeError, Invoker};
use std::collections::BTreeMap;
use std::time::Duration;

fn behave(args: &[&str], timeout: Duration) -> CommandInvoker {
    let script = format!("{}/tests/functions/behave.py", env!("CARGO_MANIFEST_DIR"));
    let mut command = vec!["python3".to_owned(), script];
    command.extend(args.iter().map(|a| a.to_string()));
    let env = BTreeMap::from([("GREETING".to_owned(), "hello from env".to_owned())]);
    CommandInvoker::new(command, env, timeout)
}

const LONG: Duration = Duration::from_secs(60);

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
    let InvokeError::Function {
        error_type,
        payload,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(error_type, "OrderInvalid");
    assert!(payload.contains("order 7 has no lines"), "{payload}");
}

#[tokio::test]
async fn a_crash_reports_the_exit_status_and_the_end_of_stderr() {
    let err = behave(&["crash"], LONG)
        .invoke(Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    let InvokeError::Function {
        error_type,
        payload,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(error_type, "Runtime.ExitError");
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["errorMessage"], "exit status 3");
    let stderr = payload["stderr"].as_str().unwrap();
    assert!(stderr.ends_with("Traceback: something broke"), "{stderr}");
    assert!(
        !stderr.contains("trace line 0\n") && stderr.len() <= 4096,
        "only the tail is kept"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_function_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let invoker = behave(
        &["hang", pid_file.to_str().unwrap()],
        Duration::from_secs(2),
    );
    let err = invoker.invoke(Bytes::from_static(b"{}")).await.unwrap_err();
    assert!(matches!(err, InvokeError::Timeout(_)), "{err:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild was killed with its group; give the kernel a moment to reap it.
    let mut alive = true;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        alive = !stat.is_empty() && !stat.contains(") Z ");
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive, "the grandchild {pid} outlived the timeout");
}

#[tokio::test]
async fn a_missing_program_is_a_config_error_naming_it() {
    let invoker = CommandInvoker::new(vec!["/no/such/handler".into()], BTreeMap::new(), LONG);
    let err = invoker.invoke(Bytes::from_static(b"{}")).await.unwrap_err();
    let InvokeError::ConfigNotValid(message) = err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("/no/such/handler") && message.contains("No such file"),
        "{message}"
    );
}
