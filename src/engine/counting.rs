//! The one rule that turns the engine's events into its counts. The engine
//! applies each event it emits, under the lock it sends it with; a watcher
//! applies the same rule to its copy (see `stats`).

use super::events::EngineEvent;
use super::ids::BatchId;
use super::stats::{
    AttemptOutcome, BatchRow, EngineStats, MappingStats, RECENT_BATCHES, RECENT_ERRORS,
};

impl MappingStats {
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

    /// Messages the function accepted on their `attempt`-th try.
    /// An attempt that failed `messages` of its batch (all of them, or
    /// those its function named): counted, its error kept among the recent
    /// ones, and its row in the batch list marked.
    fn attempt_failed(
        &mut self,
        batch: BatchId,
        attempt: u32,
        messages: usize,
        error: &str,
        latency: std::time::Duration,
    ) {
        self.failed += messages as u64;
        self.failed_batches += 1;
        self.errors.push_front(error.to_owned());
        self.errors.truncate(RECENT_ERRORS);
        if let Some(row) = self.row(batch, attempt) {
            row.outcome = AttemptOutcome::Failed(error.to_owned());
            row.latency_ms = Some(latency.as_millis() as u64);
        }
    }

    fn accepted(&mut self, attempt: u32, messages: usize) {
        self.succeeded += messages as u64;
        let redeliveries = attempt.saturating_sub(1) as usize;
        if self.by_redeliveries.len() <= redeliveries {
            self.by_redeliveries.resize(redeliveries + 1, 0);
        }
        self.by_redeliveries[redeliveries] += messages as u64;
    }

    pub(super) fn apply(&mut self, event: &EngineEvent) {
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
            EngineEvent::QueueCounted { queue, counts, .. } => {
                self.by_queue.entry(queue.clone()).or_default().add(counts);
            }
            EngineEvent::Backlog { backlog, at, .. } => {
                self.backlog = Some((backlog.clone(), *at));
            }
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
                self.accepted(*attempts, *messages);
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
                self.attempt_failed(*batch, *attempt, *messages, error, *latency);
            }
            EngineEvent::BatchPartlyFailed {
                batch,
                attempt,
                succeeded,
                failed,
                error,
                latency,
                ..
            } => {
                self.landed(succeeded + failed);
                self.accepted(*attempt, *succeeded);
                self.attempt_failed(*batch, *attempt, *failed, error, *latency);
            }
            EngineEvent::DeadLettered { messages, .. } => self.dead_lettered += *messages as u64,
            EngineEvent::SettleFailed { messages, .. } => self.settle_failed += *messages as u64,
            EngineEvent::FunctionLog { .. } => {}
        }
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ids::CloseReason;
    use crate::engine::stats::Histogram;
    use chrono::Utc;
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
