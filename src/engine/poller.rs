//! One mapping's task: connect, gather a batch, invoke, settle; again.
//!
//! Outcomes, as on Lambda: success acks the batch; a function error or
//! timeout retries the whole batch with back-off, and after
//! MAX_REDELIVERIES redeliveries every message is dead-lettered. A stop code
//! ends the task with the reason in the mapping; a broker that goes away is
//! retried with back-off until it returns.

use super::batch::{Batch, Batcher, Gathered};
use super::retry::Backoff;
use super::unsettled::Unsettled;
use super::{Control, EngineEvent, RunSettings};
use crate::config::BrokerEngine;
use crate::event::EventFrame;
use crate::invoke::{self, InvokeError, Invoker};
use crate::mapping::{MAX_REDELIVERIES, Mapping, SourceAccessType, State, StateTransitionReason};
use crate::secrets::SecretError;
use crate::source::activemq::{ActiveMqSource, StompConfig};
use crate::source::rabbitmq::{RabbitConfig, RabbitSource};
use crate::source::{DeadLetterReason, Delivery, Source, SourceError};
use crate::store::{BatchRecord, DeadLetter};
use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// How one batch's invocations ended, for [`Poller::settle`].
struct Delivered {
    /// Messages whose TTL passed between attempts: dead letters.
    expired: Vec<Delivery>,
    attempts: u32,
    last_error: Option<String>,
    outcome: Outcome,
}

enum Outcome {
    /// Every message expired before an attempt.
    Empty,
    Ack {
        batch: Batch,
        latency: Duration,
    },
    /// The retries ran out.
    DeadLetter(Batch),
    /// The function cannot be invoked at all: stop the mapping.
    Stop(String),
    /// Shutting down between attempts: the broker takes the batch back.
    Cancelled,
}

/// Why a consuming session ended.
#[derive(Clone)]
enum SessionEnd {
    Cancelled,
    SettingsChanged,
    Lost(String),
    Stop(StateTransitionReason, String),
}

struct Poller {
    control: Control,
    uuid: Uuid,
    cancel: CancellationToken,
    settings: watch::Receiver<RunSettings>,
    /// The LastProcessingResult this task wrote last, so that a steady
    /// stream of good batches costs no store reads or writes.
    last_result: std::sync::Mutex<Option<String>>,
    unsettled: Unsettled,
}

pub(super) async fn run(
    control: Control,
    uuid: Uuid,
    cancel: CancellationToken,
    settings: watch::Receiver<RunSettings>,
) -> anyhow::Result<()> {
    let (function, queue) = match control.get(uuid) {
        Ok(m) => (m.spec.function_name.clone(), m.spec.queue().to_owned()),
        Err(_) => Default::default(),
    };
    let poller = Poller {
        control,
        uuid,
        cancel,
        settings,
        last_result: std::sync::Mutex::new(None),
        unsettled: Unsettled::default(),
    };
    let span = tracing::info_span!("mapping", %uuid, %function, %queue);
    poller.run().instrument(span).await
}

impl Poller {
    async fn run(self) -> anyhow::Result<()> {
        let mapping = self.control.get(self.uuid)?;
        let invoker = match self.invoker(&mapping).await {
            Ok(i) => i,
            Err(InvokeError::ConfigNotValid(m)) => {
                return self.stop(StateTransitionReason::FunctionConfigNotValid, m);
            }
            Err(e) => {
                return self.stop(StateTransitionReason::FunctionConfigNotValid, e.to_string());
            }
        };
        let engine = self.control.config().engine.clone();
        let mut reconnect = Backoff::new(Duration::from_secs(1), engine.reconnect_max());
        let mut settings = self.settings.clone();
        // Read a refused Secrets Manager secret again once, not forever.
        let mut reread_secret = false;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            let mapping = self.control.get(self.uuid)?;
            let connected = tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                s = self.connect(&mapping) => s,
            };
            let mut source = match connected {
                Ok(s) => s,
                Err(SourceError::Connection(m)) => {
                    let delay = reconnect.next_delay();
                    tracing::warn!("{m}; retrying in {delay:?}");
                    self.note_result(format!("PROBLEM: Connection error. {m}"));
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
                Err(SourceError::Authentication(m))
                    if !reread_secret && self.secret_was_rotated(&mapping) =>
                {
                    tracing::warn!("{m}; reading the secret again");
                    reread_secret = true;
                    continue;
                }
                Err(e) => return self.stop(stop_code(&e), e.to_string()),
            };
            reconnect.reset();
            reread_secret = false;
            let end = self
                .consume(&mut *source, &*invoker, &mapping, &mut settings)
                .await;
            source.close().await;
            self.unsettled.session_ended();
            match end? {
                SessionEnd::Cancelled => return Ok(()),
                SessionEnd::SettingsChanged => continue,
                SessionEnd::Stop(code, m) => return self.stop(code, m),
                SessionEnd::Lost(m) => {
                    let delay = reconnect.next_delay();
                    tracing::warn!("{m}; reconnecting in {delay:?}");
                    self.note_result(format!("PROBLEM: Connection error. {m}"));
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// The broker refused the credentials. A Secrets Manager secret may have
    /// been rotated since it was read: forget it and try once more.
    fn secret_was_rotated(&self, mapping: &Mapping) -> bool {
        let uri = mapping
            .spec
            .access(SourceAccessType::BasicAuth)
            .unwrap_or_default();
        self.control.secrets().forget(uri)
    }

    async fn invoker(&self, mapping: &Mapping) -> Result<Arc<dyn Invoker>, InvokeError> {
        let name = &mapping.spec.function_name;
        let function = self.control.config().functions.get(name).ok_or_else(|| {
            InvokeError::ConfigNotValid(format!(
                "function `{name}` is not defined; add a [functions.{name}] section"
            ))
        })?;
        invoke::build(function).await.map_err(|e| match e {
            InvokeError::ConfigNotValid(m) => {
                InvokeError::ConfigNotValid(format!("[functions.{name}]: {m}"))
            }
            other => other,
        })
    }

    async fn connect(&self, mapping: &Mapping) -> Result<Box<dyn Source>, SourceError> {
        let config = self.control.config();
        let spec = &mapping.spec;
        let broker = config.broker(&spec.event_source_arn).ok_or_else(|| {
            SourceError::Config(format!(
                "EventSourceArn {} names no configured broker",
                spec.event_source_arn
            ))
        })?;
        let secret_arn = spec.access(SourceAccessType::BasicAuth).unwrap_or_default();
        let secret = self
            .control
            .secrets()
            .get(secret_arn)
            .await
            .map_err(|e| match e {
                SecretError::Config(m) => SourceError::Config(m),
                SecretError::Unavailable(m) => SourceError::Connection(m),
            })?;
        let settings = self.settings.borrow().clone();
        match broker.engine {
            BrokerEngine::Rabbitmq => {
                let source = RabbitSource::connect(RabbitConfig {
                    endpoints: broker.endpoints.clone(),
                    secret,
                    vhost: spec
                        .access(SourceAccessType::VirtualHost)
                        .unwrap_or("/")
                        .to_owned(),
                    queue: spec.queue().to_owned(),
                    consumer_tag: self.uuid.to_string(),
                    prefetch: prefetch(&settings).min(u32::from(u16::MAX)) as u16,
                    ca_file: broker.ca_file.clone(),
                })
                .await?;
                Ok(Box::new(source))
            }
            BrokerEngine::Activemq => {
                let source = ActiveMqSource::connect(StompConfig {
                    endpoints: broker.endpoints.clone(),
                    ca_file: broker.ca_file.clone(),
                    secret,
                    queue: spec.queue().to_owned(),
                    subscription: self.uuid.to_string(),
                    prefetch: prefetch(&settings),
                    seen_before: self.unsettled.seen_before(),
                })
                .await?;
                Ok(Box::new(source))
            }
        }
    }

    /// Consumes until the session ends: gathers batches, runs up to
    /// MaximumConcurrency of them at once, and settles each as it finishes.
    /// One batch is gathered ahead, so the next is ready when a slot frees.
    async fn consume(
        &self,
        source: &mut dyn Source,
        invoker: &dyn Invoker,
        mapping: &Mapping,
        settings: &mut watch::Receiver<RunSettings>,
    ) -> anyhow::Result<SessionEnd> {
        let current = settings.borrow_and_update().clone();
        let mut batcher = Batcher::new(
            super::event_frame(self.control.config(), mapping),
            current.batch_size as usize,
            current.window,
            mapping.spec.filters().ok().flatten(),
        );
        let frame = batcher.frame.clone();
        let slots = current.concurrency.max(1) as usize;
        let mut running = FuturesUnordered::new();
        let mut waiting: VecDeque<Batch> = VecDeque::new();
        let mut end: Option<SessionEnd> = None;
        loop {
            while end.is_none() && running.len() < slots {
                let Some(batch) = waiting.pop_front() else {
                    break;
                };
                running.push(self.invoke_batch(invoker, &frame, batch));
            }
            if let Some(end) = &end
                && running.is_empty()
            {
                return Ok(end.clone());
            }
            let slot_free = running.len() < slots;
            if end.is_none()
                && slot_free
                && let Some(batch) = batcher.take_due()
            {
                self.count_received_batch(&batch, batcher.take_filtered());
                running.push(self.invoke_batch(invoker, &frame, batch));
                continue;
            }
            let may_gather = end.is_none() && waiting.is_empty();
            tokio::select! {
                // Settling first keeps the broker's unacked count low.
                biased;
                Some(done) = running.next(), if !running.is_empty() => {
                    let mut finished = VecDeque::from([done]);
                    while let Some(done) = finished.pop_front() {
                        // The next batch goes to the function before this
                        // one is settled: the broker's round trip overlaps
                        // the invocation, and invocations stay in order.
                        while end.is_none() && running.len() < slots {
                            let Some(batch) = waiting.pop_front() else {
                                break;
                            };
                            running.push(self.invoke_batch(invoker, &frame, batch));
                        }
                        if end.is_none()
                            && running.len() < slots
                            && let Some(batch) = batcher.take_due()
                        {
                            self.count_received_batch(&batch, batcher.take_filtered());
                            running.push(self.invoke_batch(invoker, &frame, batch));
                        }
                        let settling = self.settle(source, done);
                        tokio::pin!(settling);
                        let ended = loop {
                            tokio::select! {
                                ended = &mut settling => break ended?,
                                Some(d) = running.next(), if !running.is_empty() => {
                                    finished.push_back(d);
                                }
                            }
                        };
                        if let Some(e) = ended {
                            end.get_or_insert(e);
                        }
                    }
                }
                _ = self.cancel.cancelled(), if end.is_none() => {
                    end = Some(SessionEnd::Cancelled);
                }
                changed = settings.changed(), if end.is_none() => {
                    end = Some(if changed.is_err() {
                        SessionEnd::Cancelled
                    } else {
                        SessionEnd::SettingsChanged
                    });
                }
                gathered = batcher.gather(source, !slot_free), if may_gather => {
                    self.count_received(&gathered, batcher.take_filtered());
                    match gathered {
                        Err(SourceError::Connection(m)) => end = Some(SessionEnd::Lost(m)),
                        Err(e) => end = Some(SessionEnd::Stop(stop_code(&e), e.to_string())),
                        Ok(Gathered::TooLarge(d)) => {
                            let reason = DeadLetterReason::TooLarge {
                                bytes: d.record.len(),
                            };
                            if let Some(e) = self.dead_letter(source, vec![d], &reason, 0, None).await? {
                                end = Some(e);
                            }
                        }
                        Ok(Gathered::Batch(batch)) => waiting.push_back(batch),
                    }
                }
            }
        }
    }

    fn count_received_batch(&self, batch: &Batch, filtered: usize) {
        self.unsettled.received(&batch.deliveries);
        let redelivered = batch.deliveries.iter().filter(|d| d.redelivered).count();
        self.emit_received(batch.len(), redelivered, filtered);
    }

    fn count_received(&self, gathered: &Result<Gathered, SourceError>, filtered: usize) {
        let (received, redelivered) = match gathered {
            Ok(Gathered::Batch(b)) => (
                {
                    self.unsettled.received(&b.deliveries);
                    b.len()
                },
                b.deliveries.iter().filter(|d| d.redelivered).count(),
            ),
            Ok(Gathered::TooLarge(d)) => {
                self.unsettled.received(std::slice::from_ref(d));
                (1, usize::from(d.redelivered))
            }
            Err(_) => (0, 0),
        };
        self.emit_received(received, redelivered, filtered);
    }

    fn emit_received(&self, received: usize, redelivered: usize, filtered: usize) {
        if received + filtered > 0 {
            self.control.emit(EngineEvent::Received {
                mapping: self.uuid,
                messages: received + filtered,
                redelivered,
            });
        }
        if filtered > 0 {
            self.control.emit(EngineEvent::Filtered {
                mapping: self.uuid,
                messages: filtered,
            });
        }
    }

    /// Invokes the function with one batch until it succeeds or the retries
    /// run out. Touches no broker: [`Self::settle`] does that with the result.
    async fn invoke_batch(
        &self,
        invoker: &dyn Invoker,
        frame: &EventFrame,
        mut batch: Batch,
    ) -> Delivered {
        let mut backoff = {
            let s = &self.control.config().engine;
            Backoff::new(s.retry_initial(), s.retry_max())
        };
        let mut done = Delivered {
            expired: Vec::new(),
            attempts: 0,
            last_error: None,
            outcome: Outcome::Empty,
        };
        loop {
            let now = SystemTime::now();
            let expired = batch.split_off(|d| d.expires_at.is_none_or(|t| t > now));
            done.expired.extend(expired);
            if batch.is_empty() {
                return done;
            }
            done.attempts += 1;
            let attempt = done.attempts;
            let event = bytes::Bytes::from(batch.event(frame));
            let (messages, bytes) = (batch.len(), event.len());
            self.control.emit(EngineEvent::BatchStarted {
                mapping: self.uuid,
                messages,
                bytes,
                attempt,
                event: event.clone(),
            });
            let started = Instant::now();
            // An invocation under way is never abandoned, even at shutdown:
            // cutting it short would only make the function see it twice.
            let result = invoker.invoke(event).await;
            let latency = started.elapsed();
            let error = match result {
                Ok(_response) => {
                    self.journal_batch(messages, bytes, attempt, "OK", None, latency);
                    done.outcome = Outcome::Ack { batch, latency };
                    return done;
                }
                Err(InvokeError::ConfigNotValid(m)) => {
                    self.control.emit(EngineEvent::BatchFailed {
                        mapping: self.uuid,
                        messages,
                        attempt,
                        error: m.clone(),
                    });
                    self.journal_batch(
                        messages,
                        bytes,
                        attempt,
                        "FUNCTION_CONFIG_NOT_VALID",
                        Some(m.clone()),
                        latency,
                    );
                    done.outcome = Outcome::Stop(m);
                    return done;
                }
                Err(e) => e,
            };
            let text = match &error {
                InvokeError::Function { payload, .. } => payload.clone(),
                other => other.to_string(),
            };
            tracing::warn!(attempt, messages, "function failed: {error}");
            self.journal_batch(
                messages,
                bytes,
                attempt,
                "FAILED",
                Some(text.clone()),
                latency,
            );
            self.control.emit(EngineEvent::BatchFailed {
                mapping: self.uuid,
                messages,
                attempt,
                error: text.clone(),
            });
            done.last_error = Some(text);
            if attempt > MAX_REDELIVERIES {
                done.outcome = Outcome::DeadLetter(batch);
                return done;
            }
            self.note_result(format!(
                "PROBLEM: Function call failed. {}",
                one_line(&error.to_string())
            ));
            let delay = backoff.next_delay();
            tokio::select! {
                // Shutting down mid-retry: the broker takes the batch back.
                _ = self.cancel.cancelled() => {
                    done.outcome = Outcome::Cancelled;
                    return done;
                }
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Tells the broker how a batch ended: ack, or dead letters.
    async fn settle(
        &self,
        source: &mut dyn Source,
        done: Delivered,
    ) -> anyhow::Result<Option<SessionEnd>> {
        if !done.expired.is_empty() {
            let end = self
                .dead_letter(
                    source,
                    done.expired,
                    &DeadLetterReason::Expired,
                    done.attempts,
                    done.last_error.clone(),
                )
                .await?;
            if end.is_some() {
                return Ok(end);
            }
        }
        match done.outcome {
            Outcome::Empty => Ok(None),
            Outcome::Cancelled => Ok(Some(SessionEnd::Cancelled)),
            Outcome::Stop(m) => Ok(Some(SessionEnd::Stop(
                StateTransitionReason::FunctionConfigNotValid,
                m,
            ))),
            Outcome::DeadLetter(mut batch) => {
                let reason = DeadLetterReason::RetriesExhausted {
                    attempts: done.attempts,
                };
                let all = std::mem::take(&mut batch.deliveries);
                self.dead_letter(source, all, &reason, done.attempts, done.last_error)
                    .await
            }
            Outcome::Ack { batch, latency } => {
                let tags: Vec<_> = batch.deliveries.iter().map(|d| d.tag.clone()).collect();
                let settled = source.ack(&tags).await;
                if settled.is_ok() {
                    self.unsettled.settled(&batch.deliveries);
                }
                self.control.emit(EngineEvent::BatchSucceeded {
                    mapping: self.uuid,
                    messages: tags.len(),
                    attempts: done.attempts,
                    latency,
                });
                self.note_result("OK".into());
                Ok(match settled {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::warn!("{e}; the broker will deliver them again");
                        self.control.emit(EngineEvent::SettleFailed {
                            mapping: self.uuid,
                            messages: e.count,
                            reason: e.reason.clone(),
                        });
                        Some(SessionEnd::Lost(e.to_string()))
                    }
                })
            }
        }
    }

    /// Journals the dead letters (durably), then has the broker move them.
    async fn dead_letter(
        &self,
        source: &mut dyn Source,
        deliveries: Vec<Delivery>,
        reason: &DeadLetterReason,
        attempts: u32,
        error: Option<String>,
    ) -> anyhow::Result<Option<SessionEnd>> {
        let mapping = self.control.get(self.uuid)?;
        let destination = source.dead_letter_destination();
        let letters: Vec<DeadLetter> = deliveries
            .iter()
            .map(|d| DeadLetter {
                id: 0,
                mapping: self.uuid,
                at: Utc::now(),
                queue: mapping.spec.queue().to_owned(),
                message_id: d.message_id.clone(),
                attempts,
                reason: reason.to_string(),
                error: error.clone(),
                destination: destination.clone(),
                record: d.record.clone(),
                body: d.body.to_vec(),
            })
            .collect();
        let store = self.control.store().clone();
        let journaled =
            tokio::task::spawn_blocking(move || store.add_dead_letters(&letters)).await?;
        if let Err(e) = journaled {
            // Without the journal's copy the broker keeps the messages: they
            // come back after a reconnect, and the journal is tried again.
            let problem = format!("cannot write the dead-letter journal: {e:#}");
            tracing::error!("{problem}; the messages stay with the broker");
            self.note_result(format!("PROBLEM: {problem}"));
            return Ok(Some(SessionEnd::Lost(problem)));
        }
        tracing::warn!(messages = deliveries.len(), %destination, "dead-lettered: {reason}");
        let settled = source.dead_letter(&deliveries, reason).await;
        if settled.is_ok() {
            self.unsettled.settled(&deliveries);
        }
        self.control.emit(EngineEvent::DeadLettered {
            mapping: self.uuid,
            messages: deliveries.len(),
            reason: reason.to_string(),
        });
        self.note_result(format!(
            "PROBLEM: {} message(s) dead-lettered to {destination}: {reason}",
            deliveries.len()
        ));
        Ok(match settled {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!("{e}; the broker will deliver them again");
                Some(SessionEnd::Lost(e.to_string()))
            }
        })
    }

    fn journal_batch(
        &self,
        messages: usize,
        bytes: usize,
        attempts: u32,
        outcome: &str,
        error: Option<String>,
        latency: Duration,
    ) {
        let record = BatchRecord {
            mapping: self.uuid,
            at: Utc::now(),
            messages,
            bytes,
            attempts,
            outcome: outcome.into(),
            error,
            latency_ms: latency.as_millis() as u64,
        };
        self.control.journal(record);
    }

    /// Records LastProcessingResult. It is for people: a store that cannot
    /// be written (a full disk) is logged, and the messages flow on.
    fn note_result(&self, result: String) {
        let mut last = self.last_result.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(result.as_str()) {
            return;
        }
        let written = self.control.get(self.uuid).and_then(|current| {
            if current.last_processing_result != result {
                self.control
                    .modify(self.uuid, |m| m.last_processing_result = result.clone())?;
            }
            Ok(())
        });
        match written {
            Ok(()) => *last = Some(result),
            Err(e) => tracing::warn!("cannot record LastProcessingResult `{result}`: {e:#}"),
        }
    }

    /// Stops this mapping with a stop code; the others go on.
    fn stop(&self, code: StateTransitionReason, detail: String) -> anyhow::Result<()> {
        tracing::error!("mapping stopped: {code}: {detail}");
        self.control.modify(self.uuid, |m| {
            m.state = State::Disabled;
            m.state_transition_reason = code;
            m.state_detail = Some(detail.clone());
            m.last_processing_result = format!("PROBLEM: {code}: {detail}");
        })?;
        Ok(())
    }
}

fn prefetch(settings: &RunSettings) -> u32 {
    super::prefetch(settings.batch_size, settings.concurrency)
}

fn stop_code(e: &SourceError) -> StateTransitionReason {
    match e {
        SourceError::Authentication(_) => StateTransitionReason::EventSourceAuthnError,
        SourceError::Authorization(_) => StateTransitionReason::EventSourceAuthzError,
        SourceError::Config(_) | SourceError::Connection(_) => {
            StateTransitionReason::EsmConfigNotValid
        }
    }
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.len() > 200 {
        format!("{}…", &line[..line.floor_char_boundary(200)])
    } else {
        line.to_owned()
    }
}
