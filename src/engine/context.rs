//! What one mapping's task is given ([`TaskEnv`]: the engine's parts it
//! may use, and nothing else), and what its stages share ([`Context`]: the
//! mapping's identity and the few things the stages remember).

use super::events::EngineEvent;
use super::hub::Hub;
use super::mappings::MappingService;
use super::stats::QueueCounts;
use super::unsettled::Unsettled;
use super::wiring::{Wires, Wiring};
use crate::config::Config;
use crate::mapping::{State, StateTransitionReason};
use crate::secrets::Secrets;
use crate::source::Delivery;
use crate::store::BatchRecord;
use crate::sync::Unpoisoned;
use chrono::Utc;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Why a consuming session ended: what the stages tell the session loop.
#[derive(Clone, Debug)]
pub(super) enum SessionEnd {
    Cancelled,
    SettingsChanged,
    /// A step through a paused mapping handed its batch to the function.
    Stepped,
    Lost(String),
    Stop(StateTransitionReason, String),
}

/// The engine's parts a mapping's task may use: where to report (the
/// hub), the mapping service (to read its mapping, and to record its last
/// result or its stop code), and where its source and function come from.
/// It cannot start, stop or change any other mapping.
pub(crate) struct TaskEnv {
    pub hub: Arc<Hub>,
    pub mappings: Arc<MappingService>,
    pub wiring: Arc<dyn Wiring>,
    pub secrets: Arc<Secrets>,
}

impl TaskEnv {
    pub fn config(&self) -> &Config {
        self.mappings.config()
    }

    /// What the wiring needs to connect a source or build a function.
    pub fn wires(&self) -> Wires<'_> {
        Wires {
            config: self.config(),
            secrets: &self.secrets,
        }
    }
}

pub(super) struct Context {
    pub env: Arc<TaskEnv>,
    pub uuid: Uuid,
    pub queue: String,
    pub cancel: CancellationToken,
    /// The LastProcessingResult this task wrote last, so that a steady
    /// stream of good batches costs no store reads or writes.
    last_result: Mutex<Option<String>>,
    pub unsettled: Unsettled,
    /// Kept across the mapping's sessions (see `source::rabbitmq::LargeFrames`).
    pub large_frames: crate::source::rabbitmq::LargeFrames,
    /// Where dead letters go instead of the broker's dead-letter queue
    /// (DestinationConfig.OnFailure), read when the task starts: a change
    /// of it restarts the task.
    pub on_failure: Option<crate::mapping::Destination>,
}

impl Context {
    pub fn new(env: Arc<TaskEnv>, uuid: Uuid, queue: String, cancel: CancellationToken) -> Self {
        Context {
            env,
            uuid,
            queue,
            cancel,
            last_result: Mutex::new(None),
            unsettled: Unsettled::default(),
            large_frames: Default::default(),
            on_failure: None,
        }
    }

    pub fn emit(&self, event: EngineEvent) {
        self.env.hub.emit(event);
    }

    /// A mapping of several queues counts each queue's messages apart:
    /// `count` says which count these deliveries add to. A delivery of a
    /// mapping of one queue has no queue, and counts nothing here.
    pub fn count_by_queue(&self, deliveries: &[Delivery], count: fn(&mut QueueCounts)) {
        let mut by_queue: std::collections::BTreeMap<&str, QueueCounts> = Default::default();
        for d in deliveries {
            if let Some(queue) = d.queue.as_deref() {
                count(by_queue.entry(queue).or_default());
            }
        }
        for (queue, counts) in by_queue {
            self.emit(EngineEvent::QueueCounted {
                mapping: self.uuid,
                queue: queue.to_owned(),
                counts,
            });
        }
    }

    /// Messages left the batcher (a batch, a filtered message, a record too
    /// large for any batch): each is counted received once, here.
    pub fn received(&self, deliveries: &[Delivery]) {
        if deliveries.is_empty() {
            return;
        }
        self.unsettled.received(deliveries);
        self.env.hub.arrived(self.uuid, deliveries);
        self.count_by_queue(deliveries, |c| c.received += 1);
        self.emit(EngineEvent::Received {
            mapping: self.uuid,
            messages: deliveries.len(),
            redelivered: deliveries.iter().filter(|d| d.redelivered).count(),
        });
    }

    pub fn journal_batch(
        &self,
        messages: usize,
        bytes: usize,
        attempts: u32,
        outcome: &str,
        error: Option<String>,
        latency: Duration,
    ) {
        self.env.hub.journal(BatchRecord {
            mapping: self.uuid,
            at: Utc::now(),
            messages,
            bytes,
            attempts,
            outcome: outcome.into(),
            error,
            latency_ms: latency.as_millis() as u64,
        });
    }

    /// Records LastProcessingResult. It is for people: a store that cannot
    /// be written (a full disk) is logged, and the messages flow on.
    pub fn note_result(&self, result: String) {
        let mut last = self.last_result.locked();
        if last.as_deref() == Some(result.as_str()) {
            return;
        }
        let mappings = &self.env.mappings;
        let written = mappings.get(self.uuid).and_then(|current| {
            if current.last_processing_result != result {
                mappings.modify(self.uuid, |m| {
                    m.last_processing_result = result.clone();
                    Ok(())
                })?;
            }
            Ok(())
        });
        match written {
            Ok(()) => *last = Some(result),
            Err(e) => tracing::warn!("cannot record LastProcessingResult `{result}`: {e}"),
        }
    }

    /// Stops this mapping with a stop code; the others go on. A mapping
    /// being deleted stays Deleting: the stop code must not bring back a
    /// mapping whose delete a crash cuts short.
    pub fn stop(&self, code: StateTransitionReason, detail: String) -> anyhow::Result<()> {
        tracing::error!("mapping stopped: {code}: {detail}");
        self.env.mappings.modify(self.uuid, |m| {
            if m.state != State::Deleting {
                m.state = State::Disabled;
            }
            m.state_transition_reason = code;
            m.state_detail = Some(detail.clone());
            m.last_processing_result = format!("PROBLEM: {code}: {detail}");
            Ok(())
        })?;
        Ok(())
    }
}
