//! `mqtrigger publish`: sample traffic with any AMQP property, for demos and tests.

pub use crate::source::message::{Message, PROPERTY_NAMES, properties};
use anyhow::{Context, Result, bail};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};

/// Splits `k=v`.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not of the form key=value"))
}

/// Publishes `count` copies with publisher confirms. The queue is declared
/// (durable, classic) when it does not exist yet.
/// An open connection that sends messages to one queue, confirmed: AMQP
/// publisher confirms, or a STOMP receipt for the last frame.
// One per connection and never stored in bulk: size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Publisher {
    Amqp {
        conn: Connection,
        channel: lapin::Channel,
        props: Box<BasicProperties>,
        queue: String,
        pending: Vec<lapin::PublisherConfirm>,
    },
    Stomp {
        framed: Box<crate::source::stomp_link::Conn>,
        template: crate::source::stomp::Frame,
        sent: usize,
        /// The queue, for messages that bring their own headers
        /// ([`Publisher::send_confirmed`]).
        queue: String,
    },
}

/// Confirms are awaited in groups of this many, so publishing stays pipelined.
const CONFIRM_EVERY: usize = 1000;

impl Publisher {
    /// Connects to `amqp://…` (declaring the queue durable if it is missing)
    /// or `stomp://…`. `message` gives the properties and headers.
    pub async fn connect(
        url: &str,
        queue: &str,
        message: &Message,
        bytes_message: bool,
    ) -> Result<Publisher> {
        if url.starts_with("stomp+ssl://") {
            bail!(
                "publishing over stomp+ssl:// is not supported yet; give the broker's plain stomp:// listener"
            );
        }
        if url.starts_with("stomp://") {
            Self::connect_stomp(url, queue, message, bytes_message).await
        } else if url.starts_with("amqp://") || url.starts_with("amqps://") {
            Self::connect_amqp(url, queue, message).await
        } else {
            bail!(
                "--broker `{url}`: give amqp://user:pass@host:port/vhost or stomp://user:pass@host:port"
            )
        }
    }

    async fn connect_amqp(url: &str, queue: &str, message: &Message) -> Result<Publisher> {
        let props = properties(message)?;
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let probe = conn.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if probe
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .is_err()
        {
            let channel = conn.create_channel().await?;
            let durable = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .queue_declare(queue.into(), durable, FieldTable::default())
                .await
                .with_context(|| format!("cannot declare queue {queue}"))?;
        }
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher::Amqp {
            conn,
            channel,
            props: Box::new(props),
            queue: queue.to_owned(),
            pending: Vec::new(),
        })
    }

    async fn connect_stomp(
        url: &str,
        queue: &str,
        message: &Message,
        bytes_message: bool,
    ) -> Result<Publisher> {
        use crate::source::stomp::Frame;
        use crate::source::stomp_link::{Opened, open, split_url};
        let (endpoint, secret) = split_url(url).map_err(|e| anyhow::anyhow!(e))?;
        let what = format!("for user '{}' at {endpoint}", secret.username);
        let Opened { framed, .. } = open(&endpoint, &secret, None, &what, None).await?;
        let mut template = Frame::new("SEND").header("destination", &format!("/queue/{queue}"));
        // Properties are named in snake case (correlation_id); headers are
        // the user's own names, underscores and all.
        for (k, v) in &message.properties {
            template = template.header(&k.replace('_', "-"), v);
        }
        for (k, v) in &message.headers {
            template = template.header(k, v);
        }
        if bytes_message {
            template = template.header("content-length", &message.body.len().to_string());
        }
        Ok(Publisher::Stomp {
            framed: Box::new(framed),
            template,
            sent: 0,
            queue: queue.to_owned(),
        })
    }

    /// Sends one message; confirmation may come later (see [`Self::finish`]).
    pub async fn send(&mut self, body: &[u8]) -> Result<()> {
        match self {
            Publisher::Amqp {
                channel,
                props,
                queue,
                pending,
                ..
            } => {
                let confirm = channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        body,
                        (**props).clone(),
                    )
                    .await?;
                pending.push(confirm);
                if pending.len() >= CONFIRM_EVERY {
                    await_confirms(pending).await?;
                }
            }
            Publisher::Stomp {
                framed,
                template,
                sent,
                ..
            } => {
                use futures::SinkExt;
                let mut frame = template.clone().body(body.to_vec());
                if template.get("content-length").is_some() {
                    // This body's length: the first of repeated headers
                    // counts, so the template's own must go.
                    frame.remove_header("content-length");
                    frame.push_header("content-length", &body.len().to_string());
                }
                // Buffered, not flushed: the codec writes frames in bulk.
                framed.feed(frame).await?;
                *sent += 1;
                if *sent % 64 == 0 {
                    framed.flush().await?;
                }
            }
        }
        Ok(())
    }

    /// Sends `message` with its own properties and headers (not those the
    /// connection was opened with) and returns only once the broker has
    /// taken it: its publisher confirm, or the receipt of its SEND. `publish
    /// --from` counts a line as published only then, so a run cut short
    /// starts again after what the broker holds.
    pub async fn send_confirmed(&mut self, message: &Message, bytes_message: bool) -> Result<()> {
        match self {
            Publisher::Amqp {
                channel,
                queue,
                pending,
                ..
            } => {
                let props = properties(message)?;
                let confirm = channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &message.body,
                        props,
                    )
                    .await?;
                pending.push(confirm);
                await_confirms(pending).await
            }
            Publisher::Stomp {
                framed,
                sent,
                queue,
                ..
            } => {
                use futures::SinkExt;
                *sent += 1;
                let receipt = format!("sent-{sent}");
                let frame = message
                    .stomp_frame(queue, bytes_message)
                    .header("receipt", &receipt);
                framed.send(frame).await?;
                let answer = tokio::time::timeout(CONFIRM_TIMEOUT, async {
                    loop {
                        let frame = next_frame(framed).await?;
                        match frame.command() {
                            "RECEIPT" if frame.get("receipt-id") == Some(receipt.as_str()) => {
                                return Ok(());
                            }
                            "ERROR" => bail!(
                                "ActiveMQ refused a message: {}",
                                crate::source::stomp::error_message(&frame)
                            ),
                            _ => continue,
                        }
                    }
                })
                .await;
                answer.map_err(|_| {
                    anyhow::anyhow!(
                        "ActiveMQ sent no receipt for {CONFIRM_TIMEOUT:?} (was the connection lost?); the message may not have been published"
                    )
                })?
            }
        }
    }

    /// Puts buffered frames on the wire now (a paced publisher wants each
    /// message out when it is stamped).
    pub async fn flush(&mut self) -> Result<()> {
        if let Publisher::Stomp { framed, .. } = self {
            use futures::SinkExt;
            framed.flush().await?;
        }
        Ok(())
    }

    /// Waits until the broker has every message sent, then disconnects.
    pub async fn finish(self) -> Result<()> {
        match self {
            Publisher::Amqp {
                conn, mut pending, ..
            } => {
                await_confirms(&mut pending).await?;
                // Every message is confirmed; a close that goes wrong
                // now loses nothing.
                let closing = conn.close(200, "done".into());
                match tokio::time::timeout(std::time::Duration::from_secs(5), closing).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!("closing the AMQP connection: {e}"),
                    Err(_) => tracing::debug!("the AMQP connection took too long to close"),
                }
            }
            Publisher::Stomp { mut framed, .. } => {
                use crate::source::stomp::{Frame, error_message};
                use futures::SinkExt;
                // A receipt for a frame after every SEND proves the broker has them all.
                framed
                    .send(Frame::new("DISCONNECT").header("receipt", "published"))
                    .await?;
                let answer = next_frame(&mut framed).await?;
                if answer.command() != "RECEIPT" {
                    bail!("ActiveMQ refused a message: {}", error_message(&answer));
                }
            }
        }
        Ok(())
    }
}

/// How long the broker may take to confirm what was sent: a connection lost
/// mid-publish must end in an error, not a wait forever.
const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn await_confirms(pending: &mut Vec<lapin::PublisherConfirm>) -> Result<()> {
    for c in pending.drain(..) {
        let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, c)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "RabbitMQ confirmed nothing for {CONFIRM_TIMEOUT:?} (was the connection lost?); some messages may not have been published"
                )
            })?;
        match confirmed? {
            Confirmation::Ack(_) => {}
            other => bail!("RabbitMQ did not confirm a message: {other:?}"),
        }
    }
    Ok(())
}

async fn next_frame(
    framed: &mut crate::source::stomp_link::Conn,
) -> Result<crate::source::stomp::Frame> {
    use crate::source::stomp::Inbound;
    use futures::StreamExt;
    loop {
        match framed.next().await {
            Some(Ok(Inbound::Frame(f))) => return Ok(f),
            Some(Ok(Inbound::HeartBeat)) => continue,
            Some(Err(e)) => bail!("{e}"),
            None => bail!("the broker closed the connection"),
        }
    }
}

/// Deletes an AMQP queue (bench cleans up after itself). STOMP has no way
/// to; ActiveMQ drops empty queues on its own if so configured.
pub async fn delete_queue(url: &str, queue: &str) -> Result<()> {
    delete_queues(url, &[queue.to_owned()]).await
}

/// Deletes RabbitMQ queues over one connection (bench's teardown: a
/// connection per queue would be a thousand of them).
pub async fn delete_queues(url: &str, queues: &[String]) -> Result<()> {
    if !url.starts_with("amqp") || queues.is_empty() {
        return Ok(());
    }
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    for queue in queues {
        channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await?;
    }
    conn.close(200, "done".into()).await?;
    Ok(())
}

/// `mqtrigger publish`: `count` copies of `message`.
pub async fn publish(
    url: &str,
    queue: &str,
    message: &Message,
    count: usize,
    bytes_message: bool,
) -> Result<()> {
    let mut publisher = Publisher::connect(url, queue, message, bytes_message).await?;
    for _ in 0..count {
        publisher.send(&message.body).await?;
    }
    publisher.finish().await
}
