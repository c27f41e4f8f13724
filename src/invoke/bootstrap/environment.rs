//! One execution environment: a `bootstrap` process and its Runtime API.
//!
//! Started with the environment Lambda gives a runtime, in a session of its
//! own (`crate::invoke::process_tree`); its stdout and stderr are the
//! function's log, each line tagged with the request under way (read by
//! the tasks of [`log_tap`]). It serves
//! one invocation at a time and is reused until it fails in a way that
//! leaves it unusable (it exited, timed out, or failed its init): then it
//! is dropped, which kills every process it started.

mod log_tap;

use super::Settings;
use super::runtime_api::{Invocation, Reply, RuntimeApi};
use crate::invoke::command::{signal_name, spawn_error};
use crate::invoke::process_tree::{Pid, ProcessTree, own_session, session_of};
use crate::invoke::{InvokeError, MAX_RESPONSE_BYTES};
use bytes::Bytes;
use log_tap::{LogTap, read_lines, unread_bytes};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The variable Lambda names the log stream by; unique to an environment.
const STREAM_VARIABLE: &str = "AWS_LAMBDA_LOG_STREAM_NAME";
/// Lambda's limit on a runtime's init, apart from the function's timeout.
const INIT_LIMIT: Duration = Duration::from_secs(10);
/// How long an invocation's log stays open after its answer for the
/// runtime's next ask (its lines written until then are the invocation's).
const LOG_CLOSES_AFTER: Duration = Duration::from_secs(1);

/// How an invocation failed.
pub enum Failure {
    /// The function answered with an error; the environment is fine.
    Handled(InvokeError),
    /// The environment cannot go on (exited, timed out, init failed).
    Fatal(InvokeError),
}

pub struct Environment {
    api: RuntimeApi,
    child: tokio::process::Child,
    /// Every process of the environment; dropping it kills them.
    tree: ProcessTree,
    log: Arc<LogTap>,
    /// Its stdout and stderr pipes again, to see whether the readers have
    /// taken all that was written.
    pipes: Vec<OwnedFd>,
    spawned: Instant,
    /// Told when the runtime first asks for work (its init done); taken by
    /// the first invocation, which waits for it.
    ready: Option<oneshot::Receiver<Instant>>,
    /// How long the init took, until the first REPORT says so.
    init: Option<Duration>,
}

impl Environment {
    /// Starts the process; it initializes on its own, and asks for work.
    pub async fn start(settings: &Settings) -> Result<Environment, InvokeError> {
        let api = RuntimeApi::start(&settings.name).await.map_err(|e| {
            InvokeError::Transient(format!(
                "cannot listen on loopback for the Runtime API: {e}"
            ))
        })?;
        let Some((program, args)) = settings.argv.split_first() else {
            return Err(InvokeError::ConfigNotValid(
                "`bootstrap` is empty: give the program and its arguments".into(),
            ));
        };
        // The log stream's name is unique to the environment, and every
        // process the runtime starts inherits it: it marks them as this
        // environment's (ProcessTree::with_marker).
        let stream = format!(
            "{}/[$LATEST]{}",
            chrono::Utc::now().format("%Y/%m/%d"),
            uuid::Uuid::new_v4().simple()
        );
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(lambda_environment(settings, &api, &stream))
            .envs(&settings.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        own_session(&mut command);
        if let Some(dir) = &settings.cwd {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|e| {
            let error = spawn_error(program, &e);
            match error {
                InvokeError::ConfigNotValid(m) => {
                    InvokeError::ConfigNotValid(m.replace("`command`", "`bootstrap`"))
                }
                other => other,
            }
        })?;
        let tree = ProcessTree::new(child.id()).with_marker(STREAM_VARIABLE, &stream);
        if let Some(pid) = child.id() {
            api.admit_session_of(pid);
        }
        let log = Arc::new(LogTap::new(&settings.name));
        let mut pipes = Vec::new();
        if let Some(out) = child.stdout.take() {
            pipes.extend(out.as_fd().try_clone_to_owned());
            tokio::spawn(read_lines(out, log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            pipes.extend(err.as_fd().try_clone_to_owned());
            tokio::spawn(read_lines(err, log.clone()));
        }
        let mut api = api;
        let ready = api.ready.take();
        tracing::info!(function = %settings.name, pid = child.id(), "execution environment started");
        Ok(Environment {
            api,
            child,
            tree,
            log,
            pipes,
            spawned: Instant::now(),
            ready,
            init: None,
        })
    }

    /// Whether the process is still there to take work.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Hands the process one event; its answer, and the log lines it wrote.
    pub async fn invoke(
        &mut self,
        settings: &Settings,
        event: Bytes,
    ) -> (Result<Bytes, Failure>, Vec<String>) {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.log.begin(&request_id);
        self.log
            .say(&format!("START RequestId: {request_id} Version: $LATEST"));
        // As on Lambda, the init has its own limit: the function's timeout,
        // its deadline and its Duration count from the hand-over.
        let started = Instant::now();
        let (outcome, elapsed) = match self.initialized(&request_id).await {
            Ok(()) => {
                let handed_over = Instant::now();
                let asks = *self.api.asked.borrow();
                let outcome = self.hand_over(settings, &request_id, event).await;
                let elapsed = handed_over.elapsed();
                if !matches!(outcome, Err(Failure::Fatal(_))) {
                    self.log_ends(asks).await;
                }
                (outcome, elapsed)
            }
            Err(failure) => (Err(failure), started.elapsed()),
        };
        self.log.say_dropped();
        self.log.say(&format!("END RequestId: {request_id}"));
        self.log.say(&report(
            &request_id,
            elapsed,
            settings.memory_mb,
            self.max_memory_mb(),
            self.init.take(),
        ));
        (outcome, self.log.end())
    }

    /// Waits until the runtime asks for work again (it had asked `asks`
    /// times when it got this invocation), or [`LOG_CLOSES_AFTER`]: what
    /// it wrote until then is this invocation's, as on Lambda. A line a
    /// runtime writes asynchronously (Node's `console.log` to a pipe) can
    /// reach us after its answer: it is in the pipe before the next ask.
    async fn log_ends(&mut self, asks: u64) {
        let ends = async {
            let mut asked = self.api.asked.clone();
            let _ = asked.wait_for(|n| *n > asks).await;
            // The readers of its stdout and stderr are tasks of their own:
            // wait until they have taken what was in the pipes.
            while self.pipes.iter().any(|p| unread_bytes(p) > 0) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let _ = tokio::time::timeout(LOG_CLOSES_AFTER, ends).await;
    }

    /// Waits, on a cold start, until the runtime asks for its first invocation.
    async fn initialized(&mut self, request_id: &str) -> Result<(), Failure> {
        let Some(ready) = self.ready.take() else {
            return Ok(());
        };
        let mut init_failed = self.api.init_error.clone();
        tokio::select! {
            at = ready => {
                if let Ok(at) = at {
                    self.init = Some(at.saturating_duration_since(self.spawned));
                }
                Ok(())
            }
            status = self.child.wait() => {
                self.tree.kill();
                Err(Failure::Fatal(exited(request_id, status)))
            }
            Ok(init) = init_failed.wait_for(Option::is_some) => {
                Err(Failure::Fatal(failed_init(init.as_ref())))
            }
            _ = tokio::time::sleep(INIT_LIMIT) => {
                self.tree.kill();
                Err(Failure::Fatal(error(
                    "Sandbox.Timedout",
                    &format!(
                        "RequestId: {request_id} Error: the runtime did not finish its init within {:.2} seconds (Lambda's init limit)",
                        INIT_LIMIT.as_secs_f64()
                    ),
                )))
            }
        }
    }

    async fn hand_over(
        &mut self,
        settings: &Settings,
        request_id: &str,
        event: Bytes,
    ) -> Result<Bytes, Failure> {
        let deadline =
            chrono::Utc::now() + chrono::Duration::from_std(settings.timeout).unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.to_owned(),
            event,
            deadline_ms: deadline.timestamp_millis(),
            function_arn: settings.function_arn.clone(),
            trace_id: trace_id(),
            reply: tx,
        };
        if self.api.invocations.send(invocation).await.is_err() {
            return Err(Failure::Fatal(InvokeError::Transient(
                "the Runtime API stopped".into(),
            )));
        }
        self.wait(settings, request_id, rx).await
    }

    async fn wait(
        &mut self,
        settings: &Settings,
        request_id: &str,
        reply: oneshot::Receiver<Reply>,
    ) -> Result<Bytes, Failure> {
        let mut init_failed = self.api.init_error.clone();
        tokio::select! {
            answer = reply => match answer {
                Ok(Reply::Response(body)) => Ok(body),
                Ok(Reply::Error { error_type, body }) => Err(Failure::Handled(InvokeError::Function {
                    error_type,
                    payload: String::from_utf8_lossy(&body).into_owned(),
                })),
                Ok(Reply::TooLarge(len)) => Err(Failure::Handled(too_large(len))),
                Err(_) => Err(Failure::Fatal(InvokeError::Transient("the Runtime API stopped".into()))),
            },
            status = self.child.wait() => {
                self.tree.kill();
                Err(Failure::Fatal(exited(request_id, status)))
            }
            Ok(init) = init_failed.wait_for(Option::is_some) => {
                Err(Failure::Fatal(failed_init(init.as_ref())))
            }
            _ = tokio::time::sleep(settings.timeout) => {
                // As on Lambda: the sandbox is not reused after a timeout.
                self.tree.kill();
                Err(Failure::Fatal(error(
                    "Sandbox.Timedout",
                    &format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        settings.timeout.as_secs_f64()
                    ),
                )))
            }
        }
    }

    /// The peak resident memory of the environment's processes, in MB.
    fn max_memory_mb(&self) -> u64 {
        let Some(session) = self.tree.session() else {
            return 0;
        };
        peak_rss_kb(session).div_ceil(1024)
    }
}

/// The process ended under an invocation: Lambda's Runtime.ExitError.
fn exited(request_id: &str, status: std::io::Result<std::process::ExitStatus>) -> InvokeError {
    let how = match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal: {}", signal_name(signal)),
            _ => s.to_string(),
        },
        Err(e) => e.to_string(),
    };
    error(
        "Runtime.ExitError",
        &format!("RequestId: {request_id} Error: Runtime exited with error: {how}"),
    )
}

/// The runtime reported at /runtime/init/error.
fn failed_init(init: Option<&super::runtime_api::InitError>) -> InvokeError {
    match init {
        Some(init) => InvokeError::Function {
            error_type: init.error_type.clone(),
            payload: String::from_utf8_lossy(&init.body).into_owned(),
        },
        None => error("Runtime.InitError", "the runtime's init failed"),
    }
}

/// Lambda's `REPORT` line.
fn report(
    request_id: &str,
    elapsed: Duration,
    memory_mb: u32,
    used_mb: u64,
    init: Option<Duration>,
) -> String {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {used_mb} MB",
        ms.ceil() as u64
    );
    if let Some(init) = init {
        line.push_str(&format!(
            "\tInit Duration: {:.2} ms",
            init.as_secs_f64() * 1000.0
        ));
    }
    line
}

/// The variables Lambda sets for a runtime.
fn lambda_environment(
    settings: &Settings,
    api: &RuntimeApi,
    stream: &str,
) -> Vec<(String, String)> {
    let root = settings
        .cwd
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .and_then(|d| std::fs::canonicalize(&d).ok().or(Some(d)))
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    [
        ("AWS_LAMBDA_RUNTIME_API", api.addr.to_string()),
        ("_HANDLER", settings.handler.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", settings.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            settings.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", settings.name),
        ),
        (STREAM_VARIABLE, stream.to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", settings.region.clone()),
        ("AWS_DEFAULT_REGION", settings.region.clone()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_mqtrigger".into()),
        ("LAMBDA_TASK_ROOT", root),
        ("TZ", ":UTC".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// An X-Ray trace header, as Lambda passes one along: the trace of the
/// batch's message when it carried one, else a new one, not sampled.
fn trace_id() -> String {
    if let Some(trace) = crate::trace::current() {
        return trace.to_xray();
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        chrono::Utc::now().timestamp(),
        &id[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

fn error(error_type: &str, message: &str) -> InvokeError {
    InvokeError::Function {
        error_type: error_type.into(),
        payload: serde_json::json!({ "errorType": error_type, "errorMessage": message })
            .to_string(),
    }
}

fn too_large(len: usize) -> InvokeError {
    error(
        "Function.ResponseSizeTooLarge",
        &format!(
            "Response payload size ({len} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
        ),
    )
}

/// The sum of the peak RSS (VmHWM) of the processes in a session, in kB.
fn peak_rss_kb(session: Pid) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<Pid>().ok()) else {
            continue;
        };
        if session_of(pid) != Some(session) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}
