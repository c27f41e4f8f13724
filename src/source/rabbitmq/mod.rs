//! RabbitMQ over AMQP 0-9-1, with lapin.
//!
//! One consuming channel per mapping, on a connection it shares with the
//! other mappings to the same endpoint and credentials (`shared`); the consumer tag is
//! the mapping's UUID, and the prefetch covers the batches gathered ahead
//! (`engine::prefetch`), so the next ones fill while the function runs. Dead letters go to the queue's own
//! dead-letter exchange when it has one (reject without requeue), otherwise
//! they are published with publisher confirms to `<queue>.dlq` before the
//! original is acked.

mod classify;
mod connect;
mod dead_letter;

pub use classify::classify;
use classify::is_frame_error;
pub use connect::{AmqpTarget, FRAME_MAX, amqp_uri, lease};
use dead_letter::probe_dead_letter_route;

use super::shared::{AmqpConnections, Lease};
use super::{
    DeadLetterError, DeadLetterReason, Delivery, DeliveryTag, SettleError, Source, SourceError,
};
use crate::config::Secret;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Acker, BasicProperties, Channel, Connection};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// What one mapping needs to consume a RabbitMQ queue.
#[derive(Debug, Clone)]
pub struct RabbitConfig {
    pub endpoints: Vec<String>,
    pub secret: Secret,
    pub vhost: String,
    pub queue: String,
    pub consumer_tag: String,
    pub prefetch: u16,
    /// PEM CA certificates to trust for amqps://, besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Whether this mapping needs the broker's frame size (see [`LargeFrames`]).
    pub large_frames: LargeFrames,
    /// The connections this mapping may share with others (`shared`).
    pub connections: AmqpConnections,
}

/// A mapping starts with small AMQP frames (lapin buffers 32 frames each way
/// per connection: 8 MB at RabbitMQ's 128 KB, 0.5 MB at 8 KB, which keeps
/// idle mappings cheap). A message whose content header does not fit one
/// small frame (big or many headers) cannot be split across frames, so the
/// first such message switches this mapping, for as long as mqtrigger runs,
/// to the largest frames the broker allows: every message the broker took
/// can then be delivered.
#[derive(Debug, Clone, Default)]
pub struct LargeFrames(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl LargeFrames {
    pub fn needed(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn need(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How dead letters leave the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DeadLetterRoute {
    /// The queue has `x-dead-letter-exchange`: the broker moves rejected messages.
    Exchange(String),
    /// Publish to this queue with confirms, then ack.
    Queue(String),
}

pub struct RabbitSource {
    /// The connection, shared with other mappings (`shared`).
    lease: Lease<Connection>,
    /// The consumer's channel: this mapping's own.
    channel: Channel,
    consumer: lapin::Consumer,
    publisher: Option<Channel>,
    ackers: HashMap<u64, Acker>,
    properties: HashMap<u64, BasicProperties>,
    route: DeadLetterRoute,
    config: RabbitConfig,
    endpoint: String,
}

impl RabbitSource {
    /// Connects to the first endpoint that answers and starts consuming.
    pub async fn connect(config: RabbitConfig) -> Result<RabbitSource, SourceError> {
        super::first_answering(&config.endpoints, |e| Self::connect_one(e, &config)).await
    }

    async fn connect_one(
        endpoint: &str,
        config: &RabbitConfig,
    ) -> Result<RabbitSource, SourceError> {
        let what = format!(
            "for user '{}' at {} (vhost '{}', queue '{}')",
            config.secret.username,
            display_endpoint(endpoint),
            config.vhost,
            config.queue
        );
        let lease = lease(
            &config.connections,
            AmqpTarget {
                endpoint,
                secret: &config.secret,
                vhost: &config.vhost,
                ca_file: config.ca_file.as_deref(),
                large_frames: config.large_frames.needed(),
            },
            &what,
        )
        .await?;
        let connection = lease.connection();
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| classify(&e, &what))?;
        channel
            .queue_declare(
                config.queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| classify(&e, &what))?;
        let route = probe_dead_letter_route(connection, &config.queue).await;
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| classify(&e, &what))?;
        let consumer = channel
            .basic_consume(
                config.queue.as_str().into(),
                config.consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| classify(&e, &what))?;
        tracing::info!(queue = %config.queue, endpoint = %display_endpoint(endpoint), dead_letters = ?route, "consuming");
        Ok(RabbitSource {
            lease,
            channel,
            consumer,
            publisher: None,
            ackers: HashMap::new(),
            properties: HashMap::new(),
            route,
            config: config.clone(),
            endpoint: endpoint.to_owned(),
        })
    }

    async fn next_delivery(&mut self) -> Result<Delivery, SourceError> {
        let delivery = match self.consumer.next().await {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                let what = format!("while consuming '{}'", self.config.queue);
                if is_frame_error(&e) && !self.config.large_frames.needed() {
                    self.config.large_frames.need();
                    return Err(SourceError::Connection(format!(
                        "a message's headers need AMQP frames larger than {FRAME_MAX} bytes {what}; reconnecting with the broker's frame size"
                    )));
                }
                return Err(classify(&e, &what));
            }
            None => {
                return Err(SourceError::Connection(format!(
                    "RabbitMQ cancelled the consumer on '{}' (queue deleted?)",
                    self.config.queue
                )));
            }
        };
        let received = SystemTime::now();
        let properties = &delivery.properties;
        let record = crate::event::rmq::record(properties, &delivery.data, delivery.redelivered);
        let expires_at = properties
            .expiration()
            .as_ref()
            .and_then(|e| e.as_str().parse::<u64>().ok())
            .map(|ms| received + Duration::from_millis(ms));
        let message_id = properties.message_id().as_ref().map(|m| m.to_string());
        let trace = trace_of(properties);
        let tag = delivery.delivery_tag;
        let redelivered = delivery.redelivered;
        // Moved, not cloned: this runs once per message.
        self.ackers.insert(tag, delivery.acker);
        self.properties.insert(tag, delivery.properties);
        Ok(Delivery {
            tag: DeliveryTag::Amqp(tag),
            record,
            body: Bytes::from(delivery.data),
            redelivered,
            expires_at,
            message_id,
            queue: None,
            trace,
        })
    }

    async fn ack_all(&mut self, tags: &[DeliveryTag]) -> Result<(), SettleError> {
        if let Some(result) = self.ack_multiple(tags).await {
            return result;
        }
        let mut lost = 0;
        let mut reason = String::new();
        for tag in tags {
            let DeliveryTag::Amqp(tag) = tag else {
                continue;
            };
            self.properties.remove(tag);
            let acker = self.ackers.remove(tag);
            let Some(acker) = acker else {
                lost += 1;
                continue;
            };
            // `false` means the channel that delivered it is gone: the broker
            // will deliver the message again.
            match acker.ack(Default::default()).await {
                Ok(true) => {}
                Ok(false) => {
                    lost += 1;
                    reason = "the channel closed before the ack".into();
                }
                Err(e) => {
                    lost += 1;
                    reason = e.to_string();
                }
            }
        }
        if lost > 0 {
            return Err(SettleError {
                count: lost,
                reason,
            });
        }
        Ok(())
    }

    /// Acks a whole batch with one `basic.ack(multiple)` when the batch holds
    /// every unsettled delivery up to its highest tag, as it does when
    /// batches are settled in order. None when that does not hold.
    async fn ack_multiple(&mut self, tags: &[DeliveryTag]) -> Option<Result<(), SettleError>> {
        let mut highest = 0;
        for tag in tags {
            match tag {
                DeliveryTag::Amqp(t) if self.ackers.contains_key(t) => highest = highest.max(*t),
                _ => return None,
            }
        }
        let covered = self.ackers.keys().filter(|t| **t <= highest).count();
        if tags.len() < 2 || covered != tags.len() {
            return None;
        }
        let acker = self.ackers.get(&highest)?.clone();
        let result = acker
            .ack(lapin::options::BasicAckOptions { multiple: true })
            .await;
        self.ackers.retain(|t, _| *t > highest);
        self.properties.retain(|t, _| *t > highest);
        Some(match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(SettleError {
                count: tags.len(),
                reason: "the channel closed before the ack".into(),
            }),
            Err(e) => Err(SettleError {
                count: tags.len(),
                reason: e.to_string(),
            }),
        })
    }
}

fn display_endpoint(endpoint: &str) -> String {
    endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(endpoint)
        .trim_end_matches('/')
        .to_owned()
}

impl Source for RabbitSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, SourceError>> {
        Box::pin(self.next_delivery())
    }

    fn ack<'a>(&'a mut self, tags: &'a [DeliveryTag]) -> BoxFuture<'a, Result<(), SettleError>> {
        Box::pin(self.ack_all(tags))
    }

    fn dead_letter<'a>(
        &'a mut self,
        deliveries: &'a [Delivery],
        reason: &'a DeadLetterReason,
    ) -> BoxFuture<'a, Result<(), DeadLetterError>> {
        Box::pin(self.dead_letter_all(deliveries, reason))
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Closing the channel returns its unsettled messages to the
            // queue; the connection stays for the other mappings on it, and
            // closes with the last.
            let _ = self
                .channel
                .close(200, "mqtrigger mapping stopped".into())
                .await;
            if let Some(publisher) = self.publisher.take() {
                let _ = publisher
                    .close(200, "mqtrigger mapping stopped".into())
                    .await;
            }
            tracing::debug!(endpoint = %display_endpoint(&self.endpoint), "disconnected");
        })
    }

    fn original_headers(&self, tag: &DeliveryTag) -> Option<Vec<u8>> {
        let DeliveryTag::Amqp(tag) = tag else {
            return None;
        };
        let headers = self.properties.get(tag)?.headers().as_ref()?;
        crate::source::original::keep_headers(headers)
    }

    fn dead_letter_destination(&self) -> String {
        match &self.route {
            DeadLetterRoute::Exchange(x) => format!("dead-letter exchange '{x}'"),
            DeadLetterRoute::Queue(q) => q.clone(),
        }
    }
}

/// The producer's trace context in the message's headers (string or
/// byte-array values), if it sent one.
fn trace_of(properties: &lapin::BasicProperties) -> Option<crate::trace::TraceParent> {
    use lapin::types::AMQPValue;
    let headers = properties.headers().as_ref()?;
    let text = |v: &AMQPValue| match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::ByteArray(b) => Some(String::from_utf8_lossy(b.as_slice()).into_owned()),
        _ => None,
    };
    let pairs: Vec<(String, String)> = headers
        .inner()
        .iter()
        .filter(|(k, _)| crate::trace::TraceParent::is_trace_header(k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), text(v)?)))
        .collect();
    crate::trace::TraceParent::from_headers(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}
