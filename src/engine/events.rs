//! What the engine tells its watchers.

pub use super::ids::{BatchId, CloseReason};
use crate::mapping::Mapping;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// What happened in the engine, for whoever watches. Counting them is
/// [`super::stats::MappingStats::apply`]'s job, and the engine's own: a
/// watcher starts from [`super::Control::watch`]'s snapshot.
///
/// Watchers in other processes get them as JSON (`api::watch`), each
/// variant tagged with its name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum EngineEvent {
    MappingChanged(Box<Mapping>),
    MappingDeleted(Uuid),
    /// Which instance runs the mapping now, when several share a store
    /// (None: none does at the moment, as while one takes over from another).
    Placed {
        mapping: Uuid,
        instance: Option<Uuid>,
    },
    /// The mapping's counts as a whole, as the instance that runs it wrote
    /// them to the shared store: a mapping run elsewhere, or one this
    /// instance takes over (and counts on from).
    Counts {
        mapping: Uuid,
        stats: Box<super::stats::MappingStats>,
    },
    /// Messages came from the broker (each counted once, when first gathered).
    Received {
        mapping: Uuid,
        messages: usize,
        /// How many of them the broker marked redelivered.
        redelivered: usize,
    },
    BatchStarted {
        mapping: Uuid,
        batch: BatchId,
        messages: usize,
        bytes: usize,
        attempt: u32,
        closed_by: CloseReason,
        /// When the attempt started (stamped once, so every watcher's copy agrees).
        at: chrono::DateTime<chrono::Utc>,
        /// The event the function is given (shared, not copied). On the
        /// wire it is the JSON itself, not a string of it.
        #[serde(with = "json_bytes")]
        event: bytes::Bytes,
    },
    BatchSucceeded {
        mapping: Uuid,
        batch: BatchId,
        messages: usize,
        attempts: u32,
        latency: Duration,
    },
    BatchFailed {
        mapping: Uuid,
        batch: BatchId,
        messages: usize,
        attempt: u32,
        error: String,
        latency: Duration,
    },
    /// The function (ReportBatchItemFailures) named some messages of the
    /// attempt as failed: the others succeeded (and are acked), the named
    /// ones are tried again.
    BatchPartlyFailed {
        mapping: Uuid,
        batch: BatchId,
        attempt: u32,
        succeeded: usize,
        failed: usize,
        /// The identifiers the function named.
        failed_ids: Vec<String>,
        error: String,
        latency: Duration,
    },
    DeadLettered {
        mapping: Uuid,
        /// None for a record too large for any batch.
        batch: Option<BatchId>,
        messages: usize,
        reason: String,
    },
    /// Messages matched no filter: acked without invoking the function.
    Filtered {
        mapping: Uuid,
        messages: usize,
    },
    /// What the function logged during one attempt of a batch (a
    /// `bootstrap` function's output, with Lambda's START, END and REPORT
    /// lines). Sent before the attempt's outcome; counts nothing.
    FunctionLog {
        mapping: Uuid,
        batch: BatchId,
        attempt: u32,
        lines: Vec<String>,
    },
    /// A mapping of several queues: what its messages of one queue did
    /// (counts to add to that queue's).
    QueueCounted {
        mapping: Uuid,
        queue: String,
        counts: super::stats::QueueCounts,
    },
    /// How many messages wait in the mapping's queue, as the broker said
    /// (see `source::backlog`); asked every `[engine] backlog_interval_ms`.
    Backlog {
        mapping: Uuid,
        backlog: crate::source::backlog::Backlog,
        /// When the broker was asked.
        at: chrono::DateTime<chrono::Utc>,
    },
    /// Messages were invoked but could not be acked; the broker delivers them again.
    SettleFailed {
        mapping: Uuid,
        batch: BatchId,
        messages: usize,
        reason: String,
    },
}

impl EngineEvent {
    /// The mapping the event is about.
    pub fn mapping(&self) -> Uuid {
        match self {
            EngineEvent::MappingChanged(m) => m.uuid,
            EngineEvent::MappingDeleted(uuid)
            | EngineEvent::Placed { mapping: uuid, .. }
            | EngineEvent::Counts { mapping: uuid, .. }
            | EngineEvent::Received { mapping: uuid, .. }
            | EngineEvent::BatchStarted { mapping: uuid, .. }
            | EngineEvent::BatchSucceeded { mapping: uuid, .. }
            | EngineEvent::BatchFailed { mapping: uuid, .. }
            | EngineEvent::BatchPartlyFailed { mapping: uuid, .. }
            | EngineEvent::DeadLettered { mapping: uuid, .. }
            | EngineEvent::Filtered { mapping: uuid, .. }
            | EngineEvent::SettleFailed { mapping: uuid, .. }
            | EngineEvent::Backlog { mapping: uuid, .. }
            | EngineEvent::QueueCounted { mapping: uuid, .. }
            | EngineEvent::FunctionLog { mapping: uuid, .. } => *uuid,
        }
    }
}

/// Bytes that hold JSON, written into the surrounding JSON as they are.
/// Anything else (a test's empty event) travels as a string.
mod json_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(bytes: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
        let text = String::from_utf8_lossy(bytes);
        match serde_json::from_str::<&RawValue>(&text) {
            Ok(raw) => raw.serialize(s),
            Err(_) => s.serialize_str(&text),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bytes::Bytes, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(match serde_json::from_str::<String>(raw.get()) {
            Ok(text) => bytes::Bytes::from(text),
            Err(_) => bytes::Bytes::from(raw.get().to_owned()),
        })
    }
}
