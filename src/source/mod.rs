//! Sources: one consumer per mapping on a broker queue.
//!
//! A source hands the engine [`Delivery`]s whose Lambda record is already
//! rendered, and settles them (ack, dead letter) when the engine says so.
//! Everything broker-specific stays behind the [`Source`] trait.

use crate::mapping::StateTransitionReason;
use crate::sync::Unpoisoned;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::time::SystemTime;

pub mod ack_order;
pub mod activemq;
pub mod backlog;
pub mod memory;
pub mod merged;
pub mod message;
pub mod original;
pub mod outbound;
pub mod rabbitmq;
pub mod shared;
/// The STOMP 1.2 frame codec lives in the parsers' crate, so the fuzz
/// targets can build it without the rest of mqtrigger.
pub use mqtrigger_parse::stomp;
pub mod stomp_link;

/// One message as the engine sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The broker's handle for settling this message (AMQP delivery tag,
    /// STOMP ack id).
    pub tag: DeliveryTag,
    /// The message's record in the Lambda event, as JSON bytes.
    pub record: Vec<u8>,
    /// The message body, for the filters. The batcher lets it go once
    /// they have seen it (the record holds it too, as base64: one copy per
    /// message in a 6 MB batch, not two); [`Delivery::original_body`]
    /// gives it back either way.
    pub body: Bytes,
    /// The broker marked it redelivered.
    pub redelivered: bool,
    /// When the message expires (its TTL), if it has one.
    pub expires_at: Option<SystemTime>,
    /// Identifies the message in logs and the journal (message id or tag).
    pub message_id: Option<String>,
    /// The queue it came from, when the mapping reads several (None: its
    /// only queue).
    pub queue: Option<std::sync::Arc<str>>,
    /// The producer's trace context (`traceparent`, `X-Amzn-Trace-Id`).
    pub trace: Option<crate::trace::TraceParent>,
}

/// A message's id as the broker gave it, else a short stable id of its body
/// (the first 8 hex digits of its SHA-256), marked as such: the same body
/// always gets the same id, and two bodies differ in it. What the journal,
/// a message's history and the console call a message by.
pub fn message_label(message_id: Option<&str>, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    match message_id {
        Some(id) if !id.is_empty() => id.to_owned(),
        // The first 8 hex digits: only the first 4 bytes are encoded.
        _ => format!("sha:{}", hex::encode(&Sha256::digest(body)[..4])),
    }
}

impl Delivery {
    /// Gives a message the broker sent without an id (RabbitMQ's
    /// `message_id` is optional) the id of its body ([`message_label`]),
    /// while the body is still at hand, so everything after can name it.
    /// Says whether it gave one (the broker gave none).
    pub fn identify(&mut self) -> bool {
        if self.message_id.as_deref().is_none_or(str::is_empty) {
            self.message_id = Some(message_label(None, &self.original_body()));
            return true;
        }
        false
    }

    /// What the message is called: its id (see [`Self::identify`]).
    pub fn label(&self) -> &str {
        self.message_id.as_deref().unwrap_or_default()
    }

    /// The message body as the broker gave it: kept, or decoded from the
    /// record's `data` (for dead letters, which are rare).
    pub fn original_body(&self) -> Bytes {
        if !self.body.is_empty() || self.record.is_empty() {
            return self.body.clone();
        }
        serde_json::from_slice(&self.record)
            .map(|record| Bytes::from(crate::event::record_body(&record)))
            .unwrap_or_default()
    }
}

/// Ids of messages an earlier session of the same mapping received and did
/// not settle: when one comes again, it is a redelivery, whatever the broker
/// remembers (see `engine::unsettled`).
#[derive(Debug, Clone, Default)]
pub struct SeenBefore(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl SeenBefore {
    /// True once for an id that was under way before.
    pub fn take(&self, message_id: &str) -> bool {
        self.0.locked().remove(message_id)
    }

    pub fn remember(&self, ids: std::collections::HashSet<String>, limit: usize) {
        let mut known = self.0.locked();
        if known.len() + ids.len() > limit {
            known.clear();
        }
        known.extend(ids);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryTag {
    Amqp(u64),
    Stomp(String),
}

/// Why a message is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The function failed on every attempt.
    RetriesExhausted {
        attempts: u32,
        /// The last error, as `Type: message` (InvokeError::summary).
        last_error: Option<String>,
    },
    /// The message's expiration passed while it waited.
    Expired,
    /// The record alone is larger than a Lambda event may be.
    TooLarge { bytes: usize },
}

impl DeadLetterReason {
    /// The reason in a word, read back from its text as Display writes it
    /// (the journal keeps the text): `retries`, `expired`, `too large`.
    pub fn word_of(text: &str) -> &'static str {
        if text.starts_with("function failed ") {
            "retries"
        } else if text.starts_with("message expired") {
            "expired"
        } else if text.starts_with("record is ") {
            "too large"
        } else {
            "other"
        }
    }
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RetriesExhausted {
                attempts,
                last_error,
            } => {
                write!(
                    f,
                    "function failed {attempts} times (maximumRedeliveries reached)"
                )?;
                match last_error {
                    Some(e) => write!(f, "; last error {e}"),
                    None => Ok(()),
                }
            }
            Self::Expired => write!(f, "message expired before it could be delivered"),
            Self::TooLarge { bytes } => write!(
                f,
                "record is {bytes} bytes; a Lambda event holds at most {} bytes",
                crate::event::MAX_EVENT_BYTES
            ),
        }
    }
}

/// Errors a source reports. The engine maps them to StateTransitionReason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The broker refused the credentials: EVENT_SOURCE_AUTHN_ERROR.
    #[error("{0}")]
    Authentication(String),
    /// The user may not read the queue or use the vhost: EVENT_SOURCE_AUTHZ_ERROR.
    #[error("{0}")]
    Authorization(String),
    /// The mapping names something the broker does not have (a queue that
    /// does not exist): ESM_CONFIG_NOT_VALID.
    #[error("{0}")]
    Config(String),
    /// The broker is unreachable or the connection dropped. Retried with
    /// back-off; unsettled messages go back to the queue.
    #[error("{0}")]
    Connection(String),
}

impl SourceError {
    /// Whether trying again can help: a broker that is down or dropped the
    /// connection may come back. Every other error names something only a
    /// person can fix, and stops the mapping with [`Self::stop_code`].
    pub fn retryable(&self) -> bool {
        matches!(self, SourceError::Connection(_))
    }

    /// The stop code a mapping stops with for this error, as Lambda names
    /// it; None when the error is retried instead.
    pub fn stop_code(&self) -> Option<StateTransitionReason> {
        match self {
            SourceError::Authentication(_) => Some(StateTransitionReason::EventSourceAuthnError),
            SourceError::Authorization(_) => Some(StateTransitionReason::EventSourceAuthzError),
            SourceError::Config(_) => Some(StateTransitionReason::EsmConfigNotValid),
            SourceError::Connection(_) => None,
        }
    }

    /// Whether the broker refused the credentials, which may be a secret
    /// rotated since it was read.
    pub fn is_refused_login(&self) -> bool {
        matches!(self, SourceError::Authentication(_))
    }
}

/// A settlement the source could not confirm. The broker will redeliver the
/// message, so nothing is lost, but it may reach the function twice.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not settle {count} message(s): {reason}")]
pub struct SettleError {
    pub count: usize,
    pub reason: String,
}

/// Why messages could not be dead-lettered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeadLetterError {
    /// The connection or channel went away: the broker delivers them again.
    #[error(transparent)]
    Lost(#[from] SettleError),
    /// The dead-letter destination refused them (full, missing, no
    /// permission) while the consumer still holds them: the move can be
    /// tried again without invoking the function again.
    #[error("{0}")]
    Refused(String),
}

/// A consumer on one queue.
pub trait Source: Send {
    /// Waits for the next message. Cancel-safe: dropping the future loses no message.
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, SourceError>>;
    /// Acknowledges messages whose fate is settled.
    fn ack<'a>(&'a mut self, tags: &'a [DeliveryTag]) -> BoxFuture<'a, Result<(), SettleError>>;
    /// Moves messages to the broker's dead-letter destination, then settles them.
    /// Only returns Ok once the dead letter is durable on the broker.
    fn dead_letter<'a>(
        &'a mut self,
        deliveries: &'a [Delivery],
        reason: &'a DeadLetterReason,
    ) -> BoxFuture<'a, Result<(), DeadLetterError>>;
    /// Closes the consumer; unsettled messages return to the queue.
    fn close(&mut self) -> BoxFuture<'_, ()>;
    /// Where dead letters go, for the journal ("orders.dlq", "dead-letter exchange dlx").
    fn dead_letter_destination(&self) -> String;
    /// Where this delivery's dead letter goes (a source over several
    /// queues has one destination per queue).
    fn destination_of(&self, _delivery: &Delivery) -> String {
        self.dead_letter_destination()
    }
    /// An unsettled message's AMQP headers as the broker sent them, for the
    /// dead-letter journal (see `DeadLetter::amqp_headers`); None when the
    /// source has none (STOMP).
    fn original_headers(&self, _tag: &DeliveryTag) -> Option<Vec<u8>> {
        None
    }
}

/// Tries the endpoints in order and keeps the first that answers. Only an
/// unreachable endpoint is a reason to try the next one: a refused login or a
/// missing queue would be the same on the standby.
pub async fn first_answering<'a, T, F, Fut>(
    endpoints: &'a [String],
    mut connect: F,
) -> Result<T, SourceError>
where
    F: FnMut(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<T, SourceError>>,
{
    let mut last = None;
    for endpoint in endpoints {
        match connect(endpoint).await {
            Ok(source) => return Ok(source),
            Err(e) if e.retryable() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| SourceError::Config("the broker has no endpoints".into())))
}

#[cfg(test)]
mod tests {
    use super::DeadLetterReason;

    #[test]
    fn each_reason_reads_back_as_its_word() {
        let reasons = [
            (
                DeadLetterReason::RetriesExhausted {
                    attempts: 6,
                    last_error: Some("OrderError: bad".into()),
                },
                "retries",
            ),
            (DeadLetterReason::Expired, "expired"),
            (DeadLetterReason::TooLarge { bytes: 7_000_000 }, "too large"),
        ];
        for (reason, word) in reasons {
            assert_eq!(DeadLetterReason::word_of(&reason.to_string()), word);
        }
    }
}
