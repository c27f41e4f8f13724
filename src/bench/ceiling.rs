//! The ceiling: a plain consumer on the same client library, with the same
//! prefetch, acking K messages at a time and doing nothing else. What the
//! engine achieves is measured against this.

use super::probe;
use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use std::time::Instant;

pub struct Drained {
    /// From the first message received to the last one acked.
    pub elapsed: std::time::Duration,
    /// Publish → receipt, microseconds, per message.
    pub latencies: Vec<u64>,
}

struct Clock {
    first: Option<Instant>,
    latencies: Vec<u64>,
}

impl Clock {
    fn new(n: usize) -> Clock {
        Clock {
            first: None,
            latencies: Vec::with_capacity(n),
        }
    }

    fn received(&mut self, body: &[u8]) {
        self.first.get_or_insert_with(Instant::now);
        if let Some(stamp) = probe::stamp_of(body) {
            let micros = probe::now_ns().saturating_sub(stamp) / 1000;
            self.latencies.push(micros as u64);
        }
    }

    fn done(self) -> Drained {
        Drained {
            elapsed: self.first.map(|f| f.elapsed()).unwrap_or_default(),
            latencies: self.latencies,
        }
    }
}

pub async fn drain_amqp(
    url: &str,
    queue: &str,
    n: usize,
    k: usize,
    prefetch: u16,
) -> Result<Drained> {
    use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "mqtrigger-bench-ceiling".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await?;
    let mut clock = Clock::new(n);
    let mut count = 0;
    while count < n {
        let delivery = match consumer.next().await {
            Some(d) => d?,
            None => bail!("RabbitMQ cancelled the ceiling consumer"),
        };
        clock.received(&delivery.data);
        count += 1;
        if count % k == 0 || count == n {
            let acked = delivery
                .acker
                .ack(BasicAckOptions { multiple: true })
                .await?;
            if !acked {
                bail!("the ceiling consumer's channel closed before an ack");
            }
        }
    }
    let drained = clock.done();
    conn.close(200, "done".into()).await?;
    Ok(drained)
}

pub async fn drain_stomp(
    url: &str,
    queue: &str,
    n: usize,
    k: usize,
    prefetch: u32,
) -> Result<Drained> {
    use crate::source::stomp::{Frame, Inbound, error_message};
    use crate::source::stomp_link::{Opened, open, split_url};
    let (endpoint, secret) = split_url(url).map_err(|e| anyhow::anyhow!(e))?;
    let what = format!("for user '{}' at {endpoint}", secret.username);
    let Opened { mut framed, .. } = open(&endpoint, &secret, None, &what, None).await?;
    framed
        .send(
            Frame::new("SUBSCRIBE")
                .header("id", "0")
                .header("destination", &format!("/queue/{queue}"))
                // Cumulative: one ACK settles every message before it.
                .header("ack", "client")
                .header("activemq.prefetchSize", &prefetch.to_string()),
        )
        .await?;
    let mut clock = Clock::new(n);
    let mut count = 0;
    while count < n {
        let frame = match framed.next().await {
            Some(Ok(Inbound::Frame(f))) => f,
            Some(Ok(Inbound::HeartBeat)) => continue,
            Some(Err(e)) => bail!("{e}"),
            None => bail!("ActiveMQ closed the ceiling consumer's connection"),
        };
        match frame.command() {
            "MESSAGE" => {}
            "ERROR" => bail!("ActiveMQ: {}", error_message(&frame)),
            _ => continue,
        }
        clock.received(&frame.body);
        count += 1;
        if count % k == 0 || count == n {
            let id = frame.get("ack").unwrap_or_default().to_owned();
            framed.send(Frame::new("ACK").header("id", &id)).await?;
        }
    }
    let drained = clock.done();
    framed
        .send(Frame::new("DISCONNECT").header("receipt", "bye"))
        .await?;
    Ok(drained)
}
