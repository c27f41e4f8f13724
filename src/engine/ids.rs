//! The ids that tie a batch's events together, and why a batch closed:
//! what the events, the counts and the batcher all speak of.

use serde::{Deserialize, Serialize};

/// One batch, from the moment it closes to its ack or dead letters; every
/// attempt of it carries the same id. Unique within one engine.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BatchId(pub u64);

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why the batcher closed a batch: the first of Lambda's three limits reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CloseReason {
    /// BatchSize records.
    #[default]
    Count,
    /// MaximumBatchingWindowInSeconds passed since its first record.
    Window,
    /// The next record would have pushed the event past 6 MB.
    Size,
}

impl CloseReason {
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Count => "count",
            CloseReason::Window => "window",
            CloseReason::Size => "6 MB",
        }
    }
}
