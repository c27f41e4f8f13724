//! Where the engine's events meet its counts: every event is counted and
//! then broadcast under one lock, so a watcher that starts from a snapshot
//! and applies each event after it has the engine's very numbers. The hub
//! also hands out batch ids and takes batch outcomes for the journal.

use super::events::EngineEvent;
use super::history::{Histories, Timeline, What};
use super::ids::BatchId;
use super::journal::Journal;
use super::stats::{EngineStats, MappingStats};
use crate::source::Delivery;
use crate::store::{BatchRecord, Store};
use crate::sync::Unpoisoned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Events queued for each watcher before it lags (and takes a snapshot).
const EVENTS_QUEUED: usize = 4096;

pub(crate) struct Hub {
    events: broadcast::Sender<EngineEvent>,
    /// The counts every event makes; emitting holds this lock, so a
    /// snapshot and the events sent after it never overlap.
    stats: Arc<Mutex<EngineStats>>,
    next_batch: AtomicU64,
    /// Batch outcomes go to the store from a thread of their own, so a
    /// disk write never sits between two invocations.
    journal: Mutex<Option<Journal>>,
    /// Each mapping's newest messages and what happened to them.
    history: Mutex<Histories>,
}

impl Hub {
    /// `history`: how many messages of each mapping keep their history.
    pub(crate) fn new(store: &Arc<Store>, history: usize) -> Hub {
        let (events, _) = broadcast::channel(EVENTS_QUEUED);
        let stats = Arc::new(Mutex::new(EngineStats::default()));
        // The owner writes the counts of what it runs to a shared store;
        // this reads them (and holds only the counts, not the engine).
        let counted = stats.clone();
        store.count_with(Box::new(move |mappings| {
            let stats = counted.locked();
            mappings
                .iter()
                .filter_map(|u| Some((*u, serde_json::to_string(stats.mappings.get(u)?).ok()?)))
                .collect()
        }));
        Hub {
            events,
            stats,
            next_batch: AtomicU64::new(1),
            journal: Mutex::new(Some(Journal::start(store.clone()))),
            history: Mutex::new(Histories::new(history)),
        }
    }

    /// Counts the event, then tells the watchers, under one lock: see [`Self::watch`].
    pub(crate) fn emit(&self, event: EngineEvent) {
        self.history.locked().apply(&event);
        let mut stats = self.stats.locked();
        stats.apply(&event);
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    /// The events from now on. To count them, start from [`Self::watch`].
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// The counts as they are, and the events after them: apply each event
    /// to the snapshot ([`EngineStats::apply`]) and the numbers stay exact.
    pub(crate) fn watch(&self) -> (EngineStats, broadcast::Receiver<EngineEvent>) {
        let stats = self.stats.locked();
        (stats.clone(), self.events.subscribe())
    }

    pub(crate) fn stats(&self, mapping: Uuid) -> MappingStats {
        self.stats.locked().of(mapping)
    }

    pub(crate) fn all_stats(&self) -> EngineStats {
        self.stats.locked().clone()
    }

    /// Who runs each mapping, as the counts know it.
    pub(crate) fn owners(&self) -> std::collections::HashMap<Uuid, Uuid> {
        self.stats.locked().owners.clone()
    }

    /// Messages came from the broker (for their history).
    pub(crate) fn arrived(&self, mapping: Uuid, deliveries: &[Delivery]) {
        self.history.locked().arrived(mapping, deliveries);
    }

    /// Messages became a batch (for their history).
    pub(crate) fn batched(&self, mapping: Uuid, batch: BatchId, deliveries: &[Delivery]) {
        self.history.locked().batched(mapping, batch, deliveries);
    }

    /// Messages ended, or their settling failed (for their history).
    pub(crate) fn ended(&self, mapping: Uuid, deliveries: &[Delivery], what: What) {
        self.history.locked().ended(mapping, deliveries, what);
    }

    /// What happened to a message, while it is kept.
    pub(crate) fn timeline(&self, mapping: Uuid, id: &str) -> Option<Timeline> {
        self.history.locked().timeline(mapping, id)
    }

    /// The ids of a mapping's newest messages, newest first.
    pub(crate) fn recent_messages(&self, mapping: Uuid, limit: usize) -> Vec<String> {
        self.history.locked().recent(mapping, limit)
    }

    /// A new batch's id.
    pub(crate) fn next_batch_id(&self) -> BatchId {
        BatchId(self.next_batch.fetch_add(1, Ordering::Relaxed))
    }

    /// Queues a batch outcome for the store (the batch history is for
    /// people; a crash may lose its last entries, never a message).
    pub(crate) fn journal(&self, record: BatchRecord) {
        if let Some(j) = self.journal.locked().as_ref() {
            j.record(record);
        }
    }

    /// Writes the history queued so far and lets the store go.
    pub(crate) async fn finish_journal(&self) {
        let journal = self.journal.locked().take();
        if let Some(j) = journal {
            j.finish().await;
        }
    }
}
