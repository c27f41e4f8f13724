//! The bench's function: `mqtrigger bench-sink` as a `command`, or a Lambda
//! endpoint on loopback, each logging when every message reached it.

use super::{BenchOptions, FunctionKind, probe};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the function as a child process; its config section.
pub(super) fn start_function(
    options: &BenchOptions,
    latency_log: &Path,
    timing_log: &Path,
) -> Result<(String, Option<ChildGuard>)> {
    let exe = std::env::current_exe().context("cannot find the mqtrigger binary")?;
    let sleep_ms = options.function_sleep.as_millis().to_string();
    let log = latency_log.display().to_string();
    let timing = timing_log.display().to_string();
    if let Some(endpoint) = &options.endpoint {
        if options.function != FunctionKind::Lambda {
            bail!("--endpoint-url is for --function lambda");
        }
        let url = &endpoint.url;
        return Ok((
            format!(
                "lambda = \"bench\"\nregion = \"us-east-1\"\nendpoint_url = {url:?}\ntimeout = 60\n"
            ),
            None,
        ));
    }
    match options.function {
        FunctionKind::Command => {
            let command = [
                exe.display().to_string(),
                "bench-sink".into(),
                "--latency-log".into(),
                log,
                "--timing-log".into(),
                timing,
                "--sleep-ms".into(),
                sleep_ms,
            ];
            Ok((format!("command = {command:?}\ntimeout = 60\n"), None))
        }
        FunctionKind::Lambda => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let listen = format!("127.0.0.1:{port}");
            let child = Command::new(&exe)
                .args(["lambda-server", "--listen", &listen, "--latency-log", &log])
                .args(["--timing-log", &timing])
                .args(["--sleep-ms", &sleep_ms])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start the Lambda Invoke API server")?;
            let guard = ChildGuard(child);
            let limit = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(&listen).is_err() {
                if Instant::now() > limit {
                    bail!("the Lambda Invoke API server did not start on {listen}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok((
                format!(
                    "lambda = \"bench\"\nregion = \"us-east-1\"\nendpoint_url = \"http://{listen}\"\ntimeout = 60\n"
                ),
                Some(guard),
            ))
        }
    }
}

/// Kills the child when the bench is done with it.
pub(super) struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mqtrigger bench-sink`: the command function. Logs each message's
/// latency, sleeps if asked, answers `{}`.
pub fn sink(
    latency_log: &Path,
    timing_log: Option<&Path>,
    sleep: Duration,
    fail_on: Option<&str>,
) -> Result<()> {
    use std::io::Read;
    let started = probe::now_ns();
    let mut event = Vec::new();
    std::io::stdin().read_to_end(&mut event)?;
    let at = probe::now_ns();
    probe::log_latencies(latency_log, &probe::stamps_in_event(&event), at)?;
    std::thread::sleep(sleep);
    if let Some(prefix) = fail_on
        && crate::event::bodies(&event)
            .iter()
            .any(|b| b.starts_with(prefix.as_bytes()))
    {
        println!(r#"{{"errorType":"SoakFailure","errorMessage":"a message asked to fail"}}"#);
        std::process::exit(1);
    }
    println!("{{}}");
    if let Some(log) = timing_log {
        probe::log_span(log, started, probe::now_ns())?;
    }
    Ok(())
}
