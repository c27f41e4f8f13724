//! The engine: one supervised task per mapping, driven through [`Control`].
//!
//! The console, `serve` and the REST API all hold a `Control`. It changes
//! mappings (in the store first, then in the running task), owns the counts
//! ([`stats`]) and hands out snapshots of them with a stream of
//! [`EngineEvent`]s for what is new. A poller never knows who is watching.
//!
//! - `control.rs`: the [`Control`] handle and its errors; `control/changes.rs`:
//!   the changes to mappings, each made to the mapping as stored at the write
//! - `events.rs`: [`EngineEvent`], [`BatchId`]
//! - `stats.rs`: the counts events make, and their snapshots
//! - `wiring.rs`: where sources and functions come from (the config's
//!   brokers and functions, or an in-memory broker in tests)
//! - `supervisor.rs`, `poller.rs`: one mapping's task, its stages in
//!   `batch.rs` (gather), `attempts.rs` (invoke and retry), `turns.rs`
//!   (which batch may go to the function), `settle.rs`
//! - `journal.rs`: batch history to the store, off the hot path
//! - `replay.rs`: replay and republish of dead letters

mod attempts;
mod backlog;
mod batch;
pub mod bulk;
mod cluster;
mod context;
mod control;
mod counting;
mod error;
mod events;
pub mod follow;
pub mod history;
mod hub;
mod ids;
mod item_failures;
mod journal;
mod mappings;
mod on_failure;
mod poller;
mod replay;
pub mod retry;
mod runtime;
mod settle;
pub mod stats;
mod supervisor;
mod turns;
mod unsettled;
pub mod wiring;

#[cfg(test)]
pub(crate) mod tests;

pub use batch::{Batch, Batcher, Gathered};
pub use control::{Control, ControlError, Kind};
pub use events::{BatchId, CloseReason, EngineEvent};
pub use follow::{FeedItem, Snapshot, follow};
pub use stats::{EngineStats, MappingStats};

use crate::config::Config;
use crate::mapping::Mapping;
use std::time::Duration;

/// The settings a running mapping picks up without restarting.
#[derive(Debug, Clone, PartialEq)]
struct RunSettings {
    batch_size: u32,
    window: Duration,
    concurrency: u32,
    /// The session reads the filter from the mapping when told of a change;
    /// it is here so that a change of it alone is one.
    filter_criteria: Option<crate::mapping::FilterCriteria>,
    /// An operator paused the mapping: no new batch is taken.
    paused: bool,
    /// The steps asked for so far (see [`Mapping::steps`]).
    steps: u64,
}

impl RunSettings {
    fn of(m: &Mapping) -> RunSettings {
        RunSettings {
            batch_size: m.spec.batch_size(),
            window: m.spec.batching_window(),
            concurrency: m.spec.concurrency(),
            filter_criteria: m.spec.filter_criteria.clone(),
            paused: m.paused,
            steps: m.steps,
        }
    }
}

/// How many batches a session gathers ahead of those with the function:
/// the next one is gathered and its request built while the function works,
/// and with small batches one more, so a batch is ready the moment the
/// function answers even when settling the last one, or the broker, takes
/// a while (the consume loop settles and gathers in turn). Batches of over
/// a thousand messages get one: a whole batch more of them would only cost
/// memory, and they take long enough to invoke for the next to fill.
pub fn batches_ahead(batch_size: u32) -> u32 {
    if batch_size <= 1000 { 2 } else { 1 }
}

/// How many unsettled messages the broker may push to one mapping: a batch
/// for each slot, the batches gathered ahead, and up to a thousand more in
/// transit, so the broker never waits on an ack to keep the next batch
/// coming.
pub fn prefetch(batch_size: u32, concurrency: u32) -> u32 {
    let batches = concurrency.max(1).saturating_add(batches_ahead(batch_size));
    batch_size
        .saturating_mul(batches)
        .saturating_add(batch_size.min(1000))
}

/// The event around a mapping's records: `aws:mq` for ActiveMQ, `aws:rmq` for RabbitMQ.
pub fn event_frame(config: &Config, mapping: &Mapping) -> crate::event::EventFrame {
    use crate::config::BrokerEngine;
    let arn = &mapping.spec.event_source_arn;
    if config.broker(arn).map(|b| b.engine) == Some(BrokerEngine::Activemq) {
        return crate::event::mq::frame(arn);
    }
    crate::event::rmq::frame_of(arn, &mapping.spec.queues, mapping.spec.virtual_host())
}
