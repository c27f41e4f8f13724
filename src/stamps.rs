//! Where a mapping's time goes, batch by batch: a timestamp at each stage
//! of the consume loop (a message received, a batch opened and handed to
//! the invoke stage, its request built, its turn come, sent, answered, the
//! outcome back in the loop, settled). `mqtrigger bench --stages FILE`
//! turns it on and writes what it kept; `scripts/compare/stages.py` reads
//! that file and says, for instance, whether the next batch was ready when
//! the function answered. CPU profiles show what the engine computes; only
//! these show what it waits for.
//!
//! Off, a mark is one relaxed atomic load. On, it takes a lock and pushes
//! onto a vector: meant for a benchmark's minutes, never for a service.

use crate::sync::Unpoisoned;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// A stage of one batch (or, for [`Stage::Received`], of one message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A message came from the source into the batcher.
    Received,
    /// The batch's first message was gathered.
    Opened,
    /// The consume loop handed the batch to the invoke stage.
    Handed,
    /// Its event was built, ready for its turn.
    Built,
    /// Its turn came: its request may go.
    Go,
    /// Its request is on its way.
    Sent,
    /// The function answered.
    Answered,
    /// The invocation returned to the batch's task.
    Returned,
    /// The consume loop heard the batch ended, and starts settling it.
    Finished,
    /// The batch is settled (acked, or dead-lettered).
    Settled,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Received => "received",
            Stage::Opened => "opened",
            Stage::Handed => "handed",
            Stage::Built => "built",
            Stage::Go => "go",
            Stage::Sent => "sent",
            Stage::Answered => "answered",
            Stage::Returned => "returned",
            Stage::Finished => "finished",
            Stage::Settled => "settled",
        }
    }
}

static ON: AtomicBool = AtomicBool::new(false);
static KEPT: Mutex<Vec<(u64, Stage, u128)>> = Mutex::new(Vec::new());

/// Keeps every mark from now on.
pub fn start() {
    ON.store(true, Ordering::Relaxed);
}

/// Notes that `batch` (0 for a message not in a batch yet) reached `stage` now.
pub fn mark(batch: u64, stage: Stage) {
    if ON.load(Ordering::Relaxed) {
        keep(batch, stage, SystemTime::now());
    }
}

/// The same, at a time taken earlier.
pub fn mark_at(batch: u64, stage: Stage, at: SystemTime) {
    if ON.load(Ordering::Relaxed) {
        keep(batch, stage, at);
    }
}

fn keep(batch: u64, stage: Stage, at: SystemTime) {
    let ns = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    KEPT.locked().push((batch, stage, ns));
}

/// Stops keeping marks and hands over those kept, as lines of
/// `batch stage nanoseconds-since-the-epoch`.
pub fn finish() -> String {
    ON.store(false, Ordering::Relaxed);
    let kept = std::mem::take(&mut *KEPT.locked());
    let mut text = String::with_capacity(kept.len() * 32);
    for (batch, stage, ns) in kept {
        text.push_str(&format!("{batch} {} {ns}\n", stage.name()));
    }
    text
}
