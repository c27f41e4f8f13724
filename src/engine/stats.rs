//! The engine's own counts: per mapping, kept where the events are made.
//!
//! [`EngineStats::apply`] is the one rule that turns events into numbers.
//! The engine applies every event it emits, under the same lock it sends
//! them with, so a snapshot plus the events after it is exact; a watcher
//! (the console) applies the same function to its copy, and one that lags
//! behind the stream takes a new snapshot instead of guessing.

use super::events::{BatchId, CloseReason, EngineEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Batches kept per mapping for the console and the API.
pub const RECENT_BATCHES: usize = 50;
/// Function errors kept per mapping.
pub const RECENT_ERRORS: usize = 5;

/// Upper bounds of the batch-size histogram (messages per invocation).
pub const BATCH_SIZE_BOUNDS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];
/// Upper bounds of the function-latency histogram, in seconds: 1 ms doubling to 32 s.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384, 32.768,
];

/// A histogram with fixed bounds (an implicit +Inf bucket after the last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    #[serde(with = "known_bounds")]
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more than `bounds`.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        let bucket = self.bounds.partition_point(|b| *b < value);
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }
}

/// A histogram's bounds travel as numbers and come back as the engine's
/// own constants: a watcher's copy is the engine's, not a lookalike.
mod known_bounds {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bounds: &&'static [f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(bounds.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static [f64], D::Error> {
        let given = Vec::<f64>::deserialize(d)?;
        [super::BATCH_SIZE_BOUNDS, super::LATENCY_BOUNDS]
            .into_iter()
            .find(|known| **known == given[..])
            .ok_or_else(|| D::Error::custom("histogram bounds of another mqtrigger version"))
    }
}

/// How one attempt of a batch is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    InFlight,
    Ok,
    Failed(String),
}

/// One attempt of one batch, as the Batches panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    pub batch: BatchId,
    pub attempt: u32,
    pub started: DateTime<Utc>,
    pub messages: usize,
    pub bytes: usize,
    pub closed_by: CloseReason,
    pub outcome: AttemptOutcome,
    /// How long the function took; None while it runs.
    pub latency_ms: Option<u64>,
}

/// One mapping's counts since the engine started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingStats {
    /// Messages taken from the queue (filtered ones included).
    pub received: u64,
    /// Messages that matched no filter: acked, never invoked.
    pub filtered: u64,
    /// Messages the broker (or mqtrigger, see `engine::unsettled`) marked redelivered.
    pub redelivered: u64,
    /// Messages sent to the function, every attempt.
    pub invoked: u64,
    /// Invocations of the function.
    pub batches_invoked: u64,
    /// Messages of batches the function accepted.
    pub succeeded: u64,
    /// Messages of failed invocations, every attempt.
    pub failed: u64,
    /// Failed invocations.
    pub failed_batches: u64,
    pub dead_lettered: u64,
    /// Messages invoked whose ack the broker did not take (they come back).
    pub settle_failed: u64,
    /// Invocations under way now.
    pub in_flight_batches: u64,
    pub in_flight_messages: u64,
    /// Messages that succeeded after 0, 1, 2, … redeliveries.
    pub by_redeliveries: Vec<u64>,
    pub batch_size: Histogram,
    /// Seconds the function took for the batches it accepted.
    pub latency: Histogram,
    /// The newest attempts first.
    pub recent: VecDeque<BatchRow>,
    /// The newest function errors first.
    pub errors: VecDeque<String>,
}

impl Default for MappingStats {
    fn default() -> Self {
        MappingStats {
            received: 0,
            filtered: 0,
            redelivered: 0,
            invoked: 0,
            batches_invoked: 0,
            succeeded: 0,
            failed: 0,
            failed_batches: 0,
            dead_lettered: 0,
            settle_failed: 0,
            in_flight_batches: 0,
            in_flight_messages: 0,
            by_redeliveries: Vec::new(),
            batch_size: Histogram::new(BATCH_SIZE_BOUNDS),
            latency: Histogram::new(LATENCY_BOUNDS),
            recent: VecDeque::new(),
            errors: VecDeque::new(),
        }
    }
}

impl MappingStats {
    /// The counts of a mapping whose instance stopped without a word (or
    /// that nobody runs at the moment): nothing of it is with the function
    /// any more. Its attempts under way end unanswered; the broker
    /// redelivers their messages.
    pub fn abandoned(mut self) -> MappingStats {
        self.in_flight_batches = 0;
        self.in_flight_messages = 0;
        for row in &mut self.recent {
            if row.outcome == AttemptOutcome::InFlight {
                row.outcome = AttemptOutcome::Failed(
                    "no answer: the instance running it stopped; the broker redelivers its messages"
                        .into(),
                );
            }
        }
        self
    }

    fn row(&mut self, batch: BatchId, attempt: u32) -> Option<&mut BatchRow> {
        self.recent
            .iter_mut()
            .find(|r| r.batch == batch && r.attempt == attempt)
    }

    /// An attempt ended: its messages are no longer with the function.
    fn landed(&mut self, messages: usize) {
        self.in_flight_batches = self.in_flight_batches.saturating_sub(1);
        self.in_flight_messages = self.in_flight_messages.saturating_sub(messages as u64);
    }

    fn apply(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::MappingChanged(_)
            | EngineEvent::MappingDeleted(_)
            | EngineEvent::Placed { .. }
            | EngineEvent::Counts { .. } => {}
            EngineEvent::Received {
                messages,
                redelivered,
                ..
            } => {
                self.received += *messages as u64;
                self.redelivered += *redelivered as u64;
            }
            EngineEvent::Filtered { messages, .. } => self.filtered += *messages as u64,
            EngineEvent::BatchStarted {
                batch,
                messages,
                bytes,
                attempt,
                closed_by,
                at,
                ..
            } => {
                self.invoked += *messages as u64;
                self.batches_invoked += 1;
                self.in_flight_batches += 1;
                self.in_flight_messages += *messages as u64;
                self.batch_size.observe(*messages as f64);
                self.recent.push_front(BatchRow {
                    batch: *batch,
                    attempt: *attempt,
                    started: *at,
                    messages: *messages,
                    bytes: *bytes,
                    closed_by: *closed_by,
                    outcome: AttemptOutcome::InFlight,
                    latency_ms: None,
                });
                self.recent.truncate(RECENT_BATCHES);
            }
            EngineEvent::BatchSucceeded {
                batch,
                messages,
                attempts,
                latency,
                ..
            } => {
                self.landed(*messages);
                self.succeeded += *messages as u64;
                let redeliveries = attempts.saturating_sub(1) as usize;
                if self.by_redeliveries.len() <= redeliveries {
                    self.by_redeliveries.resize(redeliveries + 1, 0);
                }
                self.by_redeliveries[redeliveries] += *messages as u64;
                self.latency.observe(latency.as_secs_f64());
                if let Some(row) = self.row(*batch, *attempts) {
                    row.outcome = AttemptOutcome::Ok;
                    row.latency_ms = Some(latency.as_millis() as u64);
                }
            }
            EngineEvent::BatchFailed {
                batch,
                messages,
                attempt,
                error,
                latency,
                ..
            } => {
                self.landed(*messages);
                self.failed += *messages as u64;
                self.failed_batches += 1;
                self.errors.push_front(error.clone());
                self.errors.truncate(RECENT_ERRORS);
                if let Some(row) = self.row(*batch, *attempt) {
                    row.outcome = AttemptOutcome::Failed(error.clone());
                    row.latency_ms = Some(latency.as_millis() as u64);
                }
            }
            EngineEvent::DeadLettered { messages, .. } => self.dead_lettered += *messages as u64,
            EngineEvent::SettleFailed { messages, .. } => self.settle_failed += *messages as u64,
            EngineEvent::FunctionLog { .. } => {}
        }
    }
}

/// Every mapping's counts, and with a shared store which instance runs each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineStats {
    pub mappings: HashMap<uuid::Uuid, MappingStats>,
    /// With a store shared by several instances: the instance running each
    /// mapping (one missing is run by none at the moment). Empty otherwise.
    #[serde(default)]
    pub owners: HashMap<uuid::Uuid, uuid::Uuid>,
}

impl EngineStats {
    /// Counts one event: the one place events become numbers.
    pub fn apply(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::MappingDeleted(uuid) => {
                self.mappings.remove(uuid);
                self.owners.remove(uuid);
            }
            EngineEvent::Placed { mapping, instance } => match instance {
                Some(owner) => {
                    self.owners.insert(*mapping, *owner);
                }
                None => {
                    self.owners.remove(mapping);
                }
            },
            EngineEvent::Counts { mapping, stats } => {
                self.mappings.insert(*mapping, (**stats).clone());
            }
            EngineEvent::MappingChanged(m) => {
                self.mappings.entry(m.uuid).or_default();
            }
            other => self
                .mappings
                .entry(other.mapping())
                .or_default()
                .apply(other),
        }
    }

    pub fn of(&self, mapping: uuid::Uuid) -> MappingStats {
        self.mappings.get(&mapping).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use uuid::Uuid;

    fn started(mapping: Uuid, batch: u64, attempt: u32, messages: usize) -> EngineEvent {
        EngineEvent::BatchStarted {
            mapping,
            batch: BatchId(batch),
            messages,
            bytes: 10,
            attempt,
            closed_by: CloseReason::Count,
            at: Utc::now(),
            event: bytes::Bytes::new(),
        }
    }

    #[test]
    fn in_flight_follows_each_batch_until_it_ends_whatever_the_order() {
        let m = Uuid::new_v4();
        let mut stats = EngineStats::default();
        for b in 1..=3 {
            stats.apply(&started(m, b, 1, 2));
        }
        assert_eq!(stats.of(m).in_flight_batches, 3);
        stats.apply(&EngineEvent::BatchSucceeded {
            mapping: m,
            batch: BatchId(2),
            messages: 2,
            attempts: 1,
            latency: Duration::from_millis(7),
        });
        let s = stats.of(m);
        assert_eq!((s.in_flight_batches, s.in_flight_messages), (2, 4));
        let row2 = s.recent.iter().find(|r| r.batch == BatchId(2)).unwrap();
        assert_eq!(row2.outcome, AttemptOutcome::Ok);
        assert_eq!(row2.latency_ms, Some(7));
        let row1 = s.recent.iter().find(|r| r.batch == BatchId(1)).unwrap();
        assert_eq!(row1.outcome, AttemptOutcome::InFlight);
    }

    #[test]
    fn a_failed_attempt_keeps_its_latency_and_error_and_success_counts_redeliveries() {
        let m = Uuid::new_v4();
        let mut stats = EngineStats::default();
        stats.apply(&started(m, 9, 1, 4));
        stats.apply(&EngineEvent::BatchFailed {
            mapping: m,
            batch: BatchId(9),
            messages: 4,
            attempt: 1,
            error: "boom".into(),
            latency: Duration::from_millis(30),
        });
        stats.apply(&started(m, 9, 2, 4));
        stats.apply(&EngineEvent::BatchSucceeded {
            mapping: m,
            batch: BatchId(9),
            messages: 4,
            attempts: 2,
            latency: Duration::from_millis(5),
        });
        let s = stats.of(m);
        assert_eq!((s.invoked, s.failed, s.succeeded), (8, 4, 4));
        assert_eq!(s.by_redeliveries, vec![0, 4]);
        let failed = s.recent.iter().find(|r| r.attempt == 1).unwrap();
        assert_eq!(failed.outcome, AttemptOutcome::Failed("boom".into()));
        assert_eq!(failed.latency_ms, Some(30));
        assert_eq!(s.errors, ["boom"]);
        assert_eq!(s.latency.count, 1);
    }

    /// A console attached to a service reads the counts from JSON: they
    /// must come back as the very numbers (serde_json's float_roundtrip).
    #[test]
    fn counts_survive_json_exactly() {
        let m = Uuid::new_v4();
        let mut stats = EngineStats::default();
        for (batch, nanos) in [(1, 68_123_457), (2, 60_567_890), (3, 60_568_139)] {
            stats.apply(&started(m, batch, 1, 5));
            stats.apply(&EngineEvent::BatchSucceeded {
                mapping: m,
                batch: BatchId(batch),
                messages: 5,
                attempts: 1,
                latency: Duration::from_nanos(nanos),
            });
        }
        // A sum seen in a real run, which serde_json's default float
        // parsing reads back one bit off.
        stats.mappings.get_mut(&m).unwrap().latency.sum = 0.189_259_485_999_999_98;
        let json = serde_json::to_string(&stats).unwrap();
        let back: EngineStats = serde_json::from_str(&json).unwrap();
        assert_eq!(back, stats);
        assert_eq!(
            back.of(m).latency.sum.to_bits(),
            stats.of(m).latency.sum.to_bits()
        );
    }

    #[test]
    fn histogram_buckets_take_values_up_to_their_bound() {
        let mut h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 3.0, 10.0, 11.0] {
            h.observe(v);
        }
        assert_eq!(h.counts, [2, 2, 1]);
        assert_eq!(h.count, 5);
    }
}
