//! Where the binary's log goes: stderr for `serve`, a file for the console
//! (which owns the terminal), as text or JSON.

use clap::ValueEnum;

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// An attached console's log, appended to.
pub fn attached_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// The console owns the terminal: without --log, its log goes nowhere.
pub fn discarded_log() -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).open("/dev/null")
}

pub fn open_log(state: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::DirBuilderExt;
    // The state holds message bodies: only this user may read it (as `serve` has it).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state)?;
    mqtrigger::store::private_file(&state.join("mqtrigger.log"))
}

/// What is logged unless RUST_LOG says otherwise. The SDK's instance
/// metadata client warns in a multi-kilobyte Debug dump when there is no
/// instance metadata (any machine but EC2); mqtrigger says what it means
/// for a function in one line of its own (`invoke::lambda`).
pub const LOG_FILTER: &str = "info,lapin=off,aws=warn,aws_config::imds=error";

pub fn init_logging(format: LogFormat, file: Option<std::fs::File>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (format, file) {
        // Colours only for a person at a terminal, not in a file.
        (LogFormat::Text, None) => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init(),
        (LogFormat::Json, None) => builder.json().with_writer(std::io::stderr).init(),
        (LogFormat::Text, Some(f)) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        (LogFormat::Json, Some(f)) => builder.json().with_writer(std::sync::Mutex::new(f)).init(),
    }
}
