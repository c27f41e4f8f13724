//! The `command` runtime: a local program started once per batch.
//!
//! The event JSON goes to its stdin (then stdin is closed), its stdout is the
//! response, and each line of its stderr goes to the log. Exit 0 is success;
//! any other exit, a signal or the timeout is a function error, as a crash or
//! a timeout is on Lambda.
//!
//! The program runs in a session of its own ([`ProcessTree`]). When it exits,
//! or times out, or the invocation is cancelled, whatever is left of it is
//! killed: like a Lambda sandbox after its handler returns, nothing a
//! function started outlives the invocation, and no leftover process can
//! hold its output open.

use super::log_lines::{Budget, Lines};
use super::process_tree::{ProcessTree, own_session};
use super::{InvokeError, Invoker, MAX_RESPONSE_BYTES};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, VecDeque};
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How much of stderr an error payload carries.
const STDERR_TAIL_BYTES: usize = 4096;

pub struct CommandInvoker {
    command: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: Option<std::path::PathBuf>,
    timeout: Duration,
}

impl CommandInvoker {
    /// `command` is the program and its arguments; `env` is added to the
    /// environment mqtrigger runs in.
    pub fn new(
        command: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<std::path::PathBuf>,
        timeout: Duration,
    ) -> Self {
        Self {
            command,
            env,
            cwd,
            timeout,
        }
    }

    fn spawn(&self) -> Result<tokio::process::Child, InvokeError> {
        let Some((program, args)) = self.command.split_first() else {
            return Err(InvokeError::ConfigNotValid(
                "`command` is empty: give the program and its arguments".into(),
            ));
        };
        let mut command = tokio::process::Command::new(program);
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command
            .args(args)
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A cancelled invocation (the engine shutting down) kills it.
            .kill_on_drop(true);
        // The trace of its batch's message, as Lambda gives a function its
        // X-Ray header (and W3C's, for OpenTelemetry's own propagators).
        if let Some(trace) = crate::trace::current() {
            command
                .env("_X_AMZN_TRACE_ID", trace.to_xray())
                .env("TRACEPARENT", trace.to_w3c());
        }
        // Its own session, so a timeout kills what it started too.
        own_session(&mut command);
        command.spawn().map_err(|e| spawn_error(program, &e))
    }

    async fn run(&self, event: Bytes) -> Result<Bytes, InvokeError> {
        let mut child = self.spawn()?;
        let mut group = ProcessTree::new(child.id());
        let program = self.command[0].as_str();
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let write = async move {
            // A program that exits without reading its input is judged by
            // its exit status, not by the broken pipe.
            let _ = stdin.write_all(&event).await;
            drop(stdin);
        };
        let exit = async {
            let status = child.wait().await;
            // Leftovers (a background grandchild) must not keep the pipes open.
            group.kill();
            status
        };
        let work = async {
            let ((), out, tail, status) = tokio::join!(
                write,
                read_limited(stdout),
                log_stderr(stderr, program),
                exit
            );
            (out, tail, status)
        };
        let (out, tail, status) = match tokio::time::timeout(self.timeout, work).await {
            Ok(done) => done,
            Err(_) => {
                group.kill();
                // Reaps it: no zombie is left behind.
                let _ = child.wait().await;
                return Err(InvokeError::Timeout(self.timeout));
            }
        };
        let status =
            status.map_err(|e| InvokeError::Transient(format!("waiting for `{program}`: {e}")))?;
        let out =
            out.map_err(|e| InvokeError::Transient(format!("reading `{program}`'s output: {e}")))?;
        match (status.success(), out) {
            (true, Output::Complete(bytes)) => Ok(Bytes::from(bytes)),
            (true, Output::TooLarge(len)) => Err(too_large(len)),
            (false, Output::Complete(bytes)) => Err(function_error(status, &bytes, &tail)),
            (false, Output::TooLarge(_)) => Err(function_error(status, &[], &tail)),
        }
    }
}

impl Invoker for CommandInvoker {
    fn invoke(&self, event: Bytes) -> BoxFuture<'_, Result<Bytes, InvokeError>> {
        Box::pin(self.run(event))
    }

    fn describe(&self) -> String {
        format!("command {}", self.command.join(" "))
    }
}

/// A program that cannot be started is a configuration problem; running out
/// of processes or file descriptors is not.
pub(crate) fn spawn_error(program: &str, e: &std::io::Error) -> InvokeError {
    let reason = e.to_string();
    let reason = reason.split(" (os error").next().unwrap_or_default();
    let not_startable = matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied)
        || e.raw_os_error() == Some(libc::ENOEXEC);
    if not_startable {
        InvokeError::ConfigNotValid(format!(
            "function command `{program}` cannot be started: {reason} — check the function's `command`"
        ))
    } else {
        InvokeError::Transient(format!(
            "function command `{program}` cannot be started now: {reason}"
        ))
    }
}

enum Output {
    Complete(Vec<u8>),
    /// More than [`MAX_RESPONSE_BYTES`]; how many bytes in all.
    TooLarge(u64),
}

async fn read_limited(stdout: impl AsyncRead + Unpin) -> std::io::Result<Output> {
    let mut buf = Vec::new();
    let mut limited = stdout.take(MAX_RESPONSE_BYTES as u64 + 1);
    limited.read_to_end(&mut buf).await?;
    if buf.len() > MAX_RESPONSE_BYTES {
        // Drain the rest so the program is not blocked writing to a full pipe.
        let rest = tokio::io::copy(&mut limited.into_inner(), &mut tokio::io::sink()).await?;
        return Ok(Output::TooLarge(buf.len() as u64 + rest));
    }
    Ok(Output::Complete(buf))
}

/// Lambda's own error for a response over its limit.
fn too_large(len: u64) -> InvokeError {
    let error_type = "Function.ResponseSizeTooLarge";
    let message = format!(
        "response too large: the function wrote {len} bytes to stdout, more than the {MAX_RESPONSE_BYTES} bytes a response may have"
    );
    InvokeError::Function {
        error_type: error_type.into(),
        payload: serde_json::json!({ "errorType": error_type, "errorMessage": message })
            .to_string(),
    }
}

/// Logs stderr line by line (whatever its encoding; within the limits of
/// [`super::log_lines`]) and keeps its last [`STDERR_TAIL_BYTES`] for the
/// error payload. Reads to the end, so the program never blocks on a full
/// stderr pipe.
async fn log_stderr(mut stderr: impl AsyncRead + Unpin, program: &str) -> String {
    let mut budget = Budget::default();
    let mut log = |line: String| {
        if budget.admit(&line) {
            tracing::info!(target: "mqtrigger::function", program, "{line}");
        }
    };
    let mut lines = Lines::default();
    let mut tail: VecDeque<u8> = VecDeque::with_capacity(STDERR_TAIL_BYTES);
    let mut cut = false;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        tail.extend(chunk);
        if tail.len() > STDERR_TAIL_BYTES {
            cut = true;
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
        lines.push(chunk, &mut log);
    }
    lines.finish(&mut log);
    if let Some(summary) = budget.summary() {
        tracing::info!(target: "mqtrigger::function", program, "{summary}");
    }
    let mut tail = Vec::from(tail);
    if cut {
        // Start at a line boundary near the cut, or at least at a character.
        let start = match tail.iter().position(|&b| b == b'\n') {
            Some(i) if i < 512 && i + 1 < tail.len() => i + 1,
            _ => tail.iter().position(|&b| b & 0xC0 != 0x80).unwrap_or(0),
        };
        tail.drain(..start);
    }
    String::from_utf8_lossy(&tail).trim_end().to_owned()
}

/// Lambda's error shape: the program's own `{"errorType","errorMessage"}`
/// when it printed one, else one made from the exit status and stderr.
fn function_error(status: ExitStatus, stdout: &[u8], stderr_tail: &str) -> InvokeError {
    if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(stdout)
        && (obj.contains_key("errorMessage") || obj.contains_key("errorType"))
    {
        let error_type = obj
            .get("errorType")
            .and_then(|t| t.as_str())
            .unwrap_or("Unhandled")
            .to_owned();
        return InvokeError::Function {
            error_type,
            payload: String::from_utf8_lossy(stdout).into_owned(),
        };
    }
    let (error_type, message) = match (status.code(), status.signal()) {
        (Some(code), _) => ("Runtime.ExitError", format!("exit status {code}")),
        (None, Some(signal)) => (
            "Runtime.Signal",
            format!("killed by {}", signal_name(signal)),
        ),
        _ => ("Runtime.ExitError", status.to_string()),
    };
    let payload = serde_json::json!({
        "errorType": error_type,
        "errorMessage": message,
        "stderr": stderr_tail,
    });
    InvokeError::Function {
        error_type: error_type.into(),
        payload: payload.to_string(),
    }
}

pub(crate) fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal} ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_stderr_tail_is_the_last_lines_within_the_limit() {
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!("line {i}\n"));
        }
        let tail = log_stderr(text.as_bytes(), "test").await;
        assert!(tail.len() <= STDERR_TAIL_BYTES, "{}", tail.len());
        assert!(tail.starts_with("line "), "starts at a line: {tail:.20}");
        assert!(tail.ends_with("line 999"), "{tail}");
        assert!(tail.len() > STDERR_TAIL_BYTES - 20, "keeps ~4 KB");
    }

    #[tokio::test]
    async fn stderr_that_is_not_utf8_or_has_no_newline_is_still_read_to_the_end() {
        let mut bytes = vec![0xff, 0xfe, b'\n'];
        bytes.extend(std::iter::repeat_n(b'x', 100_000));
        bytes.extend(b"\nthe end");
        let tail = log_stderr(&bytes[..], "test").await;
        assert!(tail.ends_with("xxx\nthe end"), "{tail:.40}");
        assert!(tail.len() > STDERR_TAIL_BYTES - 10 && tail.len() <= STDERR_TAIL_BYTES);
    }

    #[test]
    fn a_lambda_shaped_stdout_is_the_error_payload() {
        let status = ExitStatus::from_raw(1 << 8);
        let out = br#"{"errorType":"Bad","errorMessage":"no"}"#;
        let InvokeError::Function {
            error_type,
            payload,
        } = function_error(status, out, "tail")
        else {
            panic!()
        };
        assert_eq!((error_type.as_str(), payload.as_bytes()), ("Bad", &out[..]));
        // Any other stdout: a synthesized payload with the exit status.
        let InvokeError::Function {
            error_type,
            payload,
        } = function_error(status, b"[1]", "tail")
        else {
            panic!()
        };
        assert_eq!(error_type, "Runtime.ExitError");
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload["errorMessage"], "exit status 1");
        assert_eq!(payload["stderr"], "tail");
    }
}
