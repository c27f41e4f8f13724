//! Prometheus metrics per mapping, from the engine's events.
//!
//! Every series carries `mapping` (the UUID), `function` and `queue`. As
//! rendered (prometheus-client adds `_total` to counters):
//! `mqtrigger_messages_{received,filtered,invoked,succeeded,failed,dead_lettered,redelivered}_total`,
//! `mqtrigger_batches_invoked_total`, `mqtrigger_messages_in_flight`,
//! `mqtrigger_batch_size_messages` and `mqtrigger_function_latency_seconds`
//! (histograms), and `mqtrigger_mapping_state{state="…"}` (1 for the
//! current state, 0 for the others). Without labels:
//! `mqtrigger_runtime_tasks`, the tasks alive in the process's runtime
//! (a leak shows as a count that only grows).

use crate::engine::{Control, EngineEvent};
use crate::mapping::{Mapping, State};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

type Labels = Vec<(String, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

const STATES: [State; 7] = [
    State::Creating,
    State::Enabling,
    State::Enabled,
    State::Disabling,
    State::Disabled,
    State::Updating,
    State::Deleting,
];

pub struct Metrics {
    registry: Registry,
    received: Family<Labels, Counter>,
    filtered: Family<Labels, Counter>,
    invoked: Family<Labels, Counter>,
    succeeded: Family<Labels, Counter>,
    failed: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    redelivered: Family<Labels, Counter>,
    batches: Family<Labels, Counter>,
    in_flight: Family<Labels, Gauge>,
    batch_size: Histograms,
    latency: Histograms,
    state: Family<Labels, Gauge>,
    tasks: Gauge,
    /// Events name only the UUID; the labels need the function and queue.
    names: Mutex<HashMap<Uuid, (String, String)>>,
}

fn batch_size_histogram() -> Histogram {
    Histogram::new([
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
    ])
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut counter = |name: &str, help: &str| {
            let family = Family::<Labels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let received = counter(
            "mqtrigger_messages_received",
            "Messages taken from the queue",
        );
        let filtered = counter(
            "mqtrigger_messages_filtered",
            "Messages that matched no filter (acked, not invoked)",
        );
        let invoked = counter(
            "mqtrigger_messages_invoked",
            "Messages sent to the function, every attempt",
        );
        let succeeded = counter(
            "mqtrigger_messages_succeeded",
            "Messages of batches the function accepted",
        );
        let failed = counter(
            "mqtrigger_messages_failed",
            "Messages of failed invocations (each attempt)",
        );
        let dead_lettered = counter(
            "mqtrigger_messages_dead_lettered",
            "Messages moved to the dead-letter destination",
        );
        let redelivered = counter(
            "mqtrigger_messages_redelivered",
            "Messages the broker marked redelivered",
        );
        let batches = counter("mqtrigger_batches_invoked", "Invocations of the function");
        let in_flight = Family::<Labels, Gauge>::default();
        registry.register(
            "mqtrigger_messages_in_flight",
            "Messages in invocations under way",
            in_flight.clone(),
        );
        let batch_size = Histograms::new_with_constructor(batch_size_histogram);
        registry.register(
            "mqtrigger_batch_size_messages",
            "Messages per invocation",
            batch_size.clone(),
        );
        let latency = Histograms::new_with_constructor(latency_histogram);
        registry.register(
            "mqtrigger_function_latency_seconds",
            "Time the function took for a batch it accepted",
            latency.clone(),
        );
        let state = Family::<Labels, Gauge>::default();
        registry.register(
            "mqtrigger_mapping_state",
            "1 for the mapping's current state",
            state.clone(),
        );
        let tasks = Gauge::default();
        registry.register(
            "mqtrigger_runtime_tasks",
            "Tasks alive in the runtime",
            tasks.clone(),
        );
        Metrics {
            registry,
            tasks,
            received,
            filtered,
            invoked,
            succeeded,
            failed,
            dead_lettered,
            redelivered,
            batches,
            in_flight,
            batch_size,
            latency,
            state,
            names: Mutex::default(),
        }
    }

    fn labels(&self, uuid: Uuid) -> Labels {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let (function, queue) = names.get(&uuid).cloned().unwrap_or_default();
        vec![
            ("mapping".into(), uuid.to_string()),
            ("function".into(), function),
            ("queue".into(), queue),
        ]
    }

    fn remember(&self, m: &Mapping) {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).insert(
            m.uuid,
            (m.spec.function_name.clone(), m.spec.queue().to_owned()),
        );
        let labels = self.labels(m.uuid);
        for s in STATES {
            let mut with_state = labels.clone();
            with_state.push(("state".into(), s.to_string()));
            self.state
                .get_or_create(&with_state)
                .set(i64::from(s == m.state));
        }
    }

    fn forget(&self, uuid: Uuid) {
        let labels = self.labels(uuid);
        for s in STATES {
            let mut with_state = labels.clone();
            with_state.push(("state".into(), s.to_string()));
            self.state.remove(&with_state);
        }
    }

    /// Counts one engine event.
    pub fn observe(&self, event: &EngineEvent) {
        let add = |family: &Family<Labels, Counter>, uuid: Uuid, n: usize| {
            family.get_or_create(&self.labels(uuid)).inc_by(n as u64);
        };
        match event {
            EngineEvent::MappingChanged(m) => self.remember(m),
            EngineEvent::MappingDeleted(uuid) => self.forget(*uuid),
            EngineEvent::Received {
                mapping,
                messages,
                redelivered,
            } => {
                add(&self.received, *mapping, *messages);
                add(&self.redelivered, *mapping, *redelivered);
            }
            EngineEvent::Filtered { mapping, messages } => add(&self.filtered, *mapping, *messages),
            EngineEvent::BatchStarted {
                mapping, messages, ..
            } => {
                add(&self.invoked, *mapping, *messages);
                add(&self.batches, *mapping, 1);
                let labels = self.labels(*mapping);
                self.in_flight
                    .get_or_create(&labels)
                    .inc_by(*messages as i64);
                self.batch_size
                    .get_or_create(&labels)
                    .observe(*messages as f64);
            }
            EngineEvent::BatchSucceeded {
                mapping,
                messages,
                latency,
                ..
            } => {
                add(&self.succeeded, *mapping, *messages);
                let labels = self.labels(*mapping);
                self.landed(&labels, *messages);
                self.latency
                    .get_or_create(&labels)
                    .observe(latency.as_secs_f64());
            }
            EngineEvent::BatchFailed {
                mapping, messages, ..
            } => {
                add(&self.failed, *mapping, *messages);
                self.landed(&self.labels(*mapping), *messages);
            }
            EngineEvent::DeadLettered {
                mapping, messages, ..
            } => add(&self.dead_lettered, *mapping, *messages),
            EngineEvent::SettleFailed { .. } => {}
        }
    }

    /// An invocation ended: its messages are no longer in flight.
    fn landed(&self, labels: &Labels, messages: usize) {
        let gauge = self.in_flight.get_or_create(labels);
        let left = (gauge.get() - messages as i64).max(0);
        gauge.set(left);
    }

    /// Sets the state series from the mappings as they are now.
    pub fn set_mappings(&self, mappings: &[Mapping]) {
        for m in mappings {
            self.remember(m);
        }
    }

    pub fn render(&self) -> String {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.tasks.set(runtime.metrics().num_alive_tasks() as i64);
        }
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Serves `GET /metrics` until `shutdown`, counting the engine's events.
pub async fn serve(
    control: Control,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use axum::routing::get;
    use std::sync::Arc;
    let metrics = Arc::new(Metrics::new());
    metrics.set_mappings(&control.list()?);
    let mut events = control.subscribe();
    let counting = metrics.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => counting.observe(&event),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("metrics missed {n} engine events; counters are low by those")
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    let app = axum::Router::new().route(
        "/metrics",
        get(move || async move {
            if let Ok(all) = control.list() {
                metrics.set_mappings(&all);
            }
            (
                [(
                    "content-type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                metrics.render(),
            )
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::MappingSpec;
    use std::time::Duration;

    fn mapping() -> Mapping {
        Mapping::new(
            MappingSpec {
                function_name: "echo".into(),
                event_source_arn: "arn:aws:mq:us-east-1:0:broker:b:b-1".into(),
                queues: vec!["q".into()],
                batch_size: None,
                maximum_batching_window_in_seconds: None,
                enabled: None,
                filter_criteria: None,
                source_access_configurations: vec![],
                scaling_config: None,
            },
            "arn:aws:lambda:local:0:function:echo".into(),
        )
    }

    fn value(text: &str, name: &str, uuid: Uuid) -> String {
        let labels = format!("{{function=\"echo\",mapping=\"{uuid}\",queue=\"q\"}}");
        let alt = format!("{{mapping=\"{uuid}\",function=\"echo\",queue=\"q\"}}");
        text.lines()
            .find(|l| {
                l.starts_with(&format!("{name}{labels} "))
                    || l.starts_with(&format!("{name}{alt} "))
            })
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn events_become_counters_gauges_and_histograms() {
        let metrics = Metrics::new();
        let m = mapping();
        let id = m.uuid;
        metrics.set_mappings(std::slice::from_ref(&m));
        metrics.observe(&EngineEvent::Received {
            mapping: id,
            messages: 12,
            redelivered: 2,
        });
        metrics.observe(&EngineEvent::Filtered {
            mapping: id,
            messages: 2,
        });
        let started = EngineEvent::BatchStarted {
            mapping: id,
            messages: 10,
            bytes: 100,
            attempt: 1,
            event: bytes::Bytes::new(),
        };
        metrics.observe(&started);
        assert_eq!(
            value(&metrics.render(), "mqtrigger_messages_in_flight", id),
            "10"
        );
        metrics.observe(&EngineEvent::BatchFailed {
            mapping: id,
            messages: 10,
            attempt: 1,
            error: "boom".into(),
        });
        metrics.observe(&started);
        metrics.observe(&EngineEvent::BatchSucceeded {
            mapping: id,
            messages: 10,
            attempts: 2,
            latency: Duration::from_millis(30),
        });
        let text = metrics.render();
        assert_eq!(value(&text, "mqtrigger_messages_received_total", id), "12");
        assert_eq!(
            value(&text, "mqtrigger_messages_redelivered_total", id),
            "2"
        );
        assert_eq!(value(&text, "mqtrigger_messages_filtered_total", id), "2");
        assert_eq!(value(&text, "mqtrigger_messages_invoked_total", id), "20");
        assert_eq!(value(&text, "mqtrigger_messages_failed_total", id), "10");
        assert_eq!(value(&text, "mqtrigger_messages_succeeded_total", id), "10");
        assert_eq!(value(&text, "mqtrigger_batches_invoked_total", id), "2");
        assert_eq!(value(&text, "mqtrigger_messages_in_flight", id), "0");
        assert_eq!(
            value(&text, "mqtrigger_function_latency_seconds_count", id),
            "1"
        );
        assert_eq!(value(&text, "mqtrigger_batch_size_messages_count", id), "2");
        let enabled = text
            .lines()
            .find(|l| l.starts_with("mqtrigger_mapping_state") && l.contains("state=\"Enabled\""))
            .unwrap();
        assert!(enabled.ends_with(" 1"), "{enabled}");
        let disabled = text
            .lines()
            .find(|l| l.starts_with("mqtrigger_mapping_state") && l.contains("state=\"Disabled\""))
            .unwrap();
        assert!(disabled.ends_with(" 0"), "{disabled}");
    }

    #[tokio::test]
    async fn the_runtime_s_tasks_are_counted_as_they_come_and_go() {
        let metrics = Metrics::new();
        let tasks = |text: &str| -> i64 {
            text.lines()
                .find_map(|l| l.strip_prefix("mqtrigger_runtime_tasks "))
                .unwrap_or_else(|| panic!("no mqtrigger_runtime_tasks in\n{text}"))
                .parse()
                .unwrap()
        };
        let before = tasks(&metrics.render());
        let stop = CancellationToken::new();
        let waiting: Vec<_> = (0..3)
            .map(|_| tokio::spawn(stop.clone().cancelled_owned()))
            .collect();
        assert_eq!(tasks(&metrics.render()), before + 3);
        stop.cancel();
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(tasks(&metrics.render()), before);
    }
}
