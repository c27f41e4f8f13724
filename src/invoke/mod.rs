//! Functions: one trait, several runtimes.
//!
//! An [`Invoker`] takes the event JSON of one batch and returns the
//! function's response, or says why the batch failed. The engine decides what
//! a failure means (retry, dead letter, stop the mapping) from [`InvokeError`].

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub mod bootstrap;
pub mod command;
pub mod lambda;
mod lambda_answer;
mod lambda_http;
pub mod lambda_server;
pub mod lanes;
pub mod log_lines;
pub(crate) mod process_tree;

/// Lambda's default function timeout.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// Lambda's largest function timeout: 14 minutes for event source mappings of MQ.
pub const MAX_TIMEOUT_SECS: u64 = 840;
/// Lambda's synchronous response payload limit.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// `[functions.NAME]` in the config file. Exactly one of `command`,
/// `bootstrap` or `lambda` is set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// A local program, started once per batch: event JSON on stdin, the
    /// response on stdout.
    pub command: Option<Vec<String>>,
    /// A Lambda runtime (a program that speaks the Lambda Runtime API),
    /// started on first use and kept warm.
    pub bootstrap: Option<Vec<String>>,
    /// `bootstrap`'s `_HANDLER` (default: its last argument).
    pub handler: Option<String>,
    /// `bootstrap`'s AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB (default 128).
    pub memory_size: Option<u32>,
    /// The directory `command` or `bootstrap` starts in (and LAMBDA_TASK_ROOT).
    pub cwd: Option<std::path::PathBuf>,
    /// Environment variables for `command` or `bootstrap`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Function name or ARN for aws-sdk-lambda Invoke.
    pub lambda: Option<String>,
    pub region: Option<String>,
    /// A Lambda-compatible endpoint (LocalStack, `cargo lambda watch`, a test server).
    pub endpoint_url: Option<String>,
    /// An AWS shared-config profile for credentials.
    pub profile: Option<String>,
    /// Seconds, at most 840 (Lambda's limit for MQ triggers).
    pub timeout: Option<u64>,
}

impl FunctionConfig {
    /// A `command`'s timeout: `timeout`, else Lambda's default of 3 s. (The
    /// `lambda` runtime waits `timeout`, else 840 s, plus 5 s: the function's
    /// own timeout is configured on Lambda.)
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS))
    }

    /// Lambda's rules, as sentences that name the field to fix.
    pub fn validate(&self) -> Result<(), String> {
        let kinds = [
            self.command.is_some(),
            self.bootstrap.is_some(),
            self.lambda.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => {
                return Err(
                    "set `command = [\"program\", \"arg\"]`, `bootstrap = [\"runtime\", \"handler\"]` or `lambda = \"function name or ARN\"`"
                        .into(),
                );
            }
            1 => {}
            _ => return Err("set one of `command`, `bootstrap` or `lambda`, not several".into()),
        }
        if self.command.as_ref().is_some_and(Vec::is_empty) {
            return Err("`command` is empty: give the program and its arguments".into());
        }
        if self.bootstrap.as_ref().is_some_and(Vec::is_empty) {
            return Err("`bootstrap` is empty: give the runtime and its arguments, e.g. [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]".into());
        }
        if let Some(m) = self.memory_size
            && !(128..=10240).contains(&m)
        {
            return Err(format!(
                "`memory_size = {m}` is out of range: Lambda's memory is 128 to 10240 MB"
            ));
        }
        if self.bootstrap.is_none() {
            for (key, set) in [
                ("handler", self.handler.is_some()),
                ("memory_size", self.memory_size.is_some()),
            ] {
                if set {
                    return Err(format!("`{key}` is for `bootstrap` functions only"));
                }
            }
        }
        if self.lambda.is_some() && self.cwd.is_some() {
            return Err("`cwd` is for `command` and `bootstrap` functions only".into());
        }
        if let Some(t) = self.timeout
            && (t == 0 || t > MAX_TIMEOUT_SECS)
        {
            return Err(format!(
                "`timeout = {t}` is out of range: a function's timeout is 1 to {MAX_TIMEOUT_SECS} seconds"
            ));
        }
        Ok(())
    }
}

/// What went wrong with one invocation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The function ran and failed (Lambda's `X-Amz-Function-Error`, or a
    /// non-zero exit). The batch is retried, then dead-lettered.
    #[error("function error {error_type}: {payload}")]
    Function { error_type: String, payload: String },
    /// The function did not answer within its timeout. Retried like an error.
    #[error("function timed out after {0:?}")]
    Timeout(Duration),
    /// The function cannot be invoked as configured (missing program, unknown
    /// function, access denied). The mapping stops with FUNCTION_CONFIG_NOT_VALID.
    #[error("{0}")]
    ConfigNotValid(String),
    /// The invoke itself failed (endpoint unreachable, throttled). Retried.
    #[error("invoke failed: {0}")]
    Transient(String),
}

impl InvokeError {
    /// One line, `Type: message`: a function error's errorType and
    /// errorMessage as the function gave them, else the error itself.
    pub fn summary(&self) -> String {
        let text = match self {
            InvokeError::Function {
                error_type,
                payload,
            } => {
                let message = serde_json::from_str::<serde_json::Value>(payload)
                    .ok()
                    .and_then(|v| v["errorMessage"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| payload.clone());
                format!("{error_type}: {message}")
            }
            other => other.to_string(),
        };
        crate::error_text::first_line(&text, 200)
    }
}

/// A batch's request did not go: the session ended before its turn came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotSent;

/// When one attempt's request may go to the function, and when the
/// function answered (the engine's side is `engine::turns`). An invoker
/// prepares all it can before it asks [`Turn::go`], so that the request
/// leaves the moment a slot frees.
pub trait Turn: Send + Sync {
    /// Waits until the request may go. Cancel-safe, and may be awaited
    /// again (the `lambda` runtime signs anew a request that waited long).
    fn go(&self) -> BoxFuture<'_, Result<(), NotSent>>;
    /// The request is on its way: the engine may say so now, without
    /// holding it up.
    fn sent(&self);
    /// The function answered. A success lets the next batch go at once,
    /// before this answer is even parsed.
    fn answered(&self, succeeded: bool);
}

/// What one invocation gave: the response or why it failed, and the lines
/// the function logged during it.
pub type Invoked = (Result<Bytes, InvokeError>, Vec<String>);

/// A function the engine can call with one batch's event.
pub trait Invoker: Send + Sync + 'static {
    /// Invokes the function synchronously (RequestResponse) with `event` and
    /// returns its response payload.
    fn invoke(&self, event: Bytes) -> BoxFuture<'_, Result<Bytes, InvokeError>>;
    /// The same, with the lines the function logged during it (Lambda's
    /// START, END and REPORT among them), for the console.
    fn invoke_logged(&self, event: Bytes) -> BoxFuture<'_, Invoked> {
        Box::pin(async move { (self.invoke(event).await, Vec::new()) })
    }
    /// The same, once it is the batch's turn (see [`Turn`]); None if the
    /// turn never came and nothing was sent. Invokers with nothing to
    /// prepare wait for the turn first.
    fn invoke_in_turn(&self, event: Bytes, turn: Arc<dyn Turn>) -> BoxFuture<'_, Option<Invoked>> {
        Box::pin(async move {
            turn.go().await.ok()?;
            turn.sent();
            let invoked = self.invoke_logged(event).await;
            turn.answered(invoked.0.is_ok());
            Some(invoked)
        })
    }
    /// What this invoker calls, for logs and the console ("command python3 echo.py").
    fn describe(&self) -> String;
    /// The thread its invocations are best driven from (see `lanes`);
    /// None: wherever the engine runs.
    fn lane(&self) -> Option<lanes::Lane> {
        None
    }
}

/// Builds the invoker for `[functions.NAME]`.
pub async fn build(name: &str, config: &FunctionConfig) -> Result<Arc<dyn Invoker>, InvokeError> {
    config.validate().map_err(InvokeError::ConfigNotValid)?;
    if let Some(cmd) = &config.command {
        return Ok(Arc::new(command::CommandInvoker::new(
            cmd.clone(),
            config.env.clone(),
            config.cwd.clone(),
            config.timeout(),
        )));
    }
    if let Some(argv) = &config.bootstrap {
        let region = crate::aws::environment_region().to_string();
        return Ok(Arc::new(bootstrap::BootstrapInvoker::new(
            bootstrap::Settings {
                name: name.to_owned(),
                argv: argv.clone(),
                env: config.env.clone(),
                cwd: config.cwd.clone(),
                handler: config
                    .handler
                    .clone()
                    .or_else(|| argv.last().cloned())
                    .unwrap_or_default(),
                timeout: config.timeout(),
                memory_mb: config.memory_size.unwrap_or(bootstrap::DEFAULT_MEMORY_MB),
                function_arn: crate::aws::local_function_arn(&region, name),
                region,
            },
        )));
    }
    let invoker = lambda::LambdaInvoker::new(config).await?;
    Ok(Arc::new(invoker))
}
