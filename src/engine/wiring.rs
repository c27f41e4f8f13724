//! Where a mapping's messages come from and where they go.
//!
//! The engine asks its [`Wiring`] for a connected [`Source`] and for the
//! mapping's [`Invoker`]. [`Configured`] gives the brokers and functions of
//! the config file; the engine's unit tests give an in-memory broker and
//! functions written in Rust (`crate::source::memory`), so batching,
//! retries and settling are tested without any broker running.

use crate::config::{BrokerEngine, Config};
use crate::invoke::{self, InvokeError, Invoker};
use crate::mapping::{Destination, Mapping, SourceAccessType};
use crate::secrets::{SecretError, Secrets};
use crate::source::activemq::{ActiveMqSource, StompConfig};
use crate::source::backlog::Backlog;
use crate::source::message::Message;
use crate::source::rabbitmq::{AmqpTarget, LargeFrames, RabbitConfig, RabbitSource};
use crate::source::{SeenBefore, Source, SourceError};
use crate::source::{original, outbound};
use crate::store::DeadLetter;
use futures::future::BoxFuture;
use std::sync::Arc;

/// What a consumer is opened with.
pub struct Consumer<'a> {
    pub mapping: &'a Mapping,
    /// Unsettled messages the broker may push (see [`super::prefetch`]).
    pub prefetch: u32,
    /// Ids an earlier session left unsettled (see `engine::unsettled`).
    pub seen_before: SeenBefore,
    /// Whether the mapping's RabbitMQ connection needs the broker's frame size.
    pub large_frames: LargeFrames,
    /// Batches settle in the order their messages came (MaximumConcurrency 1).
    pub in_order: bool,
}

/// What the wiring may read: the config's brokers and functions, and the
/// secrets.
#[derive(Clone, Copy)]
pub struct Wires<'a> {
    pub config: &'a Config,
    pub secrets: &'a Secrets,
}

pub trait Wiring: Send + Sync + 'static {
    /// Connects to the mapping's queue.
    fn connect<'a>(
        &'a self,
        wires: Wires<'a>,
        consumer: Consumer<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Source>, SourceError>>;

    /// The mapping's function.
    fn invoker<'a>(
        &'a self,
        wires: Wires<'a>,
        mapping: &'a Mapping,
    ) -> BoxFuture<'a, Result<Arc<dyn Invoker>, InvokeError>>;

    /// The broker refused the credentials: forget a cached secret that may
    /// have been rotated since. True when there was one, to read again.
    fn forget_secret(&self, _wires: Wires<'_>, _mapping: &Mapping) -> bool {
        false
    }

    /// How many messages wait in the mapping's queue (`source::backlog`).
    fn backlog<'a>(&'a self, _wires: Wires<'a>, _mapping: &'a Mapping) -> BoxFuture<'a, Backlog> {
        Box::pin(async { Backlog::Unknown("this engine's sources cannot count a queue".into()) })
    }

    /// Hands an on-failure record to the mapping's DestinationConfig
    /// destination: invokes the function, or publishes it (confirmed) to
    /// the queue. An error says why it did not take it.
    fn on_failure<'a>(
        &'a self,
        _wires: Wires<'a>,
        _mapping: &'a Mapping,
        _destination: &'a Destination,
        _record: bytes::Bytes,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("this engine cannot reach destinations".into()) })
    }

    /// Puts a dead letter back on the mapping's queue as the message it
    /// was (`source::original`), over the connections the sources share.
    fn republish<'a>(
        &'a self,
        _wires: Wires<'a>,
        _mapping: &'a Mapping,
        _letter: &'a DeadLetter,
    ) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async {
            Err(SourceError::Config(
                "this engine's sources cannot republish".into(),
            ))
        })
    }
}

/// The brokers, secrets and functions of the config file, and the broker
/// connections the mappings share.
#[derive(Default)]
pub struct Configured {
    amqp: crate::source::shared::AmqpConnections,
    stomp: crate::source::stomp_link::StompConnections,
}

impl Wiring for Configured {
    fn connect<'a>(
        &'a self,
        wires: Wires<'a>,
        consumer: Consumer<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Source>, SourceError>> {
        Box::pin(connect(wires, consumer, self))
    }

    fn invoker<'a>(
        &'a self,
        wires: Wires<'a>,
        mapping: &'a Mapping,
    ) -> BoxFuture<'a, Result<Arc<dyn Invoker>, InvokeError>> {
        Box::pin(async move {
            let name = &mapping.spec.function_name;
            let function = wires.config.functions.get(name).ok_or_else(|| {
                InvokeError::ConfigNotValid(format!(
                    "function `{name}` is not defined; add a [functions.{name}] section"
                ))
            })?;
            invoke::build(name, function).await.map_err(|e| match e {
                InvokeError::ConfigNotValid(m) => {
                    InvokeError::ConfigNotValid(format!("[functions.{name}]: {m}"))
                }
                other => other,
            })
        })
    }

    fn republish<'a>(
        &'a self,
        wires: Wires<'a>,
        mapping: &'a Mapping,
        letter: &'a DeadLetter,
    ) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(republish(wires, mapping, letter, self))
    }

    fn backlog<'a>(&'a self, wires: Wires<'a>, mapping: &'a Mapping) -> BoxFuture<'a, Backlog> {
        Box::pin(backlog(wires, mapping, self))
    }

    fn on_failure<'a>(
        &'a self,
        wires: Wires<'a>,
        mapping: &'a Mapping,
        destination: &'a Destination,
        record: bytes::Bytes,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            match destination {
                Destination::Function { name, .. } => {
                    let mut to = mapping.clone();
                    to.spec.function_name = name.clone();
                    let function = self.invoker(wires, &to).await.map_err(|e| e.to_string())?;
                    function
                        .invoke(record)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                Destination::Queue {
                    broker_arn, queue, ..
                } => send_to_queue(wires, mapping, broker_arn, queue, record, self).await,
            }
        })
    }

    fn forget_secret(&self, wires: Wires<'_>, mapping: &Mapping) -> bool {
        let uri = mapping
            .spec
            .access(SourceAccessType::BasicAuth)
            .unwrap_or_default();
        wires.secrets.forget(uri)
    }
}

/// The broker a mapping reads, and the secret it reads it with.
async fn broker_and_secret<'a>(
    wires: Wires<'a>,
    mapping: &Mapping,
) -> Result<(&'a crate::config::BrokerConfig, crate::config::Secret), SourceError> {
    let spec = &mapping.spec;
    let broker = wires.config.broker(&spec.event_source_arn).ok_or_else(|| {
        SourceError::Config(format!(
            "EventSourceArn {} names no configured broker",
            spec.event_source_arn
        ))
    })?;
    let secret_arn = spec.access(SourceAccessType::BasicAuth).unwrap_or_default();
    let secret = wires.secrets.get(secret_arn).await.map_err(|e| match e {
        SecretError::Config(m) => SourceError::Config(m),
        SecretError::Unavailable(m) => SourceError::Connection(m),
    })?;
    Ok((broker, secret))
}

/// What waits in the mapping's queues, summed over them (one, usually).
async fn backlog(wires: Wires<'_>, mapping: &Mapping, shared: &Configured) -> Backlog {
    let mut total = 0;
    for queue in &mapping.spec.queues {
        match backlog_of(wires, mapping, queue, shared).await {
            Backlog::Messages(n) => total += n,
            unknown => return unknown,
        }
    }
    Backlog::Messages(total)
}

async fn backlog_of(
    wires: Wires<'_>,
    mapping: &Mapping,
    queue: &str,
    shared: &Configured,
) -> Backlog {
    let counted = async {
        let (broker, secret) = broker_and_secret(wires, mapping)
            .await
            .map_err(|e| e.to_string())?;
        let spec = &mapping.spec;
        match broker.engine {
            BrokerEngine::Rabbitmq => {
                let vhost = spec.virtual_host();
                crate::source::first_answering(&broker.endpoints, |endpoint| {
                    let target = AmqpTarget {
                        endpoint,
                        secret: &secret,
                        vhost,
                        ca_file: broker.ca_file.as_deref(),
                        large_frames: false,
                    };
                    crate::source::backlog::amqp(&shared.amqp, target, queue)
                })
                .await
                .map_err(|e| e.to_string())
            }
            BrokerEngine::Activemq => {
                let Some(admin_url) = &broker.admin_url else {
                    return Err(format!(
                        "STOMP cannot count a queue: give broker `{}` an admin_url (ActiveMQ's web console, whose Jolokia can)",
                        broker.name
                    ));
                };
                let secret = match &broker.admin_secret {
                    Some(arn) => wires.secrets.get(arn).await.map_err(|e| e.to_string())?,
                    None => secret,
                };
                crate::source::backlog::jolokia(admin_url, &secret, queue).await
            }
        }
    };
    match counted.await {
        Ok(n) => Backlog::Messages(n),
        Err(why) => Backlog::Unknown(why),
    }
}

/// Publishes an on-failure record to a queue of a configured broker as a
/// persistent JSON message, as the mapping's BASIC_AUTH user.
async fn send_to_queue(
    wires: Wires<'_>,
    mapping: &Mapping,
    broker_arn: &str,
    queue: &str,
    record: bytes::Bytes,
    shared: &Configured,
) -> Result<(), String> {
    let (own, secret) = broker_and_secret(wires, mapping)
        .await
        .map_err(|e| e.to_string())?;
    let broker = wires
        .config
        .broker(broker_arn)
        .ok_or_else(|| format!("no [[brokers]] entry has arn {broker_arn}"))?;
    let ca_file = broker.ca_file.as_deref();
    // On the mapping's own broker the record goes to the mapping's virtual
    // host, where its user has rights; another broker's queue is on "/".
    let vhost = if own.arn == broker.arn {
        mapping.spec.virtual_host()
    } else {
        "/"
    };
    // A persistent JSON message, in each protocol's words.
    let persistent = match broker.engine {
        BrokerEngine::Rabbitmq => ("delivery_mode", "2"),
        BrokerEngine::Activemq => ("persistent", "true"),
    };
    let message = Message {
        body: record.to_vec(),
        properties: vec![
            ("content_type".into(), "application/json".into()),
            (persistent.0.into(), persistent.1.into()),
        ],
        ..Message::default()
    };
    let sent = match broker.engine {
        BrokerEngine::Rabbitmq => {
            crate::source::first_answering(&broker.endpoints, |endpoint| {
                let target = AmqpTarget {
                    endpoint,
                    secret: &secret,
                    vhost,
                    ca_file,
                    large_frames: true,
                };
                outbound::publish_amqp(&shared.amqp, target, queue, &message)
            })
            .await
        }
        BrokerEngine::Activemq => {
            crate::source::first_answering(&broker.endpoints, |endpoint| {
                outbound::publish_stomp(
                    &shared.stomp,
                    endpoint,
                    &secret,
                    ca_file,
                    queue,
                    (&message, false),
                )
            })
            .await
        }
    };
    sent.map_err(|e| e.to_string())
}

async fn republish(
    wires: Wires<'_>,
    mapping: &Mapping,
    letter: &DeadLetter,
    shared: &Configured,
) -> Result<(), SourceError> {
    let (broker, secret) = broker_and_secret(wires, mapping).await?;
    let spec = &mapping.spec;
    let ca_file = broker.ca_file.as_deref();
    match broker.engine {
        BrokerEngine::Rabbitmq => {
            let message = original::from_rmq(
                &letter.record,
                letter.amqp_headers.as_deref(),
                &letter.body,
                &secret.username,
            );
            let vhost = spec.virtual_host();
            crate::source::first_answering(&broker.endpoints, |endpoint| {
                let target = AmqpTarget {
                    endpoint,
                    secret: &secret,
                    vhost,
                    ca_file,
                    // Its headers may need the broker's frame size.
                    large_frames: true,
                };
                outbound::publish_amqp(&shared.amqp, target, &letter.queue, &message)
            })
            .await
        }
        BrokerEngine::Activemq => {
            let now = chrono::Utc::now().timestamp_millis();
            let (message, bytes) = original::from_mq(&letter.record, &letter.body, now);
            crate::source::first_answering(&broker.endpoints, |endpoint| {
                outbound::publish_stomp(
                    &shared.stomp,
                    endpoint,
                    &secret,
                    ca_file,
                    &letter.queue,
                    (&message, bytes),
                )
            })
            .await
        }
    }
}

async fn connect(
    wires: Wires<'_>,
    consumer: Consumer<'_>,
    shared: &Configured,
) -> Result<Box<dyn Source>, SourceError> {
    let spec = &consumer.mapping.spec;
    let uuid = consumer.mapping.uuid;
    let (broker, secret) = broker_and_secret(wires, consumer.mapping).await?;
    if spec.queues.len() <= 1 {
        let (queue, tag) = (spec.queue(), uuid.to_string());
        return connect_queue(broker, secret, &consumer, queue, tag, shared).await;
    }
    // A consumer on each queue, each its own consumer tag (subscription).
    let mut sources = Vec::new();
    for (i, queue) in spec.queues.iter().enumerate() {
        let tag = format!("{uuid}-{i}");
        let source = connect_queue(broker, secret.clone(), &consumer, queue, tag, shared).await?;
        sources.push((queue.clone(), source));
    }
    Ok(Box::new(crate::source::merged::Merged::new(sources)))
}

/// A consumer on one queue of the mapping's broker.
async fn connect_queue(
    broker: &crate::config::BrokerConfig,
    secret: crate::config::Secret,
    consumer: &Consumer<'_>,
    queue: &str,
    consumer_tag: String,
    shared: &Configured,
) -> Result<Box<dyn Source>, SourceError> {
    let spec = &consumer.mapping.spec;
    match broker.engine {
        BrokerEngine::Rabbitmq => {
            let source = RabbitSource::connect(RabbitConfig {
                endpoints: broker.endpoints.clone(),
                secret,
                vhost: spec.virtual_host().to_owned(),
                queue: queue.to_owned(),
                consumer_tag,
                prefetch: consumer.prefetch.min(u32::from(u16::MAX)) as u16,
                ca_file: broker.ca_file.clone(),
                large_frames: consumer.large_frames.clone(),
                connections: shared.amqp.clone(),
            })
            .await?;
            Ok(Box::new(source))
        }
        BrokerEngine::Activemq => {
            let source = ActiveMqSource::connect(StompConfig {
                endpoints: broker.endpoints.clone(),
                ca_file: broker.ca_file.clone(),
                secret,
                queue: queue.to_owned(),
                subscription: consumer_tag,
                prefetch: consumer.prefetch,
                seen_before: consumer.seen_before.clone(),
                in_order: consumer.in_order,
                connections: shared.stomp.clone(),
            })
            .await?;
            Ok(Box::new(source))
        }
    }
}
