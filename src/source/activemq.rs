//! ActiveMQ over STOMP 1.2: one mapping's subscription.
//!
//! Mappings to one broker with the same credentials share a connection
//! (`stomp_link`, pooled by `shared`); each has its own subscription,
//! with `ack:client-individual` (or `ack:client` with cumulative ACKs when
//! batches settle in order, see `ack_order`) and the engine's prefetch. The
//! subscription id is the mapping's UUID and a number. ACKs are not waited
//! for (a refused ACK ends the connection, and the broker redelivers);
//! NACKs, SUBSCRIBE and UNSUBSCRIBE are. Dead letters are NACKed: ActiveMQ
//! moves a NACKed message to `ActiveMQ.DLQ` at once, so the engine's retries
//! happen before that.

use super::ack_order::InOrderAcks;
use super::shared::Lease;
use super::stomp::Frame;
use super::stomp_link::{Messages, Outgoing, StompConnections, StompLink};
use super::stomp_link::{classify_error, parse_endpoint};
use super::{
    DeadLetterReason, Delivery, DeliveryTag, SeenBefore, SettleError, Source, SourceError,
};
use crate::config::Secret;
use futures::future::BoxFuture;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one mapping needs to consume an ActiveMQ queue.
#[derive(Debug, Clone)]
pub struct StompConfig {
    pub endpoints: Vec<String>,
    /// Extra CA certificates (PEM) for `stomp+ssl://` endpoints.
    pub ca_file: Option<std::path::PathBuf>,
    pub secret: Secret,
    pub queue: String,
    pub subscription: String,
    pub prefetch: u32,
    /// Messages to mark redelivered: ActiveMQ forgets them across its restart.
    pub seen_before: SeenBefore,
    /// The engine settles batches in the order they came (MaximumConcurrency
    /// 1): subscribe with `ack:client` and ACK cumulatively (`ack_order`).
    pub in_order: bool,
    /// The engine's STOMP connections, shared with its other mappings.
    pub connections: StompConnections,
}

const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Cumulative ACKs (`ack:client`) only up to this prefetch: with more
/// unacked messages than that, ActiveMQ 5.17 stops dispatching to a
/// `client` subscription until an ACK comes (measured, with stomp.py as
/// well as with mqtrigger: batches of 500 drained at 560 msg/s in `client`
/// mode, 4,800 in `client-individual`; 100 and 200 were as fast either
/// way). 600 is BatchSize 150 at MaximumConcurrency 1 (`engine::prefetch`).
const MAX_CUMULATIVE_PREFETCH: u32 = 600;

/// One mapping's subscription on a (shared) STOMP connection.
pub struct ActiveMqSource {
    link: Lease<StompLink>,
    /// Unique on the link: the mapping's UUID and a number, so a mapping
    /// that subscribes again never meets its old subscription.
    subscription: String,
    messages: Messages,
    queue: String,
    seen_before: SeenBefore,
    /// With `ack:client`: the delivery order, for cumulative ACKs.
    in_order: Option<InOrderAcks>,
    unsubscribed: bool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl ActiveMqSource {
    /// Connects to the first endpoint that answers and subscribes.
    pub async fn connect(config: StompConfig) -> Result<ActiveMqSource, SourceError> {
        super::first_answering(&config.endpoints, |e| Self::connect_one(e, &config)).await
    }

    async fn connect_one(
        endpoint: &str,
        config: &StompConfig,
    ) -> Result<ActiveMqSource, SourceError> {
        let (host, port, _) = parse_endpoint(endpoint).map_err(SourceError::Config)?;
        let user = format!("for user '{}' at {host}:{port}", config.secret.username);
        let what = format!("{user} (queue '{}')", config.queue);
        let link = super::stomp_link::lease(
            &config.connections,
            endpoint,
            &config.secret,
            config.ca_file.as_deref(),
            (&user, &what),
        )
        .await?;
        let cumulative = config.in_order && config.prefetch <= MAX_CUMULATIVE_PREFETCH;
        let subscription = format!("{}-{}", config.subscription, link.connection().next_id());
        let messages = link.connection().route(&subscription, &config.queue);
        let subscribe = Frame::new("SUBSCRIBE")
            .header("id", &subscription)
            .header("destination", &format!("/queue/{}", config.queue))
            .header(
                "ack",
                if cumulative {
                    "client"
                } else {
                    "client-individual"
                },
            )
            .header("activemq.prefetchSize", &config.prefetch.max(1).to_string());
        if let Err(text) = link.connection().request(subscribe, RECEIPT_TIMEOUT).await {
            link.connection().unroute(&subscription);
            return Err(classify_error(&text, &what));
        }
        tracing::info!(queue = %config.queue, endpoint = %link.connection().endpoint, "consuming");
        Ok(ActiveMqSource {
            link,
            subscription,
            messages,
            queue: config.queue.clone(),
            seen_before: config.seen_before.clone(),
            in_order: cumulative.then(InOrderAcks::default),
            unsubscribed: false,
        })
    }

    fn delivery(&mut self, frame: Frame) -> Delivery {
        let message_id = frame.get("message-id");
        let ack = frame
            .get("ack")
            .or(message_id)
            .unwrap_or_default()
            .to_owned();
        if let Some(order) = &mut self.in_order {
            order.delivered(&ack);
        }
        let received = now_ms();
        let mut redelivered = frame.get("redelivered") == Some("true");
        // A message this process saw before a reconnect is marked as
        // redelivered, ahead of the frame's own header, since the first
        // `redelivered` header counts (STOMP 1.2).
        let marked = !redelivered && message_id.is_some_and(|id| self.seen_before.take(id));
        redelivered |= marked;
        let headers = marked
            .then_some(("redelivered", "true"))
            .into_iter()
            .chain(frame.headers());
        let record = crate::event::mq::record(headers, &frame.body, received);
        let expires_at = frame
            .get("expires")
            .and_then(|e| e.parse::<u64>().ok())
            .filter(|e| *e > 0)
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        Delivery {
            tag: DeliveryTag::Stomp(ack),
            record,
            redelivered,
            expires_at,
            message_id: message_id.map(str::to_owned),
            queue: None,
            trace: crate::trace::TraceParent::from_headers(frame.headers()),
            body: frame.body,
        }
    }

    /// Sends ACK or NACK frames. With `confirm`, the last one asks for a
    /// RECEIPT, which ActiveMQ sends after it has handled all of them.
    async fn settle(
        &mut self,
        command: &str,
        tags: Vec<String>,
        confirm: bool,
    ) -> Result<(), SettleError> {
        let count = tags.len();
        let fail = |reason: String| SettleError { count, reason };
        let closed = || fail("the connection to ActiveMQ is closed".into());
        let link = self.link.connection();
        let mut tags = tags.into_iter().peekable();
        while let Some(id) = tags.next() {
            let frame = Frame::new(command).header("id", &id);
            if confirm && tags.peek().is_none() {
                return link.request(frame, RECEIPT_TIMEOUT).await.map_err(fail);
            }
            let sent = link
                .send(Outgoing {
                    frame,
                    receipt: None,
                })
                .await;
            if !sent {
                return Err(closed());
            }
        }
        Ok(())
    }
}

impl Source for ActiveMqSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, SourceError>> {
        Box::pin(async move {
            match self.messages.recv().await {
                Some(Ok(frame)) => Ok(self.delivery(frame)),
                Some(Err(e)) => Err(e),
                None => Err(SourceError::Connection(format!(
                    "the connection to ActiveMQ at {} closed (queue '{}')",
                    self.link.connection().endpoint,
                    self.queue
                ))),
            }
        })
    }

    fn ack<'a>(&'a mut self, tags: &'a [DeliveryTag]) -> BoxFuture<'a, Result<(), SettleError>> {
        let mut ids = stomp_ids(tags.iter());
        if let Some(order) = &mut self.in_order {
            // One cumulative ACK, once everything before is settled.
            ids = order.settle(&ids, false).into_iter().collect();
        }
        // Not waited for: an ACK the broker refuses ends the connection
        // with an ERROR, and it delivers those messages again.
        Box::pin(self.settle("ACK", ids, false))
    }

    fn dead_letter<'a>(
        &'a mut self,
        deliveries: &'a [Delivery],
        _reason: &'a DeadLetterReason,
    ) -> BoxFuture<'a, Result<(), super::DeadLetterError>> {
        let ids = stomp_ids(deliveries.iter().map(|d| &d.tag));
        // ActiveMQ moves a NACKed message itself: only a lost connection
        // fails it. A NACK names one message, in either ack mode.
        Box::pin(async move {
            self.settle("NACK", ids.clone(), true).await?;
            let cumulative = self.in_order.as_mut().and_then(|o| o.settle(&ids, true));
            if let Some(id) = cumulative {
                self.settle("ACK", vec![id], false).await?;
            }
            Ok(())
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // The connection may be other mappings' too: end only our
            // subscription. Once ActiveMQ answers, our unacked messages are
            // back in the queue for the next consumer.
            self.unsubscribed = true;
            let link = self.link.connection();
            let frame = Frame::new("UNSUBSCRIBE").header("id", &self.subscription);
            if let Err(e) = link.request(frame, Duration::from_secs(5)).await {
                tracing::debug!(queue = %self.queue, "UNSUBSCRIBE: {e}");
            }
            link.unroute(&self.subscription);
        })
    }

    fn dead_letter_destination(&self) -> String {
        "ActiveMQ.DLQ".into()
    }
}

impl Drop for ActiveMqSource {
    /// A source dropped without `close` (its task aborted) still ends its
    /// subscription, or its prefetched messages would wait on a connection
    /// that other mappings keep open.
    fn drop(&mut self) {
        if !self.unsubscribed {
            let link = self.link.connection();
            link.unroute(&self.subscription);
            link.try_send(Frame::new("UNSUBSCRIBE").header("id", &self.subscription));
        }
    }
}

fn stomp_ids<'a>(tags: impl Iterator<Item = &'a DeliveryTag>) -> Vec<String> {
    tags.filter_map(|t| match t {
        DeliveryTag::Stomp(id) => Some(id.clone()),
        DeliveryTag::Amqp(_) => None,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activemq_errors_map_to_stop_codes() {
        let authn = classify_error("User name [app] or password is invalid.", "");
        assert!(matches!(authn, SourceError::Authentication(_)));
        let authz = classify_error("User noread is not authorized to read from: queue://q", "");
        assert!(matches!(authz, SourceError::Authorization(_)));
    }
}
