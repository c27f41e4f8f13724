//! INTERIM implementation by the lead so the engine can be tested; the invoker helper replaces this file entirely.
use super::{InvokeError, Invoker};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

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

    async fn run(&self, event: Bytes) -> Result<Bytes, InvokeError> {
        let mut child = tokio::process::Command::new(&self.command[0])
            .args(&self.command[1..])
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                InvokeError::ConfigNotValid(format!(
                    "function command `{}` cannot be started: {e} — check the function's `command`",
                    self.command[0]
                ))
            })?;
        let mut stdin = child.stdin.take().expect("piped");
        let write = async move {
            let _ = stdin.write_all(&event).await;
        };
        let run = async { tokio::join!(write, child.wait_with_output()).1 };
        let out = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| InvokeError::Timeout(self.timeout))?
            .map_err(|e| InvokeError::Transient(e.to_string()))?;
        if out.status.success() {
            Ok(Bytes::from(out.stdout))
        } else {
            Err(InvokeError::Function {
                error_type: "Unhandled".into(),
                payload: String::from_utf8_lossy(&out.stdout).into_owned(),
            })
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
