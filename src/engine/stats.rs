//! The engine's own counts: per mapping, kept where the events are made.
//!
//! [`EngineStats::apply`] (in `counting.rs`) is the one rule that turns
//! events into numbers.
//! The engine applies every event it emits, under the same lock it sends
//! them with, so a snapshot plus the events after it is exact; a watcher
//! (the console) applies the same function to its copy, and one that lags
//! behind the stream takes a new snapshot instead of guessing.

use super::ids::{BatchId, CloseReason};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

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
    /// What the broker last said of the queue's waiting messages, and
    /// when; None until it was first asked.
    #[serde(default)]
    pub backlog: Option<(crate::source::backlog::Backlog, DateTime<Utc>)>,
    /// A mapping of several queues: each queue's own counts. Empty for a
    /// mapping of one (its counts are the mapping's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_queue: BTreeMap<String, QueueCounts>,
}

/// One queue's messages, of a mapping that reads several.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounts {
    pub received: u64,
    pub filtered: u64,
    /// Acked after the function accepted them.
    pub succeeded: u64,
    pub dead_lettered: u64,
}

impl QueueCounts {
    pub fn add(&mut self, other: &QueueCounts) {
        self.received += other.received;
        self.filtered += other.filtered;
        self.succeeded += other.succeeded;
        self.dead_lettered += other.dead_lettered;
    }
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
            backlog: None,
            by_queue: BTreeMap::new(),
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
    pub fn of(&self, mapping: uuid::Uuid) -> MappingStats {
        self.mappings.get(&mapping).cloned().unwrap_or_default()
    }
}
