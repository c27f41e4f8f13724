//! The invoke stage: one batch with the function until it succeeds or the
//! retries run out. It touches no broker (the settle stage does that with
//! what this returns), so it runs as a task of its own and the consume loop
//! goes on gathering and settling meanwhile.
//!
//! As on Lambda: a function error or timeout retries the whole batch with
//! back-off; after `max_redeliveries` redeliveries (1 + max attempts) the
//! batch is dead-lettered. A message whose expiration passes between
//! attempts leaves the batch as a dead letter of its own.

use super::batch::Batch;
use super::context::Context;
use super::events::{BatchId, EngineEvent};
use super::retry::Backoff;
use super::turns::{AttemptTurn, BatchTurn};
use crate::event::EventFrame;
use crate::invoke::{InvokeError, Invoker};
use crate::source::Delivery;
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
    pub outcome: Outcome,
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

pub(super) async fn invoke_batch(
    ctx: Arc<Context>,
    invoker: Arc<dyn Invoker>,
    frame: Arc<EventFrame>,
    turn: Arc<BatchTurn>,
    batch_id: BatchId,
    mut batch: Batch,
) -> Delivered {
    let engine = &ctx.env.config().engine;
    let mut backoff = Backoff::new(engine.retry_initial(), engine.retry_max());
    let max_redeliveries = engine.max_redeliveries;
    let mut done = Delivered {
        batch_id,
        expired: Vec::new(),
        attempts: 0,
        last_error: None,
        error_summary: None,
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
        let event = bytes::Bytes::from(batch.event(&frame, attempt > 1));
        let (messages, bytes) = (batch.len(), event.len());
        let started = {
            let (ctx, event, closed_by) = (ctx.clone(), event.clone(), batch.closed_by);
            AttemptTurn::new(turn.clone(), move |at| {
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
        // An invocation under way is never abandoned, even at shutdown:
        // cutting it short would only make the function see it twice.
        let Some((result, lines)) = invoker.invoke_in_turn(event, started.clone()).await else {
            // The session ended before this batch's turn: the broker has it back.
            done.outcome = Outcome::Cancelled;
            return done;
        };
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
        let error = match result {
            Ok(_response) => {
                ctx.journal_batch(messages, bytes, attempt, "OK", None, latency);
                done.outcome = Outcome::Ack { batch, latency };
                return done;
            }
            Err(e) => e,
        };
        let (outcome, text) = match &error {
            InvokeError::ConfigNotValid(m) => ("FUNCTION_CONFIG_NOT_VALID", m.clone()),
            InvokeError::Function { payload, .. } => ("FAILED", payload.clone()),
            other => ("FAILED", other.to_string()),
        };
        tracing::warn!(attempt, messages, batch = %batch_id, "function failed: {error}");
        ctx.journal_batch(
            messages,
            bytes,
            attempt,
            outcome,
            Some(text.clone()),
            latency,
        );
        ctx.emit(EngineEvent::BatchFailed {
            mapping: ctx.uuid,
            batch: batch_id,
            messages,
            attempt,
            error: text.clone(),
            latency,
        });
        if let InvokeError::ConfigNotValid(m) = error {
            done.outcome = Outcome::Stop(m);
            return done;
        }
        done.last_error = Some(text);
        done.error_summary = Some(error.summary());
        if attempt > max_redeliveries {
            done.outcome = Outcome::DeadLetter(batch);
            return done;
        }
        ctx.note_result(format!(
            "PROBLEM: Function call failed. {}",
            error.summary()
        ));
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
