//! `mqtrigger bench`: the engine against the broker's own ceiling, in one run.
//!
//! 1. fill a fresh queue (each body carries its publish time);
//! 2. drain it with a plain consumer (the ceiling, [`ceiling`]);
//! 3. fill it again and drain it through a real mapping to a real function
//!    (a Lambda Invoke API server or a process per batch, both child
//!    processes that log each message's publish→invoke latency);
//! 4. report messages/s, the ratio, latency percentiles, peak RSS and CPU.
//!
//! With `--rate`, messages are published at that rate while each phase
//! consumes, which is how latency is measured. `--idle-mappings` measures
//! what idle mappings cost instead.

mod ceiling;
mod function;
pub mod probe;
pub use function::sink;
use function::start_function;
mod report;

pub use report::{IdleReport, Phase, Report};

use crate::config::Config;
use crate::engine::{Control, EngineEvent};
use crate::mapping::{MappingSpec, ScalingConfig, SourceAccessConfiguration, SourceAccessType};
use crate::publish::{Message, Publisher};
use crate::store::Store;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionKind {
    Lambda,
    Command,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub broker: String,
    pub messages: usize,
    pub size: usize,
    pub batch_size: u32,
    /// MaximumBatchingWindowInSeconds; None is Lambda's default, 0.5 s.
    pub window_secs: Option<u32>,
    pub function: FunctionKind,
    /// A Lambda-compatible endpoint to invoke instead of bench's own.
    pub endpoint: Option<Endpoint>,
    pub concurrency: u32,
    /// The function sleeps this long per batch (a slow function).
    pub function_sleep: Duration,
    /// Publish at this many messages/s during each phase instead of before.
    pub rate: Option<u32>,
    pub skip_ceiling: bool,
    /// Where to write the engine phase's stage marks (`crate::stamps`).
    pub stages: Option<PathBuf>,
}

/// A function bench does not start: its URL, and where it logs each
/// request's "arrived_ns answered_ns" (if it does).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub timing_log: Option<PathBuf>,
}

const BROKER_ARN: &str = "arn:aws:mq:us-east-1:000000000000:broker:bench:b-bench";
const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench";

/// What a broker URL holds, split for the config file.
struct BrokerUrl {
    stomp: bool,
    endpoint: String,
    username: String,
    password: String,
    vhost: String,
}

fn parse_broker(url: &str) -> Result<BrokerUrl> {
    let (scheme, rest) = url.split_once("://").context(
        "--broker must be amqp://user:pass@host:port/vhost or stomp://user:pass@host:port",
    )?;
    let stomp = match scheme {
        "amqp" => false,
        "stomp" => true,
        other => bail!("--broker: bench speaks amqp:// and stomp://, not {other}://"),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = authority
        .rsplit_once('@')
        .unwrap_or(("guest:guest", authority));
    let (username, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let vhost = match path {
        "" => "/".to_owned(),
        p => p.replace("%2f", "/").replace("%2F", "/"),
    };
    Ok(BrokerUrl {
        stomp,
        endpoint: format!("{scheme}://{hostport}"),
        username: username.to_owned(),
        password: password.to_owned(),
        vhost,
    })
}

/// Runs every phase and reports.
pub async fn run(options: &BenchOptions) -> Result<Report> {
    if options.messages == 0 {
        bail!("--messages must be at least 1");
    }
    let broker = parse_broker(&options.broker)?;
    let queue = format!(
        "mqtrigger-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    let k = options.batch_size.max(1) as usize;
    // The ceiling gets the engine's prefetch.
    let prefetch = crate::engine::prefetch(options.batch_size, options.concurrency);

    let ceiling = if options.skip_ceiling {
        None
    } else {
        let publishing = publish_phase(options, &queue).await?;
        reset_measures();
        let cpu = probe::cpu_time();
        let drained = if broker.stomp {
            ceiling::drain_stomp(&options.broker, &queue, options.messages, k, prefetch).await?
        } else {
            let prefetch = prefetch.min(u32::from(u16::MAX)) as u16;
            ceiling::drain_amqp(&options.broker, &queue, options.messages, k, prefetch).await?
        };
        let cpu = probe::cpu_time().saturating_sub(cpu);
        publishing.finish().await?;
        Some(Phase::new(
            options.messages,
            drained.elapsed,
            drained.latencies,
            cpu,
            Vec::new(),
        ))
    };

    let latency_log = work.path().join("latency.log");
    let timing_log = work.path().join("timing.log");
    let (function_toml, server) = start_function(options, &latency_log, &timing_log)?;
    let timing_log = match &options.endpoint {
        Some(e) => e.timing_log.clone(),
        None => Some(timing_log),
    };
    let config = engine_config(options, &broker, &function_toml, work.path())?;
    let store = Store::open(&work.path().join("state"))?;
    let control = Control::start(config, store).await?;
    let mut events = control.subscribe();
    let publishing = publish_phase(options, &queue).await?;
    reset_measures();
    let cpu = probe::cpu_time();
    let phase_began = probe::now_ns();
    let spec = mapping_spec(options, &broker, &queue);
    if options.stages.is_some() {
        crate::stamps::start();
    }
    let created = control.create(spec).await?;
    let (elapsed, rss_samples) =
        wait_for_all(&control, &mut events, created.uuid, options.messages).await;
    let cpu = probe::cpu_time().saturating_sub(cpu);
    let invocations = control.stats(created.uuid).batches_invoked;
    control.shutdown().await;
    if let Some(path) = &options.stages {
        std::fs::write(path, crate::stamps::finish())
            .with_context(|| format!("cannot write the stage marks to {}", path.display()))?;
    }
    publishing.finish().await?;
    if let Some(log) = &timing_log {
        // A server may write its last spans a little later (ours does,
        // `SpanLog`): they are read once it has, and before it is stopped.
        probe::wait_for_spans(log, phase_began, invocations).await;
    }
    drop(server);
    let elapsed = elapsed?;
    let engine = Phase::new(
        options.messages,
        elapsed,
        probe::read_latencies(&latency_log),
        cpu,
        rss_samples,
    );
    let function = timing_log.map(|log| {
        let spans = probe::read_spans(&log);
        probe::function_timing(spans.into_iter().filter(|s| s.0 >= phase_began).collect())
    });
    let _ = crate::publish::delete_queue(&options.broker, &queue).await;
    Ok(Report::new(options, ceiling, engine, function))
}

fn reset_measures() {
    probe::reset_peak_rss();
    tracing::info!("RSS before the phase: {:.1} MB", probe::rss_mb());
}

/// Publishing for a phase: all of it now, or at `--rate` in the background.
enum Publishing {
    Done,
    Running(std::thread::JoinHandle<Result<()>>),
}

impl Publishing {
    async fn finish(self) -> Result<()> {
        match self {
            Publishing::Done => Ok(()),
            Publishing::Running(thread) => {
                tokio::task::spawn_blocking(move || {
                    thread
                        .join()
                        .unwrap_or_else(|_| bail!("the publisher panicked"))
                })
                .await?
            }
        }
    }
}

async fn publish_phase(options: &BenchOptions, queue: &str) -> Result<Publishing> {
    let Some(rate) = options.rate else {
        publish(&options.broker, queue, options.messages, options.size, None).await?;
        return Ok(Publishing::Done);
    };
    // Declare the queue first, so the consumer finds it.
    publish(&options.broker, queue, 0, options.size, None).await?;
    let (url, queue, n, size) = (
        options.broker.clone(),
        queue.to_owned(),
        options.messages,
        options.size,
    );
    // Its own thread and runtime: the publisher's timing must not wait on
    // the engine's tasks.
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(publish(&url, &queue, n, size, Some(rate)))
    });
    Ok(Publishing::Running(thread))
}

async fn publish(url: &str, queue: &str, n: usize, size: usize, rate: Option<u32>) -> Result<()> {
    let mut publisher = Publisher::connect(url, queue, &Message::default(), false).await?;
    let mut ticks = rate.map(|r| {
        let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        i
    });
    for _ in 0..n {
        if let Some(t) = &mut ticks {
            t.tick().await;
            publisher.send(&probe::stamped_body(size)).await?;
            publisher.flush().await?;
        } else {
            publisher.send(&probe::stamped_body(size)).await?;
        }
    }
    publisher.finish().await
}

fn engine_config(
    options: &BenchOptions,
    broker: &BrokerUrl,
    function: &str,
    dir: &Path,
) -> Result<Config> {
    let engine = if broker.stomp { "activemq" } else { "rabbitmq" };
    let text = format!(
        r#"
[[brokers]]
name = "bench"
engine = "{engine}"
arn = "{BROKER_ARN}"
endpoints = ["{endpoint}"]

[secrets]
"{SECRET_ARN}" = {{ username = {user:?}, password = {pass:?} }}

[functions.bench]
{function}
"#,
        endpoint = broker.endpoint,
        user = broker.username,
        pass = broker.password,
    );
    let _ = options;
    let path: PathBuf = dir.join("bench.toml");
    Ok(Config::parse(&path, &text)?)
}

fn mapping_spec(options: &BenchOptions, broker: &BrokerUrl, queue: &str) -> MappingSpec {
    let mut access = vec![SourceAccessConfiguration {
        kind: SourceAccessType::BasicAuth,
        uri: SECRET_ARN.into(),
    }];
    if !broker.stomp {
        access.push(SourceAccessConfiguration {
            kind: SourceAccessType::VirtualHost,
            uri: broker.vhost.clone(),
        });
    }
    MappingSpec {
        function_name: "bench".into(),
        event_source_arn: BROKER_ARN.into(),
        queues: vec![queue.into()],
        batch_size: Some(options.batch_size),
        maximum_batching_window_in_seconds: options.window_secs,
        enabled: Some(true),
        filter_criteria: None,
        source_access_configurations: access,
        scaling_config: Some(ScalingConfig {
            maximum_concurrency: Some(options.concurrency.max(1)),
        }),
        ..Default::default()
    }
}

/// Waits until `n` messages succeeded: the time from the first message
/// received to the last one acked, and RSS every tenth of the way.
async fn wait_for_all(
    control: &Control,
    events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
    uuid: uuid::Uuid,
    n: usize,
) -> (Result<Duration>, Vec<f64>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut first: Option<Instant> = None;
    let (mut done, mut next_sample, mut samples) = (0, n.div_ceil(10), Vec::new());
    let mut invoking = Duration::ZERO;
    let (mut batches, mut biggest) = (0usize, 0usize);
    while done < n {
        match events.recv().await {
            Ok(EngineEvent::BatchStarted { mapping, bytes, .. }) if mapping == uuid => {
                batches += 1;
                biggest = biggest.max(bytes);
            }
            Ok(EngineEvent::Received { mapping, .. }) if mapping == uuid => {
                first.get_or_insert_with(Instant::now);
            }
            Ok(EngineEvent::BatchSucceeded {
                mapping,
                messages,
                latency,
                ..
            }) if mapping == uuid => {
                done += messages;
                invoking += latency;
                while done >= next_sample && next_sample <= n {
                    samples.push(probe::rss_mb());
                    next_sample += n.div_ceil(10);
                }
            }
            Ok(EngineEvent::DeadLettered {
                mapping, reason, ..
            }) if mapping == uuid => {
                return (
                    Err(anyhow::anyhow!("messages were dead-lettered: {reason}")),
                    samples,
                );
            }
            Ok(EngineEvent::MappingChanged(m))
                if m.uuid == uuid && m.state == crate::mapping::State::Disabled =>
            {
                let why = m.state_detail.clone().unwrap_or_default();
                return (
                    Err(anyhow::anyhow!(
                        "the mapping stopped: {} {why}",
                        m.state_transition_reason
                    )),
                    samples,
                );
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                // Too far behind to count: read the total another way.
                let _ = control;
                return (
                    Err(anyhow::anyhow!(
                        "bench missed {missed} engine events; try a larger --batch-size"
                    )),
                    samples,
                );
            }
            Err(RecvError::Closed) => {
                return (Err(anyhow::anyhow!("the engine stopped")), samples);
            }
        }
    }
    let elapsed = first.map(|f| f.elapsed()).unwrap_or_default();
    tracing::info!(
        "{batches} batches, {:.0} messages each on average, the largest event {biggest} bytes; the function was being invoked {:.0}% of the time ({:?} of {:?})",
        n as f64 / batches.max(1) as f64,
        invoking.as_secs_f64() * 100.0 / elapsed.as_secs_f64().max(1e-9),
        invoking,
        elapsed
    );
    (Ok(elapsed), samples)
}

/// `--idle-mappings M`: what M mappings on empty queues cost.
pub async fn idle(broker_url: &str, mappings: usize, seconds: u64) -> Result<IdleReport> {
    let broker = parse_broker(broker_url)?;
    let work = tempfile::tempdir()?;
    let options = BenchOptions {
        broker: broker_url.to_owned(),
        messages: 0,
        size: 0,
        batch_size: 100,
        window_secs: None,
        function: FunctionKind::Command,
        endpoint: None,
        concurrency: 1,
        function_sleep: Duration::ZERO,
        rate: None,
        skip_ceiling: true,
        stages: None,
    };
    let (function, _server) = start_function(
        &options,
        &work.path().join("latency.log"),
        &work.path().join("timing.log"),
    )?;
    let config = engine_config(&options, &broker, &function, work.path())?;
    let control = Control::start(config, Store::open(&work.path().join("state"))?).await?;
    let prefix = format!(
        "mqtrigger-idle-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let queues: Vec<String> = (0..mappings).map(|i| format!("{prefix}-{i}")).collect();
    for q in &queues {
        publish(broker_url, q, 0, 0, None).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = probe::rss_mb();
    for q in &queues {
        control.create(mapping_spec(&options, &broker, q)).await?;
    }
    // Let every mapping connect and settle before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = probe::cpu_time();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = probe::cpu_time().saturating_sub(cpu);
    let after = probe::rss_mb();
    let connections = probe::connections_to(broker_port(&broker.endpoint));
    let running = control.list()?.iter().filter(|m| m.is_running()).count();
    control.shutdown().await;
    if let Err(e) = crate::publish::delete_queues(broker_url, &queues).await {
        tracing::warn!("cannot delete the bench's queues: {e:#}");
    }
    Ok(IdleReport {
        mappings,
        running,
        rss_before_mb: before,
        rss_after_mb: after,
        mb_per_mapping: (after - before) / mappings.max(1) as f64,
        broker_connections: connections,
        core_percent: cpu.as_secs_f64() / started.elapsed().as_secs_f64() * 100.0,
    })
}

fn broker_port(endpoint: &str) -> u16 {
    let default = if endpoint.starts_with("stomp") {
        61613
    } else {
        5672
    };
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(default)
}
