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

pub mod command;
pub mod lambda;
pub mod lambda_server;

/// Lambda's default function timeout.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// Lambda's largest function timeout: 14 minutes for event source mappings of MQ.
pub const MAX_TIMEOUT_SECS: u64 = 840;
/// Lambda's synchronous response payload limit.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// `[functions.NAME]` in the config file. Exactly one of `command` or
/// `lambda` is set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// A local program, started once per batch: event JSON on stdin, the
    /// response on stdout.
    pub command: Option<Vec<String>>,
    /// Environment variables for `command`.
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
        match (&self.command, &self.lambda) {
            (Some(_), Some(_)) => return Err("set either `command` or `lambda`, not both".into()),
            (None, None) => {
                return Err(
                    "set `command = [\"program\", \"arg\"]` or `lambda = \"function name or ARN\"`"
                        .into(),
                );
            }
            (Some(cmd), None) if cmd.is_empty() => {
                return Err("`command` is empty: give the program and its arguments".into());
            }
            _ => {}
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

/// A function the engine can call with one batch's event.
pub trait Invoker: Send + Sync + 'static {
    /// Invokes the function synchronously (RequestResponse) with `event` and
    /// returns its response payload.
    fn invoke(&self, event: Bytes) -> BoxFuture<'_, Result<Bytes, InvokeError>>;
    /// What this invoker calls, for logs and the console ("command python3 echo.py").
    fn describe(&self) -> String;
}

/// Builds the invoker for a `[functions.NAME]` entry.
pub async fn build(config: &FunctionConfig) -> Result<Arc<dyn Invoker>, InvokeError> {
    config.validate().map_err(InvokeError::ConfigNotValid)?;
    if let Some(cmd) = &config.command {
        return Ok(Arc::new(command::CommandInvoker::new(
            cmd.clone(),
            config.env.clone(),
            config.timeout(),
        )));
    }
    let invoker = lambda::LambdaInvoker::new(config).await?;
    Ok(Arc::new(invoker))
}
