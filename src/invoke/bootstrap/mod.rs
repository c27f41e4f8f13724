//! The `bootstrap` runtime: an unmodified Lambda handler, run by its own
//! runtime client (`python3 -m awslambdaric app.handler`, a `lambda_runtime`
//! binary, `npx aws-lambda-ric index.handler`) against the Lambda Runtime
//! API that mqtrigger serves on loopback ([`runtime_api`]).
//!
//! As on Lambda, an execution environment ([`environment`]) starts on first
//! use and stays warm: one process per batch under way (so up to the
//! mapping's MaximumConcurrency), each reused for the next batch. A thrown
//! error is a function error and leaves the process warm; a timeout, a
//! crash or a failed init ends the process, and the next start waits a
//! little longer each time this happens in a row.

mod environment;
mod peers;
pub mod runtime_api;

use super::{InvokeError, Invoker};
use crate::sync::Unpoisoned;
use bytes::Bytes;
use environment::{Environment, Failure};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Lambda's default memory size, in MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// The first wait before starting again after an environment failed, doubling to [`MAX_RESTART_WAIT`].
const FIRST_RESTART_WAIT: Duration = Duration::from_millis(100);
const MAX_RESTART_WAIT: Duration = Duration::from_secs(2);

/// A `[functions.NAME]` with `bootstrap`, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The function's name (AWS_LAMBDA_FUNCTION_NAME).
    pub name: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// `_HANDLER`: `handler`, else the last argument of `bootstrap`.
    pub handler: String,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub function_arn: String,
    pub region: String,
}

pub struct BootstrapInvoker {
    settings: Settings,
    /// Warm environments waiting for a batch.
    idle: Mutex<Vec<Environment>>,
    /// Environments that failed in a row (reset by one that answers).
    failures: Mutex<u32>,
}

impl BootstrapInvoker {
    pub fn new(settings: Settings) -> BootstrapInvoker {
        BootstrapInvoker {
            settings,
            idle: Mutex::new(Vec::new()),
            failures: Mutex::new(0),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, u32> {
        self.failures.locked()
    }

    /// A warm environment, or a new one (after the back-off, if the last ones failed).
    async fn environment(&self) -> Result<Environment, InvokeError> {
        loop {
            let warm = self.idle.locked().pop();
            match warm {
                Some(mut env) => {
                    if env.alive() {
                        return Ok(env);
                    }
                    // It exited while idle: dropped, and the next is tried.
                }
                None => break,
            }
        }
        let failed = *self.failures();
        if failed > 0 {
            let wait = FIRST_RESTART_WAIT
                .saturating_mul(1 << (failed - 1).min(16))
                .min(MAX_RESTART_WAIT);
            tokio::time::sleep(wait).await;
        }
        Environment::start(&self.settings).await
    }

    async fn run(&self, event: Bytes) -> (Result<Bytes, InvokeError>, Vec<String>) {
        let mut env = match self.environment().await {
            Ok(env) => env,
            Err(e) => return (Err(e), Vec::new()),
        };
        let (outcome, log) = env.invoke(&self.settings, event).await;
        let result = match outcome {
            Ok(body) => {
                *self.failures() = 0;
                self.keep(env);
                Ok(body)
            }
            Err(Failure::Handled(e)) => {
                *self.failures() = 0;
                self.keep(env);
                Err(e)
            }
            Err(Failure::Fatal(e)) => {
                *self.failures() += 1;
                // Dropping it kills its process group.
                drop(env);
                Err(e)
            }
        };
        (result, log)
    }

    fn keep(&self, env: Environment) {
        self.idle.locked().push(env);
    }
}

impl Invoker for BootstrapInvoker {
    fn invoke(&self, event: Bytes) -> BoxFuture<'_, Result<Bytes, InvokeError>> {
        Box::pin(async move { self.run(event).await.0 })
    }

    fn invoke_logged(
        &self,
        event: Bytes,
    ) -> BoxFuture<'_, (Result<Bytes, InvokeError>, Vec<String>)> {
        Box::pin(self.run(event))
    }

    fn describe(&self) -> String {
        format!("bootstrap {}", self.settings.argv.join(" "))
    }
}
