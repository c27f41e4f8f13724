//! What bench measures with: publish times carried in message bodies,
//! latency logs written where the function runs, and this process's
//! memory and CPU.

use crate::sync::Unpoisoned;
use base64::Engine;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// A body starts with its publish time: 20 decimal digits of nanoseconds.
pub const STAMP_LEN: usize = 20;

/// The wall clock in nanoseconds since the epoch: the bench's stamps and
/// the Lambda test server's spans read the same clock.
pub use crate::invoke::lambda_server::now_ns;

/// A body of `size` bytes (at least the stamp) stamped with now.
pub fn stamped_body(size: usize) -> Vec<u8> {
    let mut body = format!("{:020}", now_ns()).into_bytes();
    body.resize(size.max(STAMP_LEN), b'x');
    body
}

pub fn stamp_of(body: &[u8]) -> Option<u128> {
    std::str::from_utf8(body.get(..STAMP_LEN)?)
        .ok()?
        .parse()
        .ok()
}

/// The publish times in an event: each record's `data` is base64, and the
/// first 28 characters of it decode to the stamp. The event is not parsed.
pub fn stamps_in_event(event: &[u8]) -> Vec<u128> {
    let Ok(text) = std::str::from_utf8(event) else {
        return Vec::new();
    };
    text.match_indices("\"data\":\"")
        .filter_map(|(at, key)| {
            let start = at + key.len();
            let prefix = text.get(start..start + 28)?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(prefix)
                .ok()?;
            stamp_of(&decoded)
        })
        .collect()
}

/// Appends one line per message: microseconds from publish to `at_ns`.
pub fn log_latencies(log: &Path, stamps: &[u128], at_ns: u128) -> std::io::Result<()> {
    let mut text = String::with_capacity(stamps.len() * 8);
    for s in stamps {
        text.push_str(&(at_ns.saturating_sub(*s) / 1000).to_string());
        text.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    f.write_all(text.as_bytes())
}

pub fn read_latencies(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// p50, p99 and max, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn latency(mut micros: Vec<u64>) -> Latency {
    if micros.is_empty() {
        return Latency::default();
    }
    micros.sort_unstable();
    let at = |q: f64| {
        let i = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
        micros[i] as f64 / 1000.0
    };
    Latency {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: *micros.last().unwrap_or(&0) as f64 / 1000.0,
    }
}

/// Appends one invocation's span to a timing log: when its request
/// arrived and when it was answered, in ns since the epoch. The same format
/// as `scripts/compare/endpoint.py`'s, so both read the same way.
pub fn log_span(log: &Path, started_ns: u128, answered_ns: u128) -> std::io::Result<()> {
    append_spans(log, &[(started_ns, answered_ns)])
}

/// Appends spans to a timing log in one write.
fn append_spans(log: &Path, spans: &[(u128, u128)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (started_ns, answered_ns) in spans {
        text.push_str(&format!("{started_ns} {answered_ns}\n"));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?
        .write_all(text.as_bytes())
}

/// How often [`SpanLog`] writes what it holds.
pub const SPAN_LOG_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// A timing log for a server whose spans must cost it nothing between an
/// answer and the next request: spans are kept in memory and appended to
/// the file from a thread of its own every [`SPAN_LOG_EVERY`]. (Written
/// inline, the file's open and write came after the answer's timestamp and
/// before the answer left, and counted as the engine's gap.)
pub struct SpanLog {
    spans: std::sync::Arc<std::sync::Mutex<Vec<(u128, u128)>>>,
}

impl SpanLog {
    pub fn start(log: std::path::PathBuf) -> SpanLog {
        let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = std::sync::Arc::downgrade(&spans);
        std::thread::spawn(move || {
            while let Some(held) = held.upgrade() {
                let taken = std::mem::take(&mut *held.locked());
                drop(held);
                if !taken.is_empty()
                    && let Err(e) = append_spans(&log, &taken)
                {
                    tracing::warn!("cannot write {}: {e}", log.display());
                }
                std::thread::sleep(SPAN_LOG_EVERY);
            }
        });
        SpanLog { spans }
    }

    pub fn record(&self, arrived_ns: u128, answered_ns: u128) {
        let mut spans = self.spans.locked();
        spans.push((arrived_ns, answered_ns));
    }
}

/// Waits until `log` holds `count` spans that began at `since_ns` or
/// later, for at most a second and a half (a server of someone else's may
/// log fewer).
pub async fn wait_for_spans(log: &Path, since_ns: u128, count: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        let logged = read_spans(log).iter().filter(|s| s.0 >= since_ns).count();
        if logged as u64 >= count {
            return;
        }
        tokio::time::sleep(SPAN_LOG_EVERY).await;
    }
}

pub fn read_spans(log: &Path) -> Vec<(u128, u128)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// How the function spent a phase, from its side.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct FunctionTiming {
    pub invocations: usize,
    /// The share of the time from the first request to the last answer in
    /// which at least one invocation was under way.
    pub busy_percent: f64,
    /// From one answer to the next request (with one invocation at a time,
    /// the time the function waited for mqtrigger), in microseconds.
    pub gap_p50_us: f64,
    pub gap_p99_us: f64,
}

pub fn function_timing(mut spans: Vec<(u128, u128)>) -> FunctionTiming {
    spans.sort_unstable();
    let (Some(first), Some(last)) = (spans.first().map(|s| s.0), spans.iter().map(|s| s.1).max())
    else {
        return FunctionTiming::default();
    };
    // The union of the spans, and the idle stretches between them.
    let (mut busy, mut gaps) = (0u128, Vec::new());
    let (mut start, mut end) = spans[0];
    for &(s, e) in &spans[1..] {
        if s > end {
            busy += end - start;
            gaps.push(((s - end) / 1000) as u64);
            (start, end) = (s, e);
        } else {
            end = end.max(e);
        }
    }
    busy += end - start;
    if gaps.is_empty() {
        gaps.push(0);
    }
    let gap = latency(gaps);
    FunctionTiming {
        invocations: spans.len(),
        busy_percent: busy as f64 * 100.0 / (last - first).max(1) as f64,
        gap_p50_us: gap.p50_ms * 1000.0,
        gap_p99_us: gap.p99_ms * 1000.0,
    }
}

/// Resets this process's peak RSS to its current RSS (Linux ≥ 4.0).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn peak_rss_mb() -> f64 {
    status_kb("VmHWM:") as f64 / 1024.0
}

pub fn rss_mb() -> f64 {
    status_kb("VmRSS:") as f64 / 1024.0
}

/// This process's established TCP connections to `port` (from /proc).
pub fn connections_to(port: u16) -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .flat_map(|t| {
            std::fs::read_to_string(t)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let remote_port = f
                .get(2)
                .and_then(|r| r.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            f.get(3) == Some(&"01")
                && remote_port == Some(port)
                && f.get(9).is_some_and(|i| inodes.contains(*i))
        })
        .count()
}

/// User plus system CPU time of this process so far.
pub fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_the_event() {
        let body = stamped_body(100);
        assert_eq!(body.len(), 100);
        let stamp = stamp_of(&body).unwrap();
        let record = crate::event::rmq::record(&Default::default(), &body, false);
        let event = [b"{\"x\":[".as_slice(), &record, b",", &record, b"]}"].concat();
        assert_eq!(stamps_in_event(&event), vec![stamp, stamp]);
    }

    #[test]
    fn the_function_is_busy_in_the_union_of_its_spans_and_waits_in_the_gaps() {
        // 0-10 and 5-20 overlap; 30-40 follows a 10 µs gap; 41-50 a 1 µs one.
        let us = |a: u128, b: u128| (a * 1000, b * 1000);
        let t = function_timing(vec![us(30, 40), us(0, 10), us(5, 20), us(41, 50)]);
        assert_eq!(t.invocations, 4);
        assert!((t.busy_percent - 78.0).abs() < 1e-9, "{t:?}");
        assert_eq!((t.gap_p50_us, t.gap_p99_us), (1.0, 10.0));
        assert_eq!(function_timing(Vec::new()), FunctionTiming::default());
    }

    #[test]
    fn percentiles() {
        let l = latency((1..=100).map(|i| i * 1000).collect());
        assert_eq!((l.p50_ms, l.p99_ms, l.max_ms), (50.0, 99.0, 100.0));
    }
}
