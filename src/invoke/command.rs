//! The `command` runtime: a local program started once per batch.
//!
//! The event JSON goes to its stdin, its stdout is the response, and each
//! line of its stderr goes to the log. Exit 0 is success; any other exit, a
//! signal or the timeout is a function error, as a crash or timeout is on Lambda.

use super::{InvokeError, Invoker, MAX_RESPONSE_BYTES};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;

/// How much of stderr an error payload carries.
const STDERR_TAIL_BYTES: usize = 4096;

pub struct CommandInvoker {
    command: Vec<String>,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

impl CommandInvoker {
    pub fn new(command: Vec<String>, env: BTreeMap<String, String>, timeout: Duration) -> Self {
        Self {
            command,
            env,
            timeout,
        }
    }

    fn spawn(&self) -> Result<Child, InvokeError> {
        let program = self.command.first().map(String::as_str).unwrap_or_default();
        tokio::process::Command::new(program)
            .args(&self.command[1..])
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                InvokeError::ConfigNotValid(format!(
                    "function command `{program}` cannot be started: {e} — check the function's `command`"
                ))
            })
    }

    async fn run(&self, event: Bytes) -> Result<Bytes, InvokeError> {
        let mut child = self.spawn()?;
        let pgid = child.id();
        let program = self.command[0].clone();
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let write = async move {
            // A program that exits without reading its input is judged by
            // its exit status, not by the broken pipe.
            let _ = stdin.write_all(&event).await;
            drop(stdin);
        };
        let work = async {
            let ((), out, tail, status) = tokio::join!(
                write,
                read_limited(stdout),
                log_stderr(stderr, &program),
                child.wait()
            );
            (out, tail, status)
        };
        let (out, tail, status) = match tokio::time::timeout(self.timeout, work).await {
            Ok(done) => done,
            Err(_) => {
                if let Some(pgid) = pgid {
                    // SAFETY: signals the process group we created; no memory is touched.
                    unsafe { libc::killpg(pgid as i32, libc::SIGKILL) };
                }
                let _ = child.wait().await;
                return Err(InvokeError::Timeout(self.timeout));
            }
        };
        let status =
            status.map_err(|e| InvokeError::Transient(format!("waiting for `{program}`: {e}")))?;
        let out =
            out.map_err(|e| InvokeError::Transient(format!("reading `{program}`'s output: {e}")))?;
        if status.success() {
            return match out {
                Output::Complete(bytes) => Ok(Bytes::from(bytes)),
                Output::TooLarge => Err(InvokeError::Function {
                    error_type: "Function.ResponseSizeTooLarge".into(),
                    payload: format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
                }),
            };
        }
        let stdout = match &out {
            Output::Complete(bytes) => bytes.as_slice(),
            Output::TooLarge => &[],
        };
        Err(function_error(status, stdout, &tail))
    }
}

enum Output {
    Complete(Vec<u8>),
    TooLarge,
}

async fn read_limited(stdout: impl AsyncRead + Unpin) -> std::io::Result<Output> {
    let mut buf = Vec::new();
    let mut limited = stdout.take(MAX_RESPONSE_BYTES as u64 + 1);
    limited.read_to_end(&mut buf).await?;
    if buf.len() > MAX_RESPONSE_BYTES {
        // Drain the rest so the program is not blocked writing to a full pipe.
        tokio::io::copy(&mut limited.into_inner(), &mut tokio::io::sink()).await?;
        return Ok(Output::TooLarge);
    }
    Ok(Output::Complete(buf))
}

/// Logs stderr line by line and keeps its tail for the error payload.
async fn log_stderr(stderr: impl AsyncRead + Unpin, program: &str) -> String {
    let mut lines = BufReader::new(stderr).lines();
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut tail_bytes = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "mqtrigger::function", program, "{line}");
        tail_bytes += line.len() + 1;
        tail.push_back(line);
        while tail_bytes > STDERR_TAIL_BYTES && tail.len() > 1 {
            tail_bytes -= tail.pop_front().map(|l| l.len() + 1).unwrap_or_default();
        }
    }
    tail.into_iter().collect::<Vec<_>>().join("\n")
}

/// Lambda's error shape: the program's own `{"errorType","errorMessage"}`
/// when it printed one, else one made from the exit status and stderr.
fn function_error(
    status: std::process::ExitStatus,
    stdout: &[u8],
    stderr_tail: &str,
) -> InvokeError {
    if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(stdout)
        && obj.contains_key("errorMessage")
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
        (None, Some(signal)) => ("Runtime.Signal", format!("killed by signal {signal}")),
        _ => ("Runtime.ExitError", status.to_string()),
    };
    let payload = serde_json::json!({ "errorType": error_type, "errorMessage": message, "stderr": stderr_tail });
    InvokeError::Function {
        error_type: error_type.into(),
        payload: payload.to_string(),
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
