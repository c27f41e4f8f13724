//! `mqtrigger serve` (and other runs of the binary) as child processes:
//! killed when the test ends, their log shown when it fails, stopped as a
//! user would, a run that should end by itself held to a limit, and a free
//! loopback port for one to listen on.

use std::path::Path;
use std::time::Duration;

/// A child process (`mqtrigger serve`) that is killed when the test ends,
/// also when it fails: a panicking test must not leave a consumer running
/// on the shared broker.
pub struct KillOnDrop {
    child: std::process::Child,
    /// Where the process writes its log, if anywhere: its last lines are
    /// printed when a test panics with the process still running, which is
    /// how a failure in CI says what the service was doing.
    log: Option<std::path::PathBuf>,
}

impl KillOnDrop {
    pub fn new(child: std::process::Child) -> KillOnDrop {
        KillOnDrop { child, log: None }
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.child
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.child
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let (true, Some(log)) = (std::thread::panicking(), &self.log) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- the last lines of {}:\n{}",
                log.display(),
                tail.join("\n")
            );
        }
    }
}

/// `mqtrigger serve` on CONFIG and STATE, its output appended to
/// `STATE.log` (shown when the test fails).
pub fn spawn_serve(config: &Path, state: &Path) -> KillOnDrop {
    let log = state.with_extension("log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("the serve log can be written");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args(["serve", "--config"])
        .arg(config)
        .arg("--state")
        .arg(state)
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .expect("the mqtrigger binary runs");
    KillOnDrop {
        child,
        log: Some(log),
    }
}

/// Stops a serve process as a user would (SIGTERM) and waits for it.
pub fn stop(mut child: KillOnDrop) -> std::process::ExitStatus {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

/// A loopback address nothing listens on (yet).
pub fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `serve --api ADDR` on DIR/mqtrigger.toml and DIR/state, its log appended
/// to DIR/serve.log.
pub fn serve_api(dir: &Path, addr: std::net::SocketAddr, more: &[&str]) -> KillOnDrop {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    KillOnDrop::new(
        std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(["serve", "--config"])
            .arg(dir.join("mqtrigger.toml"))
            .arg("--state")
            .arg(dir.join("state"))
            .args(["--api", &addr.to_string()])
            .args(more)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the mqtrigger binary runs"),
    )
}

/// Runs a command that should end by itself (a refused start): its output,
/// or Err when it still ran after `limit` (it was killed then), so a start
/// that should have been refused fails the test instead of hanging it.
pub fn run_to_its_end(
    command: &mut std::process::Command,
    limit: Duration,
) -> Result<std::process::Output, String> {
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the command runs");
    let until = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return Err(format!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child.wait_with_output().unwrap())
}
