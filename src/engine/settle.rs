//! The settle stage: tells the broker how a batch ended (ack, or dead
//! letters), and acks what the filters kept from the function. Nothing is
//! acked before its fate is durable: a dead letter is in the journal before
//! the broker is asked to move it.

use super::attempts::{Delivered, Outcome};
use super::context::{Context, SessionEnd};
use super::events::{BatchId, EngineEvent};
use super::history::What;
use super::retry::Backoff;
use crate::mapping::StateTransitionReason;
use crate::source::{DeadLetterError, DeadLetterReason, Delivery, Source};
use crate::store::DeadLetter;
use chrono::Utc;

pub(super) async fn settle(
    ctx: &Context,
    source: &mut dyn Source,
    mut done: Delivered,
) -> anyhow::Result<Option<SessionEnd>> {
    let batch_id = Some(done.batch_id);
    if !done.succeeded.is_empty() {
        let accepted = std::mem::take(&mut done.succeeded);
        if let Some(end) = ack(ctx, source, done.batch_id, &accepted).await {
            return Ok(Some(end));
        }
    }
    if !done.expired.is_empty() {
        let end = dead_letter(
            ctx,
            source,
            done.expired,
            &DeadLetterReason::Expired,
            done.attempts,
            done.last_error.clone(),
            batch_id,
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
                last_error: done.error_summary.clone(),
            };
            let all = std::mem::take(&mut batch.deliveries);
            dead_letter(
                ctx,
                source,
                all,
                &reason,
                done.attempts,
                done.last_error,
                batch_id,
            )
            .await
        }
        Outcome::Ack { batch, latency } => {
            let tags: Vec<_> = batch.deliveries.iter().map(|d| d.tag.clone()).collect();
            let settled = source.ack(&tags).await;
            if settled.is_ok() {
                ctx.unsettled.settled(&batch.deliveries);
            }
            ctx.emit(EngineEvent::BatchSucceeded {
                mapping: ctx.uuid,
                batch: done.batch_id,
                messages: tags.len(),
                attempts: done.attempts,
                latency,
            });
            if settled.is_ok() {
                ctx.count_by_queue(&batch.deliveries, |c| c.succeeded += 1);
            }
            // After the success, so each message's history tells them in order.
            let end = match &settled {
                Ok(()) => What::Acked,
                Err(e) => What::SettleFailed {
                    reason: e.to_string(),
                },
            };
            ctx.env.hub.ended(ctx.uuid, &batch.deliveries, end);
            ctx.note_result("OK".into());
            Ok(match settled {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!("{e}; the broker will deliver them again");
                    ctx.emit(EngineEvent::SettleFailed {
                        mapping: ctx.uuid,
                        batch: done.batch_id,
                        messages: e.count,
                        reason: e.reason.clone(),
                    });
                    Some(SessionEnd::Lost(e.to_string()))
                }
            })
        }
    }
}

/// Acks messages the function accepted in an attempt that failed others
/// (ReportBatchItemFailures; they were counted by that attempt's event).
async fn ack(
    ctx: &Context,
    source: &mut dyn Source,
    batch: BatchId,
    accepted: &[Delivery],
) -> Option<SessionEnd> {
    let tags: Vec<_> = accepted.iter().map(|d| d.tag.clone()).collect();
    match source.ack(&tags).await {
        Ok(()) => {
            ctx.unsettled.settled(accepted);
            ctx.count_by_queue(accepted, |c| c.succeeded += 1);
            ctx.env.hub.ended(ctx.uuid, accepted, What::Acked);
            None
        }
        Err(e) => {
            tracing::warn!("{e}; the broker will deliver them again");
            let reason = e.to_string();
            let failed = What::SettleFailed {
                reason: reason.clone(),
            };
            ctx.env.hub.ended(ctx.uuid, accepted, failed);
            ctx.emit(EngineEvent::SettleFailed {
                mapping: ctx.uuid,
                batch,
                messages: e.count,
                reason: e.reason,
            });
            Some(SessionEnd::Lost(reason))
        }
    }
}

/// DestinationConfig.OnFailure: the dead letters go to the destination as
/// one on-failure record (`on_failure.rs`), and only once it took them are
/// they acked. A destination that refuses is a refusal the caller retries;
/// a lost ack leaves them with the broker (they come back, and may reach
/// the destination twice: at least once).
async fn to_destination(
    ctx: &Context,
    source: &mut dyn Source,
    to: &crate::mapping::Destination,
    deliveries: &[Delivery],
    (reason, attempts, error): (&DeadLetterReason, u32, Option<&str>),
) -> Result<(), DeadLetterError> {
    let env = &ctx.env;
    let mapping = env
        .mappings
        .get(ctx.uuid)
        .map_err(|e| DeadLetterError::Refused(e.to_string()))?;
    let event = super::event_frame(env.config(), &mapping).assemble_by_queue(
        deliveries
            .iter()
            .map(|d| (d.queue.as_deref(), d.record.as_slice())),
    );
    let record = super::on_failure::record(&mapping.function_arn, &event, reason, attempts, error);
    env.wiring
        .on_failure(env.wires(), &mapping, to, record.into())
        .await
        .map_err(DeadLetterError::Refused)?;
    let tags: Vec<_> = deliveries.iter().map(|d| d.tag.clone()).collect();
    Ok(source.ack(&tags).await?)
}

/// A message that matched no filter: acked at once, as Lambda does (it is
/// never invoked and never dead-lettered).
pub(super) async fn ack_filtered(
    ctx: &Context,
    source: &mut dyn Source,
    delivery: Delivery,
) -> Option<SessionEnd> {
    let settled = source.ack(std::slice::from_ref(&delivery.tag)).await;
    ctx.emit(EngineEvent::Filtered {
        mapping: ctx.uuid,
        messages: 1,
    });
    let one = std::slice::from_ref(&delivery);
    match settled {
        Ok(()) => {
            ctx.unsettled.settled(one);
            ctx.count_by_queue(one, |c| c.filtered += 1);
            ctx.env.hub.ended(ctx.uuid, one, What::Filtered);
            None
        }
        Err(e) => {
            let reason = e.to_string();
            let failed = What::SettleFailed {
                reason: reason.clone(),
            };
            ctx.env.hub.ended(ctx.uuid, one, failed);
            Some(SessionEnd::Lost(reason))
        }
    }
}

/// Journals the dead letters (durably), then has the broker move them. A
/// destination that refuses them (full, missing) is tried again with
/// back-off, and the function is not invoked again: their fate is known.
/// The journal says a letter moved only once the broker confirmed it.
pub(super) async fn dead_letter(
    ctx: &Context,
    source: &mut dyn Source,
    deliveries: Vec<Delivery>,
    reason: &DeadLetterReason,
    attempts: u32,
    error: Option<String>,
    batch: Option<BatchId>,
) -> anyhow::Result<Option<SessionEnd>> {
    let destination = match &ctx.on_failure {
        Some(to) => to.arn().to_owned(),
        None => source.dead_letter_destination(),
    };
    let letters: Vec<DeadLetter> = deliveries
        .iter()
        .map(|d| DeadLetter {
            id: 0,
            mapping: ctx.uuid,
            at: Utc::now(),
            queue: d.queue.as_deref().unwrap_or(&ctx.queue).to_owned(),
            message_id: d.message_id.clone(),
            attempts,
            reason: reason.to_string(),
            error: error.clone(),
            destination: match &ctx.on_failure {
                Some(_) => destination.clone(),
                None => source.destination_of(d),
            },
            record: d.record.clone(),
            body: d.original_body().to_vec(),
            moved: false,
            amqp_headers: source.original_headers(&d.tag),
        })
        .collect();
    let store = ctx.env.mappings.store().clone();
    let journaled = tokio::task::spawn_blocking(move || store.add_dead_letters(&letters)).await?;
    let ids = match journaled {
        Ok(ids) => ids,
        Err(e) => {
            // Without the journal's copy the broker keeps the messages: they
            // come back after a reconnect, and the journal is tried again.
            let problem = format!("cannot write the dead-letter journal: {e:#}");
            tracing::error!("{problem}; the messages stay with the broker");
            ctx.note_result(format!("PROBLEM: {problem}"));
            return Ok(Some(SessionEnd::Lost(problem)));
        }
    };
    let engine = &ctx.env.config().engine;
    let mut backoff = Backoff::new(engine.retry_initial(), engine.retry_max());
    loop {
        let moved = match &ctx.on_failure {
            None => source.dead_letter(&deliveries, reason).await,
            Some(to) => {
                let failure = (reason, attempts, error.as_deref());
                to_destination(ctx, source, to, &deliveries, failure).await
            }
        };
        match moved {
            Ok(()) => break,
            Err(DeadLetterError::Refused(why)) => {
                let delay = backoff.next_delay();
                let problem = format!(
                    "{} message(s) cannot be dead-lettered to {destination}: {why}; trying again in {delay:?}",
                    deliveries.len()
                );
                tracing::warn!("{problem}");
                ctx.note_result(format!("PROBLEM: {problem}"));
                tokio::select! {
                    // Stopping: the broker takes them back, the journal
                    // keeps them as not moved.
                    _ = ctx.cancel.cancelled() => return Ok(Some(SessionEnd::Cancelled)),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(DeadLetterError::Lost(e)) => {
                tracing::warn!("{e}; the broker will deliver them again");
                let failed = What::SettleFailed {
                    reason: e.to_string(),
                };
                ctx.env.hub.ended(ctx.uuid, &deliveries, failed);
                return Ok(Some(SessionEnd::Lost(e.to_string())));
            }
        }
    }
    ctx.unsettled.settled(&deliveries);
    ctx.count_by_queue(&deliveries, |c| c.dead_lettered += 1);
    let moved = What::DeadLettered {
        destination: destination.clone(),
        reason: reason.to_string(),
    };
    ctx.env.hub.ended(ctx.uuid, &deliveries, moved);
    let store = ctx.env.mappings.store().clone();
    if let Err(e) = tokio::task::spawn_blocking(move || store.mark_moved(&ids)).await? {
        tracing::warn!("the dead letters moved, but the journal could not say so: {e:#}");
    }
    tracing::warn!(messages = deliveries.len(), %destination, "dead-lettered: {reason}");
    ctx.emit(EngineEvent::DeadLettered {
        mapping: ctx.uuid,
        batch,
        messages: deliveries.len(),
        reason: reason.to_string(),
    });
    ctx.note_result(format!(
        "PROBLEM: {} message(s) dead-lettered to {destination}: {reason}",
        deliveries.len()
    ));
    Ok(None)
}
