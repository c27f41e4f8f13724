//! Prometheus metrics per mapping, read from the engine's own counts at
//! each scrape: a number here is the engine's number, never a sum of an
//! event stream that can drop what it lags behind on.
//!
//! Every series carries `mapping` (the UUID), `function` and `queue`. As
//! rendered: `mqtrigger_messages_{received,filtered,invoked,succeeded,failed,dead_lettered,redelivered}_total`,
//! `mqtrigger_batches_invoked_total`, `mqtrigger_messages_in_flight`,
//! `mqtrigger_batches_in_flight`, `mqtrigger_queue_backlog_messages` (what
//! waits in the queue, where the broker can say), `mqtrigger_batch_size_messages` and
//! `mqtrigger_function_latency_seconds` (histograms), and
//! `mqtrigger_mapping_state{state="…"}` (1 for the current state, 0 for the
//! others). A mapping with nothing counted yet shows its counters at 0.
//! With a store shared by several instances, each instance shows the
//! mappings it runs, and every series (the runtime's too) carries
//! `instance` (its id in `mqtrigger instances`): summed over the
//! instances, each mapping counts once.
//! Without labels: `mqtrigger_runtime_tasks`, the tasks alive in the
//! process's runtime (a leak shows as a count that only grows).

use crate::engine::stats::Histogram;
use crate::engine::{Control, EngineStats, MappingStats};
use crate::mapping::{Mapping, State};
use crate::source::backlog::Backlog;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

const STATES: [State; 7] = [
    State::Creating,
    State::Enabling,
    State::Enabled,
    State::Disabling,
    State::Disabled,
    State::Updating,
    State::Deleting,
];

type Count = fn(&MappingStats) -> u64;

/// The counters, as `(name without _total, help, count)`.
const COUNTERS: [(&str, &str, Count); 8] = [
    (
        "mqtrigger_messages_received",
        "Messages taken from the queue",
        |s| s.received,
    ),
    (
        "mqtrigger_messages_filtered",
        "Messages that matched no filter (acked, not invoked)",
        |s| s.filtered,
    ),
    (
        "mqtrigger_messages_invoked",
        "Messages sent to the function, every attempt",
        |s| s.invoked,
    ),
    (
        "mqtrigger_messages_succeeded",
        "Messages of batches the function accepted",
        |s| s.succeeded,
    ),
    (
        "mqtrigger_messages_failed",
        "Messages of failed invocations (each attempt)",
        |s| s.failed,
    ),
    (
        "mqtrigger_messages_dead_lettered",
        "Messages moved to the dead-letter destination",
        |s| s.dead_lettered,
    ),
    (
        "mqtrigger_messages_redelivered",
        "Messages the broker marked redelivered",
        |s| s.redelivered,
    ),
    (
        "mqtrigger_batches_invoked",
        "Invocations of the function",
        |s| s.batches_invoked,
    ),
];

const GAUGES: [(&str, &str, Count); 2] = [
    (
        "mqtrigger_messages_in_flight",
        "Messages in invocations under way",
        |s| s.in_flight_messages,
    ),
    (
        "mqtrigger_batches_in_flight",
        "Invocations under way",
        |s| s.in_flight_batches,
    ),
];

/// Lambda's ESM metrics (MetricsConfig `EventCount`), under Lambda's own
/// names, for the mappings that ask for them: each is one of the engine's
/// counts, as its help says. Exposed as gauges so Prometheus keeps the
/// names as Lambda writes them (a counter's gets `_total`).
const LAMBDA_EVENT_COUNTS: [(&str, &str, Count); 6] = [
    (
        "PolledEventCount",
        "Lambda's ESM metric: messages read from the queue (mqtrigger_messages_received_total)",
        |s| s.received,
    ),
    (
        "InvokedEventCount",
        "Lambda's ESM metric: messages sent to the function, each attempt (mqtrigger_messages_invoked_total)",
        |s| s.invoked,
    ),
    (
        "FilteredOutEventCount",
        "Lambda's ESM metric: messages no filter passed (mqtrigger_messages_filtered_total)",
        |s| s.filtered,
    ),
    (
        "FailedInvokeEventCount",
        "Lambda's ESM metric: messages of failed invocations, each attempt (mqtrigger_messages_failed_total)",
        |s| s.failed,
    ),
    (
        "DeletedEventCount",
        "Lambda's ESM metric: messages acked after the function accepted them (mqtrigger_messages_succeeded_total)",
        |s| s.succeeded,
    ),
    (
        "DroppedEventCount",
        "Lambda's ESM metric: messages dead-lettered (mqtrigger_messages_dead_lettered_total)",
        |s| s.dead_lettered,
    ),
];

type Labels = Vec<(&'static str, String)>;

fn labels(m: &Mapping, instance: Option<uuid::Uuid>) -> Labels {
    let mut labels = vec![
        ("mapping", m.uuid.to_string()),
        ("function", m.spec.function_name.clone()),
        ("queue", m.spec.queue().to_owned()),
    ];
    labels.extend(instance.map(|i| ("instance", i.to_string())));
    labels
}

/// What one scrape shows: the mappings and their counts at that moment.
#[derive(Debug, Default)]
pub struct Scrape {
    pub mappings: Vec<Mapping>,
    pub stats: EngineStats,
    /// Tasks alive in the runtime, when there is one.
    pub tasks: Option<i64>,
    /// With a shared store: this instance, whose mappings these are.
    pub instance: Option<uuid::Uuid>,
}

impl Scrape {
    /// The engine as it is now.
    pub fn of(control: &Control) -> anyhow::Result<Scrape> {
        let stats = control.all_stats();
        let instance = control.instance();
        let mut mappings = control.list()?;
        if let Some(me) = instance {
            // The others' mappings are on their /metrics.
            mappings.retain(|m| stats.owners.get(&m.uuid) == Some(&me));
        }
        Ok(Scrape {
            mappings,
            stats,
            tasks: tokio::runtime::Handle::try_current()
                .ok()
                .map(|r| r.metrics().num_alive_tasks() as i64),
            instance,
        })
    }

    /// Only the runtime's numbers (no engine): for tests.
    #[cfg(test)]
    fn of_runtime() -> Scrape {
        Scrape {
            tasks: tokio::runtime::Handle::try_current()
                .ok()
                .map(|r| r.metrics().num_alive_tasks() as i64),
            ..Scrape::default()
        }
    }

    /// The OpenMetrics text.
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }

    fn histogram(
        all: &[(Labels, &MappingStats)],
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        of: fn(&MappingStats) -> &Histogram,
    ) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, stats) in all {
            let h = of(stats);
            let buckets: Vec<(f64, u64)> = h
                .bounds
                .iter()
                .copied()
                .chain([f64::MAX])
                .zip(h.counts.iter().copied())
                .collect();
            family
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
        }
        Ok(())
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        // Borrowed, not cloned: a mapping's stats hold its recent batches.
        let none = MappingStats::default();
        let all: Vec<(Labels, &MappingStats)> = self
            .mappings
            .iter()
            .map(|m| {
                let counts = self.stats.mappings.get(&m.uuid).unwrap_or(&none);
                (labels(m, self.instance), counts)
            })
            .collect();
        for (name, help, count) in COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, stats) in &all {
                ConstCounter::new(count(stats)).encode(family.encode_family(labels)?)?;
            }
        }
        for (name, help, count) in GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (labels, stats) in &all {
                ConstGauge::new(count(stats) as i64).encode(family.encode_family(labels)?)?;
            }
        }
        let counting: Vec<&(Labels, &MappingStats)> = self
            .mappings
            .iter()
            .zip(&all)
            .filter(|(m, _)| m.spec.counts_events())
            .map(|(_, labelled)| labelled)
            .collect();
        if !counting.is_empty() {
            for (name, help, count) in LAMBDA_EVENT_COUNTS {
                let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                for (labels, stats) in &counting {
                    ConstGauge::new(count(stats) as i64).encode(family.encode_family(labels)?)?;
                }
            }
        }
        // Only where the broker said: an unknown backlog is no series,
        // rather than a 0 that reads as an empty queue.
        let mut family = encoder.encode_descriptor(
            "mqtrigger_queue_backlog_messages",
            "Messages waiting in the mapping's queue, as the broker last said",
            None,
            MetricType::Gauge,
        )?;
        for (labels, stats) in &all {
            if let Some((Backlog::Messages(n), _)) = &stats.backlog {
                ConstGauge::new(*n as i64).encode(family.encode_family(labels)?)?;
            }
        }
        Self::histogram(
            &all,
            &mut encoder,
            "mqtrigger_batch_size_messages",
            "Messages per invocation",
            |s| &s.batch_size,
        )?;
        Self::histogram(
            &all,
            &mut encoder,
            "mqtrigger_function_latency_seconds",
            "Time the function took for a batch it accepted",
            |s| &s.latency,
        )?;
        let mut family = encoder.encode_descriptor(
            "mqtrigger_mapping_state",
            "1 for the mapping's current state",
            None,
            MetricType::Gauge,
        )?;
        for m in &self.mappings {
            for state in STATES {
                let mut with_state = labels(m, self.instance);
                with_state.push(("state", state.to_string()));
                ConstGauge::new(i64::from(m.state == state))
                    .encode(family.encode_family(&with_state)?)?;
            }
        }
        if let Some(tasks) = self.tasks {
            let mut family = encoder.encode_descriptor(
                "mqtrigger_runtime_tasks",
                "Tasks alive in the runtime",
                None,
                MetricType::Gauge,
            )?;
            match self.instance {
                Some(i) => ConstGauge::new(tasks)
                    .encode(family.encode_family(&[("instance", i.to_string())])?)?,
                None => ConstGauge::new(tasks).encode(family)?,
            }
        }
        Ok(())
    }
}

/// Serves `GET /metrics` until `shutdown`.
/// `--metrics` on an address beyond loopback without `--metrics-public`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to serve metrics on {0}: they name every mapping, queue and function to anyone who can reach it. Listen on 127.0.0.1, or add --metrics-public to serve them beyond this machine"
)]
pub struct PublicMetrics(pub std::net::SocketAddr);

/// Metrics are not secret, but they say what runs here: serving them
/// beyond this machine must be asked for (`public`), as the keyless API
/// refuses to be.
pub fn check_listen(addr: std::net::SocketAddr, public: bool) -> Result<(), PublicMetrics> {
    if addr.ip().is_loopback() || public {
        Ok(())
    } else {
        Err(PublicMetrics(addr))
    }
}

pub async fn serve(
    control: Control,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || async move {
            match Scrape::of(&control) {
                Ok(scrape) => (
                    StatusCode::OK,
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    scrape.render(),
                ),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [("content-type", "text/plain; charset=utf-8")],
                    format!("cannot read the mappings: {e:#}\n"),
                ),
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
