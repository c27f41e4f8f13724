//! Bench figures, for people (a table) and scripts (`--output json`).

use super::probe::{self, Latency};
use super::{BenchOptions, FunctionKind};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// One drain of the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub messages: usize,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub latency: Latency,
    pub peak_rss_mb: f64,
    pub cpu_seconds_per_million: f64,
    /// RSS every tenth of the messages (engine phase).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rss_samples_mb: Vec<f64>,
}

impl Phase {
    pub fn new(
        messages: usize,
        elapsed: Duration,
        latencies: Vec<u64>,
        cpu: Duration,
        rss_samples_mb: Vec<f64>,
    ) -> Phase {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Phase {
            messages,
            seconds,
            messages_per_second: messages as f64 / seconds,
            latency: probe::latency(latencies),
            peak_rss_mb: probe::peak_rss_mb(),
            cpu_seconds_per_million: cpu.as_secs_f64() * 1e6 / messages.max(1) as f64,
            rss_samples_mb,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub broker: String,
    pub messages: usize,
    pub size: usize,
    pub batch_size: u32,
    /// None: Lambda's default of 0.5 s.
    pub window_seconds: Option<u32>,
    pub function: FunctionKind,
    pub function_sleep_ms: u64,
    pub concurrency: u32,
    pub rate: Option<u32>,
    pub ceiling: Option<Phase>,
    pub engine: Phase,
    /// The engine phase from the function's side (None: an endpoint that
    /// logs no timings).
    pub function_timing: Option<probe::FunctionTiming>,
    /// Engine messages/s over the ceiling's.
    pub ratio: Option<f64>,
}

impl Report {
    pub fn new(
        options: &BenchOptions,
        ceiling: Option<Phase>,
        engine: Phase,
        function_timing: Option<probe::FunctionTiming>,
    ) -> Report {
        let ratio = ceiling
            .as_ref()
            .map(|c| engine.messages_per_second / c.messages_per_second);
        Report {
            broker: redact(&options.broker),
            messages: options.messages,
            size: options.size,
            batch_size: options.batch_size,
            window_seconds: options.window_secs,
            function: options.function,
            function_sleep_ms: options.function_sleep.as_millis() as u64,
            concurrency: options.concurrency,
            rate: options.rate,
            ceiling,
            engine,
            function_timing,
            ratio,
        }
    }
}

/// The broker URL without its password.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (userinfo, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:…@{host}")
        }
        _ => url.to_owned(),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} messages of {} bytes from {}, BatchSize {}, window {}, function {:?}{}, concurrency {}{}",
            self.messages,
            self.size,
            self.broker,
            self.batch_size,
            self.window_seconds
                .map(|w| format!("{w} s"))
                .unwrap_or_else(|| "0.5 s (default)".into()),
            self.function,
            if self.function_sleep_ms > 0 {
                format!(" sleeping {} ms", self.function_sleep_ms)
            } else {
                String::new()
            },
            self.concurrency,
            self.rate
                .map(|r| format!(", published at {r}/s"))
                .unwrap_or_else(|| ", queue filled first".into()),
        )?;
        writeln!(
            f,
            "{:<10} {:>10} {:>9} {:>9} {:>9} {:>12} {:>14}",
            "", "msgs/s", "p50 ms", "p99 ms", "max ms", "peak RSS MB", "CPU s/M msgs"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, p: &Phase| {
            writeln!(
                f,
                "{:<10} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>12.1} {:>14.2}",
                name,
                p.messages_per_second,
                p.latency.p50_ms,
                p.latency.p99_ms,
                p.latency.max_ms,
                p.peak_rss_mb,
                p.cpu_seconds_per_million
            )
        };
        if let Some(c) = &self.ceiling {
            row(f, "ceiling", c)?;
        }
        row(f, "engine", &self.engine)?;
        if let Some(r) = self.ratio {
            writeln!(f, "engine/ceiling: {:.1}%", r * 100.0)?;
        }
        if let Some(t) = &self.function_timing {
            writeln!(
                f,
                "function busy {:.1}% of the engine phase ({} invocations); from an answer to the next request: p50 {:.0} µs, p99 {:.0} µs",
                t.busy_percent, t.invocations, t.gap_p50_us, t.gap_p99_us
            )?;
        }
        if !self.engine.rss_samples_mb.is_empty() {
            let samples: Vec<String> = self
                .engine
                .rss_samples_mb
                .iter()
                .map(|m| format!("{m:.1}"))
                .collect();
            writeln!(f, "engine RSS MB at each tenth: {}", samples.join(" "))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub mappings: usize,
    /// How many were Enabled at the end (the rest stopped with a reason).
    pub running: usize,
    pub rss_before_mb: f64,
    pub rss_after_mb: f64,
    pub mb_per_mapping: f64,
    /// TCP connections this process held to the broker's port.
    pub broker_connections: usize,
    /// CPU while idle, as a percentage of one core.
    pub core_percent: f64,
}

impl fmt::Display for IdleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} idle mappings ({} running) on {} broker connection(s): RSS {:.1} MB → {:.1} MB, {:.2} MB each; CPU {:.2}% of one core",
            self.mappings,
            self.running,
            self.broker_connections,
            self.rss_before_mb,
            self.rss_after_mb,
            self.mb_per_mapping,
            self.core_percent
        )
    }
}
