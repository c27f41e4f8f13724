//! A message's history: every message a mapping saw, the newest
//! `[engine] history_messages` of them per mapping (ids and what happened,
//! never bodies: a dead letter's body is in the journal), from its arrival
//! (redelivered or not) through each attempt (when, which batch and try,
//! how long, the outcome and error) to its end (acked, filtered, or
//! dead-lettered where). The engine's stages tell it what they do; the
//! attempts come from the engine's events by batch id, so an attempt is
//! told once for the whole batch.

use super::events::{BatchId, EngineEvent};
use crate::source::Delivery;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use uuid::Uuid;

/// A message's id, shared by its places in the history: one allocation
/// per message, however many batches and steps name it.
type Id = Arc<str>;

/// The history is written for every message the engine sees, so its maps
/// use a fast hash (the ids come from brokers, and a slow SipHash showed in
/// profiles); foldhash is seeded per process, as the standard one is.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What happened to a message, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The broker's message id, or the id of its body (`sha:…`).
    pub id: String,
    pub steps: Vec<Step>,
}

impl Timeline {
    /// How it ended, if it has: the last step, when that is an end.
    pub fn end(&self) -> Option<&Step> {
        self.steps.last().filter(|s| s.what.is_end())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at: DateTime<Utc>,
    /// The batch it was in, once it was in one.
    pub batch: Option<BatchId>,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum What {
    /// It came from the broker (again, when `redelivered`).
    Arrived { redelivered: bool },
    /// An attempt went to the function (`attempt` 1 is the first try).
    Sent { attempt: u32, messages: usize },
    /// The function accepted the batch.
    Succeeded { attempt: u32, latency_ms: u64 },
    /// The function failed the batch, or did not answer in time.
    Failed {
        attempt: u32,
        latency_ms: u64,
        error: String,
    },
    /// The broker took the ack: the message is done.
    Acked,
    /// It matched no filter: acked without invoking the function.
    Filtered,
    /// It went to the dead-letter destination (and the journal).
    DeadLettered { destination: String, reason: String },
    /// The ack (or the move) did not reach the broker: it delivers the
    /// message again.
    SettleFailed { reason: String },
}

impl What {
    /// An end: the broker has let go of the message.
    pub fn is_end(&self) -> bool {
        matches!(
            self,
            What::Acked | What::Filtered | What::DeadLettered { .. }
        )
    }
}

/// One mapping's messages, the newest `limit` of them.
#[derive(Debug, Default)]
struct Kept {
    /// Ids by first arrival, oldest first.
    order: VecDeque<Id>,
    /// Each kept message's steps, in order.
    messages: FastMap<Id, Vec<Step>>,
    /// The ids of each batch not ended yet.
    batches: BTreeMap<BatchId, Vec<Id>>,
}

/// Every mapping's messages.
#[derive(Debug)]
pub(crate) struct Histories {
    limit: usize,
    mappings: HashMap<Uuid, Kept>,
}

impl Histories {
    pub(crate) fn new(limit: usize) -> Histories {
        Histories {
            limit,
            mappings: HashMap::new(),
        }
    }

    fn step(&mut self, mapping: Uuid, id: &str, step: Step) {
        if self.limit == 0 {
            return;
        }
        let kept = self.mappings.entry(mapping).or_default();
        if let Some(steps) = kept.messages.get_mut(id) {
            steps.push(step);
            return;
        }
        if kept.order.len() >= self.limit
            && let Some(oldest) = kept.order.pop_front()
        {
            kept.messages.remove(&oldest);
        }
        let id: Id = Arc::from(id);
        kept.order.push_back(id.clone());
        // Room for an arrival, an attempt's start and end, and the end.
        let mut steps = Vec::with_capacity(4);
        steps.push(step);
        kept.messages.insert(id, steps);
    }

    /// Messages came from the broker.
    pub(crate) fn arrived(&mut self, mapping: Uuid, deliveries: &[Delivery]) {
        let at = Utc::now();
        for d in deliveries {
            let what = What::Arrived {
                redelivered: d.redelivered,
            };
            self.step(
                mapping,
                d.label(),
                Step {
                    at,
                    batch: None,
                    what,
                },
            );
        }
    }

    /// Messages became batch `batch`: its attempts are theirs.
    pub(crate) fn batched(&mut self, mapping: Uuid, batch: BatchId, deliveries: &[Delivery]) {
        if self.limit == 0 {
            return;
        }
        let kept = self.mappings.entry(mapping).or_default();
        let ids = deliveries
            .iter()
            .map(|d| match kept.messages.get_key_value(d.label()) {
                Some((id, _)) => id.clone(),
                None => Arc::from(d.label()),
            })
            .collect();
        kept.batches.insert(batch, ids);
        // A batch nobody hears the end of (a session lost under it) is not
        // kept for ever: as many batches as messages, at the most.
        while kept.batches.len() > self.limit {
            kept.batches.pop_first();
        }
    }

    /// Messages ended (acked, filtered, dead-lettered), or their settling failed.
    pub(crate) fn ended(&mut self, mapping: Uuid, deliveries: &[Delivery], what: What) {
        let at = Utc::now();
        for d in deliveries {
            let step = Step {
                at,
                batch: None,
                what: what.clone(),
            };
            self.step(mapping, d.label(), step);
        }
    }

    /// An attempt's start and end, for every message of its batch.
    pub(crate) fn apply(&mut self, event: &EngineEvent) {
        let (mapping, batch, what, at, done) = match event {
            EngineEvent::BatchStarted {
                mapping,
                batch,
                messages,
                attempt,
                at,
                ..
            } => {
                let what = What::Sent {
                    attempt: *attempt,
                    messages: *messages,
                };
                (*mapping, *batch, what, *at, false)
            }
            EngineEvent::BatchSucceeded {
                mapping,
                batch,
                attempts,
                latency,
                ..
            } => {
                let what = What::Succeeded {
                    attempt: *attempts,
                    latency_ms: millis(*latency),
                };
                (*mapping, *batch, what, Utc::now(), true)
            }
            EngineEvent::BatchFailed {
                mapping,
                batch,
                attempt,
                error,
                latency,
                ..
            } => {
                let what = What::Failed {
                    attempt: *attempt,
                    latency_ms: millis(*latency),
                    error: error.clone(),
                };
                (*mapping, *batch, what, Utc::now(), false)
            }
            EngineEvent::BatchPartlyFailed {
                mapping,
                batch,
                attempt,
                failed_ids,
                error,
                latency,
                ..
            } => {
                let Some(kept) = self.mappings.get_mut(mapping) else {
                    return;
                };
                let ids = kept.batches.get(batch).cloned().unwrap_or_default();
                let at = Utc::now();
                for id in &ids {
                    let what = if failed_ids.iter().any(|f| **f == **id) {
                        What::Failed {
                            attempt: *attempt,
                            latency_ms: millis(*latency),
                            error: error.clone(),
                        }
                    } else {
                        What::Succeeded {
                            attempt: *attempt,
                            latency_ms: millis(*latency),
                        }
                    };
                    if let Some(steps) = kept.messages.get_mut(id) {
                        let batch = Some(*batch);
                        steps.push(Step { at, batch, what });
                    }
                }
                // Only the named ones are tried again.
                if let Some(left) = kept.batches.get_mut(batch) {
                    left.retain(|id| failed_ids.iter().any(|f| **f == **id));
                }
                return;
            }
            EngineEvent::DeadLettered {
                mapping,
                batch: Some(batch),
                ..
            } => {
                // The dead letters' own step is told by the settle stage;
                // the batch is over.
                if let Some(kept) = self.mappings.get_mut(mapping) {
                    kept.batches.remove(batch);
                }
                return;
            }
            EngineEvent::MappingDeleted(mapping) => {
                self.mappings.remove(mapping);
                return;
            }
            _ => return,
        };
        let Some(kept) = self.mappings.get_mut(&mapping) else {
            return;
        };
        let ids = if done {
            kept.batches.remove(&batch)
        } else {
            kept.batches.get(&batch).cloned()
        };
        for id in ids.unwrap_or_default() {
            if let Some(steps) = kept.messages.get_mut(&id) {
                steps.push(Step {
                    at,
                    batch: Some(batch),
                    what: what.clone(),
                });
            }
        }
    }

    /// What happened to message `id` of `mapping`, if it is still kept.
    pub(crate) fn timeline(&self, mapping: Uuid, id: &str) -> Option<Timeline> {
        let (id, steps) = self.mappings.get(&mapping)?.messages.get_key_value(id)?;
        Some(Timeline {
            id: id.to_string(),
            steps: steps.clone(),
        })
    }

    /// The ids kept for `mapping`, newest first, at most `limit`.
    pub(crate) fn recent(&self, mapping: Uuid, limit: usize) -> Vec<String> {
        self.mappings
            .get(&mapping)
            .map(|k| {
                k.order
                    .iter()
                    .rev()
                    .take(limit)
                    .map(|id| id.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::DeliveryTag;

    fn delivery(id: &str) -> Delivery {
        Delivery {
            tag: DeliveryTag::Amqp(1),
            record: Vec::new(),
            body: bytes::Bytes::new(),
            redelivered: false,
            expires_at: None,
            message_id: Some(id.into()),
            queue: None,
            trace: None,
        }
    }

    #[test]
    fn only_the_newest_messages_are_kept() {
        let mapping = Uuid::new_v4();
        let mut h = Histories::new(2);
        for id in ["a", "b", "c"] {
            h.arrived(mapping, &[delivery(id)]);
        }
        assert_eq!(h.recent(mapping, 10), ["c", "b"]);
        assert!(h.timeline(mapping, "a").is_none(), "the oldest went");
        // Arriving again adds a step, not a message.
        h.arrived(mapping, &[delivery("b")]);
        assert_eq!(h.recent(mapping, 10), ["c", "b"]);
        assert_eq!(h.timeline(mapping, "b").unwrap().steps.len(), 2);
    }
}
