//! The invoke stage: one batch with the function until it succeeds or the
//! retries run out. It touches no broker (the settle stage does that with
//! what this returns), so it runs as a task of its own and the consume loop
//! goes on gathering and settling meanwhile.
//!
//! As on Lambda: a function error or timeout retries the whole batch with
//! back-off; after `max_redeliveries` redeliveries (1 + max attempts) the
//! batch is dead-lettered. A message whose expiration passes between
//! attempts leaves the batch as a dead letter of its own. A function that
//! reports batch item failures (`item_failures.rs`) has the messages it did
//! not name acked, and only the named ones retried, as a smaller batch with
//! its own attempts.

use super::batch::Batch;
use super::context::Context;
use super::events::{BatchId, EngineEvent};
use super::item_failures::{self, Reported};
use super::retry::Backoff;
use super::turns::{AttemptTurn, BatchTurn};
use crate::event::EventFrame;
use crate::invoke::{InvokeError, Invoker};
use crate::source::Delivery;
use crate::stamps::{self, Stage};
use crate::telemetry;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How one batch's invocations ended, for the settle stage.
pub(super) struct Delivered {
    pub batch_id: BatchId,
    /// Messages whose TTL passed between attempts: dead letters.
    pub expired: Vec<Delivery>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The last error as `Type: message`, for the dead letter's reason.
    pub error_summary: Option<String>,
    /// Messages the function accepted in an attempt that failed others
    /// (ReportBatchItemFailures): acked whatever becomes of the rest.
    pub succeeded: Vec<Delivery>,
    pub outcome: Outcome,
}

impl Delivered {
    /// Every message it settles: the batch's, and those that left it.
    pub fn deliveries(&self) -> impl Iterator<Item = &Delivery> {
        let batch = match &self.outcome {
            Outcome::Ack { batch, .. } | Outcome::DeadLetter(batch) => batch.deliveries.as_slice(),
            _ => &[],
        };
        batch.iter().chain(&self.succeeded).chain(&self.expired)
    }
}

/// Why an attempt failed: the function's answer or error (for the
/// journal, the events and the dead letter), in short, and whether the
/// mapping must stop.
struct Failure {
    text: String,
    summary: String,
    stop: Option<String>,
}

pub(super) enum Outcome {
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

/// How a session makes its batches into events and reads the answers.
pub(super) struct Invocation {
    pub frame: EventFrame,
    /// The function names the messages that failed (ReportBatchItemFailures).
    pub item_failures: bool,
}

pub(super) async fn invoke_batch(
    ctx: Arc<Context>,
    invoker: Arc<dyn Invoker>,
    invocation: Arc<Invocation>,
    turn: Arc<BatchTurn>,
    batch_id: BatchId,
    mut batch: Batch,
) -> Delivered {
    let Invocation {
        frame,
        item_failures,
    } = &*invocation;
    let engine = &ctx.env.config().engine;
    let mut backoff = Backoff::new(engine.retry_initial(), engine.retry_max());
    let max_redeliveries = engine.max_redeliveries;
    let mut done = Delivered {
        batch_id,
        expired: Vec::new(),
        attempts: 0,
        last_error: None,
        error_summary: None,
        succeeded: Vec::new(),
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
        let event = bytes::Bytes::from(batch.event(frame, attempt > 1));
        stamps::mark(batch_id.0, Stage::Built);
        let (messages, bytes) = (batch.len(), event.len());
        let started = {
            let (ctx, event, closed_by) = (ctx.clone(), event.clone(), batch.closed_by);
            AttemptTurn::new(turn.clone(), batch_id, move |at| {
                ctx.emit(EngineEvent::BatchStarted {
                    mapping: ctx.uuid,
                    batch: batch_id,
                    messages,
                    bytes,
                    attempt,
                    closed_by,
                    at,
                    event,
                })
            })
        };
        // The attempt's span, and the trace the function is given.
        let traces = batch.traces();
        let about = telemetry::About {
            mapping: ctx.uuid,
            queue: &ctx.queue,
            batch: batch_id.0,
            messages,
            traces: &traces,
        };
        let (span, given) = telemetry::Attempt::start(&about, attempt);
        // An invocation under way is never abandoned, even at shutdown:
        // cutting it short would only make the function see it twice.
        let invoked = crate::trace::scope(given, invoker.invoke_in_turn(event, started.clone()));
        let Some((result, lines)) = invoked.await else {
            // The session ended before this batch's turn: the broker has it back.
            span.end(Some("the session ended before the batch's turn"));
            done.outcome = Outcome::Cancelled;
            return done;
        };
        stamps::mark(batch_id.0, Stage::Returned);
        span.end(result.as_ref().err().map(|e| e.summary()).as_deref());
        started.announce();
        let latency = started.latency();
        if !lines.is_empty() {
            ctx.emit(EngineEvent::FunctionLog {
                mapping: ctx.uuid,
                batch: batch_id,
                attempt,
                lines,
            });
        }
        let failure = match result {
            Ok(response) => {
                let reported = if *item_failures {
                    let ids = batch.deliveries.iter().map(|d| d.label()).collect();
                    item_failures::read(&response, &ids)
                } else {
                    Reported::AllSucceeded
                };
                match reported {
                    Reported::AllSucceeded => {
                        ctx.journal_batch(messages, bytes, attempt, "OK", None, latency);
                        done.outcome = Outcome::Ack { batch, latency };
                        return done;
                    }
                    Reported::Failed(named) => {
                        // The batch keeps the named ones, to try again.
                        let accepted = batch.split_off(|d| named.contains(d.label()));
                        let text = partly_failed(&named, messages);
                        ctx.journal_batch(
                            messages,
                            bytes,
                            attempt,
                            "PARTIAL",
                            Some(text.clone()),
                            latency,
                        );
                        ctx.emit(EngineEvent::BatchPartlyFailed {
                            mapping: ctx.uuid,
                            batch: batch_id,
                            attempt,
                            succeeded: accepted.len(),
                            failed: batch.len(),
                            failed_ids: named.into_iter().collect(),
                            error: text.clone(),
                            latency,
                        });
                        done.succeeded.extend(accepted);
                        Failure {
                            summary: text.clone(),
                            text,
                            stop: None,
                        }
                    }
                    Reported::Invalid(why) => {
                        let journaled = ("FAILED", why.as_str());
                        failed(&ctx, batch_id, attempt, messages, bytes, journaled, latency);
                        Failure {
                            summary: why.clone(),
                            text: why,
                            stop: None,
                        }
                    }
                }
            }
            Err(error) => {
                let (outcome, text) = match &error {
                    InvokeError::ConfigNotValid(m) => ("FUNCTION_CONFIG_NOT_VALID", m.clone()),
                    InvokeError::Function { payload, .. } => ("FAILED", payload.clone()),
                    other => ("FAILED", other.to_string()),
                };
                tracing::warn!(attempt, messages, batch = %batch_id, "function failed: {error}");
                let journaled = (outcome, text.as_str());
                failed(&ctx, batch_id, attempt, messages, bytes, journaled, latency);
                Failure {
                    text,
                    summary: error.summary(),
                    stop: match error {
                        InvokeError::ConfigNotValid(m) => Some(m),
                        _ => None,
                    },
                }
            }
        };
        if let Some(m) = failure.stop {
            done.outcome = Outcome::Stop(m);
            return done;
        }
        let Failure { text, summary, .. } = failure;
        done.last_error = Some(text);
        if attempt > max_redeliveries {
            done.error_summary = Some(summary);
            done.outcome = Outcome::DeadLetter(batch);
            return done;
        }
        ctx.note_result(format!("PROBLEM: Function call failed. {summary}"));
        done.error_summary = Some(summary);
        let delay = backoff.next_delay();
        tokio::select! {
            // Shutting down mid-retry: the broker takes the batch back.
            _ = ctx.cancel.cancelled() => {
                done.outcome = Outcome::Cancelled;
                return done;
            }
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// An attempt of the whole batch failed: the journal and the watchers are told.
fn failed(
    ctx: &Context,
    batch: BatchId,
    attempt: u32,
    messages: usize,
    bytes: usize,
    (outcome, text): (&str, &str),
    latency: Duration,
) {
    ctx.journal_batch(
        messages,
        bytes,
        attempt,
        outcome,
        Some(text.to_owned()),
        latency,
    );
    ctx.emit(EngineEvent::BatchFailed {
        mapping: ctx.uuid,
        batch,
        messages,
        attempt,
        error: text.to_owned(),
        latency,
    });
}

/// The named failures in words: how many, and the first few ids.
fn partly_failed(named: &std::collections::BTreeSet<String>, of: usize) -> String {
    let shown: Vec<&str> = named.iter().take(3).map(String::as_str).collect();
    let more = named.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "batchItemFailures: {} of {of} failed ({}{tail})",
        named.len(),
        shown.join(", ")
    )
}
