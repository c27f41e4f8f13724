//! The function's log, as an execution environment's readers take it in:
//! the tasks that read the process's stdout and stderr line by line, and
//! the [`LogTap`] they hand each line to, which logs it and keeps the
//! lines of the invocation under way for the console. Apart from
//! `environment.rs` because it is all about lines and their limits, and
//! nothing about starting or driving the process.

use crate::invoke::log_lines::{Budget, Lines};
use crate::sync::Unpoisoned;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Log lines kept per invocation for the console (the newest).
const LINES_KEPT: usize = 200;
/// A log line kept for the console is cut at this many characters, 4 KiB
/// of ASCII (the log file keeps up to `log_lines::MAX_LINE_BYTES`).
const MAX_LINE_CHARS: usize = 4096;

/// The function's log: every line goes to mqtrigger's log; the lines of
/// the invocation under way are also kept for it.
pub(super) struct LogTap {
    function: String,
    current: Mutex<Period>,
}

/// One stretch of the log: an invocation's (from its START to the
/// runtime's next ask), or the time between invocations. Each has its own
/// [`Budget`], so a flood in one never silences the next.
#[derive(Default)]
struct Period {
    /// The invocation's request id and its lines kept for the console;
    /// `None` between invocations.
    invocation: Option<(String, Vec<String>)>,
    budget: Budget,
}

impl LogTap {
    /// The log of `function`, between invocations.
    pub(super) fn new(function: &str) -> LogTap {
        LogTap {
            function: function.to_owned(),
            current: Mutex::new(Period::default()),
        }
    }

    fn period(&self) -> std::sync::MutexGuard<'_, Period> {
        self.current.locked()
    }

    fn line(&self, text: &str) {
        let mut current = self.period();
        if !current.budget.admit(text) {
            return;
        }
        Self::record(&self.function, &mut current, text);
    }

    fn record(function: &str, current: &mut Period, text: &str) {
        let request = current.invocation.as_ref().map(|(id, _)| id.as_str());
        tracing::info!(
            target: "mqtrigger::function",
            function = %function,
            request_id = request.unwrap_or("-"),
            "{text}"
        );
        if let Some((_, lines)) = current.invocation.as_mut() {
            let mut kept: String = text.chars().take(MAX_LINE_CHARS).collect();
            if kept.len() < text.len() {
                kept.push_str(" … [cut: the console keeps the first 4 KiB of a log line]");
            }
            lines.push(kept);
            if lines.len() > LINES_KEPT {
                lines.remove(0);
            }
        }
    }

    /// A line of mqtrigger's own (START, END, REPORT): always kept.
    pub(super) fn say(&self, text: &str) {
        Self::record(&self.function, &mut self.period(), text);
    }

    /// Says how much of the period's log was dropped, if any was.
    pub(super) fn say_dropped(&self) {
        let mut current = self.period();
        if let Some(summary) = current.budget.summary() {
            Self::record(&self.function, &mut current, &summary);
        }
    }

    /// Ends the period under way and starts another.
    fn next_period(&self, invocation: Option<String>) -> Vec<String> {
        let mut current = self.period();
        let ended = std::mem::replace(
            &mut *current,
            Period {
                invocation: invocation.map(|id| (id, Vec::new())),
                budget: Budget::default(),
            },
        );
        ended.invocation.map(|(_, lines)| lines).unwrap_or_default()
    }

    pub(super) fn begin(&self, request_id: &str) {
        self.say_dropped();
        self.next_period(Some(request_id.to_owned()));
    }

    pub(super) fn end(&self) -> Vec<String> {
        self.next_period(None)
    }
}

/// Bytes written to a pipe and not read yet.
pub(super) fn unread_bytes(pipe: &OwnedFd) -> libc::c_int {
    let mut unread: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points
    // to a live c_int; the descriptor is ours and open (an OwnedFd).
    let ok = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut unread) };
    if ok == 0 { unread } else { 0 }
}

/// Reads one of the process's pipes to its end, line by line, holding
/// at most one line's limit of it.
pub(super) async fn read_lines(mut stream: impl AsyncRead + Unpin, log: Arc<LogTap>) {
    let mut lines = Lines::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.push(&buf[..n], |line| log.line(&line)),
        }
    }
    lines.finish(|line| log.line(&line));
}
