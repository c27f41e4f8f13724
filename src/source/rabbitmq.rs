//! RabbitMQ over AMQP 0-9-1, with lapin.
//!
//! One consuming channel per mapping, on a connection it shares with the
//! other mappings to the same endpoint and credentials (`shared`); the consumer tag is
//! the mapping's UUID, and the prefetch covers two batches so the next batch
//! fills while the function runs. Dead letters go to the queue's own
//! dead-letter exchange when it has one (reject without requeue), otherwise
//! they are published with publisher confirms to `<queue>.dlq` before the
//! original is acked.

use super::shared::{AmqpConnections, ConnectionKey, Lease};
use super::{
    DeadLetterError, DeadLetterReason, Delivery, DeliveryTag, SettleError, Source, SourceError,
};
use crate::config::Secret;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::uri::AMQPUri;
use lapin::{Acker, BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
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

/// The AMQP frame size a mapping starts with (an endpoint's `?frame_max=`
/// wins; see [`LargeFrames`]).
pub const FRAME_MAX: u32 = 8192;

/// The URI for one endpoint with the secret's credentials and the vhost;
/// small frames unless `large_frames`, then the broker's.
pub fn amqp_uri(
    endpoint: &str,
    secret: &Secret,
    vhost: &str,
    large_frames: bool,
) -> Result<AMQPUri, String> {
    let mut uri: AMQPUri = endpoint
        .parse()
        .map_err(|e| format!("endpoint `{endpoint}` is not a valid AMQP URL: {e}"))?;
    uri.authority.userinfo.username = secret.username.clone();
    uri.authority.userinfo.password = secret.password.clone();
    uri.vhost = vhost.to_owned();
    if uri.query.heartbeat.is_none() {
        // Notice a dead broker within a minute instead of the TCP timeout.
        uri.query.heartbeat = Some(20);
    }
    if uri.query.frame_max.is_none() && !large_frames {
        // Bigger bodies just take more frames; see LargeFrames for headers.
        uri.query.frame_max = Some(FRAME_MAX);
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout = Some(10_000);
    }
    Ok(uri)
}

/// A frame larger than the frame size we asked for.
fn is_frame_error(err: &lapin::Error) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Hard(AMQPHardError::FRAMEERROR)))
}

/// Turns lapin's errors into what a user has to do about them.
pub fn classify(err: &lapin::Error, what: &str) -> SourceError {
    if let lapin::ErrorKind::ProtocolError(amqp) = err.kind() {
        let text = amqp.get_message().as_str();
        if let Some(quota) = quota_reached(text) {
            // A quota frees up when other clients let go: retried with
            // back-off, and named so the operator can raise it.
            return SourceError::Connection(format!(
                "RabbitMQ refused {what}: {quota} is reached ({text}); raise it (rabbitmqctl set_vhost_limits or set_user_limits) or stop other clients — mqtrigger shares one connection among up to {} mappings",
                super::shared::MAPPINGS_PER_CONNECTION
            ));
        }
        return match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
                if text.contains("Login was refused") =>
            {
                SourceError::Authentication(format!("RabbitMQ refused the login {what}: {text}"))
            }
            // RabbitMQ answers a vhost that does not exist with NOT_ALLOWED
            // ("vhost x not found"): a missing resource is the mapping's
            // configuration to fix, as Lambda has it, not a permission.
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) if text.contains("not found") => {
                SourceError::Config(format!(
                    "RabbitMQ has no such virtual host {what}: {text}; create it or fix the mapping's VIRTUAL_HOST"
                ))
            }
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)
            | AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => {
                SourceError::Authorization(format!("RabbitMQ denied access {what}: {text}"))
            }
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => {
                SourceError::Config(format!("RabbitMQ has no such queue {what}: {text}"))
            }
            AMQPErrorKind::Hard(AMQPHardError::INVALIDPATH) => {
                SourceError::Config(format!("RabbitMQ has no such virtual host {what}: {text}"))
            }
            _ => SourceError::Connection(format!("RabbitMQ closed the connection {what}: {text}")),
        };
    }
    let text = err.to_string();
    // A certificate problem is the user's to fix, never a reason to retry
    // (and never a reason to fall back to plain text).
    if let Some(problem) = tls_problem(&text) {
        return SourceError::Config(format!("TLS {what}: {problem} ({text})"));
    }
    // RabbitMQ answers a bad password by closing the socket during the
    // handshake; lapin reports that as an I/O error with this wording.
    if text.contains("ACCESS_REFUSED") || text.contains("authentication failure") {
        return SourceError::Authentication(format!("RabbitMQ refused the login {what}: {text}"));
    }
    SourceError::Connection(format!("cannot reach RabbitMQ {what}: {text}"))
}

/// RabbitMQ's words for a limit it enforces ("connection limit (0) is
/// reached", "queue limit in vhost 'v' (1) is reached", "channel limit"),
/// as the quota to name.
fn quota_reached(text: &str) -> Option<&'static str> {
    if !text.contains("is reached") {
        return None;
    }
    [
        ("connection limit", "the connection limit"),
        ("channel limit", "the channel limit"),
        ("queue limit", "the queue limit"),
    ]
    .into_iter()
    .find_map(|(said, quota)| text.contains(said).then_some(quota))
}

/// What to fix when the TLS handshake failed on the broker's certificate.
fn tls_problem(text: &str) -> Option<&'static str> {
    if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        Some(
            "the broker's certificate is not signed by a trusted CA; give its CA in the broker's `ca_file`",
        )
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        Some(
            "the broker's certificate is not for this host name; connect with a name the certificate lists",
        )
    } else if text.contains("invalid peer certificate")
        || text.contains("certificate") && text.contains("expired")
    {
        Some("the broker's certificate was refused")
    } else {
        None
    }
}

/// The TLS settings for amqps://: the system's roots plus `ca_file`.
fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<lapin::tcp::OwnedTLSConfig, SourceError> {
    let cert_chain = match ca_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            SourceError::Config(format!(
                "cannot read the broker's ca_file {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    Ok(lapin::tcp::OwnedTLSConfig {
        identity: None,
        cert_chain,
    })
}

/// Where an AMQP connection goes, and as whom.
#[derive(Clone, Copy)]
pub struct AmqpTarget<'a> {
    pub endpoint: &'a str,
    pub secret: &'a Secret,
    pub vhost: &'a str,
    pub ca_file: Option<&'a std::path::Path>,
    /// The broker's frame size rather than [`FRAME_MAX`].
    pub large_frames: bool,
}

/// A connection to `target` from the pool the mappings share, opened if
/// there is none: the one way mqtrigger connects to RabbitMQ. `what`
/// names the user and broker in its errors.
pub async fn lease(
    connections: &AmqpConnections,
    target: AmqpTarget<'_>,
    what: &str,
) -> Result<Lease<Connection>, SourceError> {
    let uri = amqp_uri(
        target.endpoint,
        target.secret,
        target.vhost,
        target.large_frames,
    )
    .map_err(SourceError::Config)?;
    let key = ConnectionKey {
        endpoint: target.endpoint.to_owned(),
        username: target.secret.username.clone(),
        password: target.secret.password.clone(),
        vhost: target.vhost.to_owned(),
        large_frames: target.large_frames,
        ca_file: target.ca_file.map(ToOwned::to_owned),
    };
    connections
        .lease(&key, || async {
            let properties = ConnectionProperties::default()
                // No `enable_auto_recover`: with it, lapin 4.12 waits
                // silently and forever when a broker is stopped (seen
                // with `rabbitmqctl stop_app`). The engine reconnects
                // itself, with back-off, and shows the outage in
                // LastProcessingResult.
                .with_connection_name("mqtrigger".into());
            let tls = tls_config(target.ca_file)?;
            let runtime = lapin::runtime::default_runtime()
                .map_err(|e| SourceError::Connection(format!("no runtime for lapin: {e}")))?;
            Connection::connect_uri_with_config(uri, properties, tls, runtime)
                .await
                .map_err(|e| classify(&e, what))
        })
        .await
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

    /// A confirming channel to publish dead letters on, with the dead-letter
    /// queue declared (a publish to a queue that does not exist would be
    /// confirmed and silently dropped).
    async fn publisher(&mut self, dlq: &str) -> Result<Channel, String> {
        if let Some(c) = self.publisher.as_ref().filter(|c| c.status().connected()) {
            return Ok(c.clone());
        }
        let declare =
            |e: lapin::Error| format!("cannot declare the dead-letter queue '{dlq}': {e}");
        let connection = self.lease.connection();
        let channel = connection.create_channel().await.map_err(declare)?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        if let Err(e) = channel
            .queue_declare(dlq.into(), durable, FieldTable::default())
            .await
        {
            // Without configure permission the queue must already exist.
            let channel = connection.create_channel().await.map_err(declare)?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            channel
                .queue_declare(dlq.into(), passive, FieldTable::default())
                .await
                .map_err(|_| declare(e))?;
            return self.confirming(channel).await;
        }
        self.confirming(channel).await
    }

    async fn confirming(&mut self, channel: Channel) -> Result<Channel, String> {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("cannot enable publisher confirms: {e}"))?;
        self.publisher = Some(channel.clone());
        Ok(channel)
    }

    async fn dead_letter_all(
        &mut self,
        deliveries: &[Delivery],
        reason: &DeadLetterReason,
    ) -> Result<(), DeadLetterError> {
        let fail = |count, reason: String| DeadLetterError::Lost(SettleError { count, reason });
        // The consumer still holds the messages: the move can be tried again.
        let refused = |_count: usize, reason: String| DeadLetterError::Refused(reason);
        if let DeadLetterRoute::Exchange(_) = self.route {
            let mut lost = 0;
            for d in deliveries {
                let DeliveryTag::Amqp(tag) = d.tag else {
                    continue;
                };
                self.properties.remove(&tag);
                let acker = self.ackers.remove(&tag);
                let rejected = match acker {
                    Some(a) => a.reject(BasicRejectOptions { requeue: false }).await,
                    None => Ok(false),
                };
                if !matches!(rejected, Ok(true)) {
                    lost += 1;
                }
            }
            return if lost > 0 {
                Err(fail(lost, "the channel closed before the reject".into()))
            } else {
                Ok(())
            };
        }
        let DeadLetterRoute::Queue(dlq) = self.route.clone() else {
            unreachable!()
        };
        // A message whose channel is gone will be redelivered; copying it to
        // the dead-letter queue now would leave a second copy there.
        if deliveries
            .iter()
            .any(|d| !matches!(d.tag, DeliveryTag::Amqp(t) if self.ackers.contains_key(&t)))
        {
            return Err(fail(
                deliveries.len(),
                "the channel closed; the broker redelivers these".into(),
            ));
        }
        let queue = self.config.queue.clone();
        let publisher = self
            .publisher(&dlq)
            .await
            .map_err(|e| refused(deliveries.len(), e))?;
        let mut confirms = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let DeliveryTag::Amqp(tag) = d.tag else {
                continue;
            };
            let props = self.properties.get(&tag).cloned().unwrap_or_default();
            let props = with_death_headers(props, &queue, reason);
            let confirm = publisher
                .basic_publish(
                    "".into(),
                    dlq.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &d.original_body(),
                    props,
                )
                .await
                .map_err(|e| {
                    refused(deliveries.len(), format!("cannot publish to '{dlq}': {e}"))
                })?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            match confirm.await {
                Ok(Confirmation::Ack(None)) => {}
                Ok(Confirmation::Nack(_)) => {
                    return Err(refused(
                        deliveries.len(),
                        format!(
                            "RabbitMQ refused the dead letters in '{dlq}' (a full queue with x-overflow=reject-publish, or a policy)"
                        ),
                    ));
                }
                Ok(Confirmation::Ack(Some(_))) => {
                    return Err(refused(
                        deliveries.len(),
                        format!(
                            "RabbitMQ could not route the dead letters to '{dlq}' (does the queue exist?)"
                        ),
                    ));
                }
                Ok(other) => {
                    return Err(refused(
                        deliveries.len(),
                        format!("RabbitMQ did not confirm the dead letters in '{dlq}': {other:?}"),
                    ));
                }
                Err(e) => {
                    return Err(refused(
                        deliveries.len(),
                        format!("dead letters to '{dlq}' not confirmed: {e}"),
                    ));
                }
            }
        }
        let tags: Vec<DeliveryTag> = deliveries.iter().map(|d| d.tag.clone()).collect();
        Ok(self.ack_all(&tags).await?)
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

/// Records on the dead letter where it came from and why, like RabbitMQ's own
/// `x-death`, so a person looking at `<queue>.dlq` can tell.
fn with_death_headers(
    props: BasicProperties,
    queue: &str,
    reason: &DeadLetterReason,
) -> BasicProperties {
    let mut headers = props.headers().clone().unwrap_or_default();
    headers.insert(
        "x-mqtrigger-queue".into(),
        AMQPValue::LongString(LongString::from(queue)),
    );
    headers.insert(
        "x-mqtrigger-reason".into(),
        AMQPValue::LongString(LongString::from(reason.to_string())),
    );
    if let DeadLetterReason::RetriesExhausted { attempts, .. } = reason {
        headers.insert(
            "x-mqtrigger-attempts".into(),
            AMQPValue::LongLongInt(i64::from(*attempts)),
        );
    }
    // The dead letter must outlive a broker restart even if the original was
    // transient, and must not expire in the dead-letter queue: every property
    // is copied but delivery mode and expiration.
    let mut copy = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(2);
    macro_rules! keep {
        ($($get:ident => $set:ident),*) => {
            $(if let Some(v) = props.$get() { copy = copy.$set(v.clone()); })*
        };
    }
    keep!(content_type => with_content_type, content_encoding => with_content_encoding,
        priority => with_priority, correlation_id => with_correlation_id, reply_to => with_reply_to,
        message_id => with_message_id, timestamp => with_timestamp, kind => with_type,
        user_id => with_user_id, app_id => with_app_id, cluster_id => with_cluster_id);
    copy
}

/// Finds out whether the queue has a dead-letter exchange.
///
/// AMQP 0-9-1 cannot read a queue's arguments, but RabbitMQ checks a
/// redeclaration against them and names the first argument that differs. A
/// declaration with no `x-dead-letter-exchange` therefore fails naming that
/// argument when the queue has one. Each other difference it names (durable,
/// the queue type, a length limit) is copied into the next try. A user
/// without configure permission cannot probe; then dead letters are published
/// to `<queue>.dlq`.
async fn probe_dead_letter_route(connection: &Connection, queue: &str) -> DeadLetterRoute {
    let fallback = DeadLetterRoute::Queue(format!("{queue}.dlq"));
    let mut durable = true;
    let mut args = FieldTable::default();
    for _ in 0..8 {
        let Ok(channel) = connection.create_channel().await else {
            return fallback;
        };
        let result = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable,
                    ..Default::default()
                },
                args.clone(),
            )
            .await;
        let _ = channel.close(200, "probe done".into()).await;
        let err = match result {
            Ok(_) => return fallback,
            Err(e) => e,
        };
        let lapin::ErrorKind::ProtocolError(amqp) = err.kind() else {
            return fallback;
        };
        let text = amqp.get_message().as_str();
        let Some(arg) = between(text, "inequivalent arg '", "'") else {
            return fallback;
        };
        match arg {
            "x-dead-letter-exchange" => {
                let exchange = between(text, "current is the value '", "'").unwrap_or_default();
                return DeadLetterRoute::Exchange(exchange.to_owned());
            }
            "durable" => durable = !durable,
            other => match current_value(text) {
                Some(value) => {
                    args.insert(other.into(), value);
                }
                None => return fallback,
            },
        }
    }
    fallback
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// Reads "current is the value 'V' of type 'T'" out of RabbitMQ's message.
fn current_value(text: &str) -> Option<AMQPValue> {
    let value = between(text, "current is the value '", "'")?;
    let kind = between(text, "' of type '", "'")?;
    Some(match kind {
        "longstr" => AMQPValue::LongString(value.into()),
        "signedint" | "long" | "short" | "byte" => AMQPValue::LongLongInt(value.parse().ok()?),
        "bool" => AMQPValue::Boolean(value == "true"),
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rabbitmq_precondition_messages_are_read() {
        let text = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received none but current is the value 'quorum' of type 'longstr'";
        assert_eq!(
            between(text, "inequivalent arg '", "'"),
            Some("x-queue-type")
        );
        assert_eq!(
            current_value(text),
            Some(AMQPValue::LongString("quorum".into()))
        );
        let text = "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received none but current is the value '10' of type 'signedint'";
        assert_eq!(current_value(text), Some(AMQPValue::LongLongInt(10)));
    }

    #[test]
    fn a_broker_quota_is_named() {
        let text = "NOT_ALLOWED - access to vhost 'v' refused for user 'guest': connection limit (0) is reached";
        assert_eq!(quota_reached(text), Some("the connection limit"));
        assert_eq!(quota_reached("NOT_ALLOWED - vhost v not found"), None);
    }

    #[test]
    fn credentials_and_vhost_go_into_the_uri() {
        let secret = Secret {
            username: "app".into(),
            password: "p@ss/word".into(),
        };
        let uri = amqp_uri("amqp://127.0.0.1:5672", &secret, "/", false).unwrap();
        assert_eq!(uri.authority.userinfo.username, "app");
        assert_eq!(uri.authority.userinfo.password, "p@ss/word");
        assert_eq!(uri.vhost, "/");
        assert_eq!(uri.authority.port, 5672);
    }
}
