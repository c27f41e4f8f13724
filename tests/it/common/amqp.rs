//! RabbitMQ for the tests: where the test broker is, and a plain AMQP
//! client (lapin, with publisher confirms) that declares, publishes to,
//! counts, drains and deletes queues.

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

pub fn amqp_url() -> String {
    std::env::var("MQTRIGGER_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The test broker's URL on another virtual host.
pub fn amqp_url_on(vhost: &str) -> String {
    let url = amqp_url();
    let (base, _) = url.rsplit_once('/').expect("an amqp URL names its vhost");
    format!("{base}/{vhost}")
}

/// Runs `rabbitmqctl` beside the test broker (for virtual hosts and their
/// limits, which AMQP cannot set).
pub fn rabbitmqctl(args: &[&str]) {
    let out = std::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .expect("rabbitmqctl runs beside the test broker");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {out:?}");
}

/// host:port of the test broker, without credentials.
pub fn amqp_endpoint() -> String {
    let url = amqp_url();
    let rest = url.split_once("://").unwrap().1;
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("amqp://{}", host.split('/').next().unwrap())
}

pub struct Broker {
    pub conn: Connection,
    pub channel: Channel,
}

impl Broker {
    pub async fn connect() -> Broker {
        Self::connect_to(&amqp_url()).await
    }

    pub async fn connect_to(url: &str) -> Broker {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("RabbitMQ must run (scripts/brokers up)");
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Broker { conn, channel }
    }

    pub async fn declare(&self, queue: &str, args: FieldTable) {
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.channel
            .queue_declare(queue.into(), opts, args)
            .await
            .unwrap();
    }

    pub async fn publish(&self, queue: &str, body: &[u8], props: BasicProperties) {
        self.channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Messages ready in the queue (not counting unacked ones).
    pub async fn ready(&self, queue: &str) -> u32 {
        self.look_at(queue).await.message_count()
    }

    /// How many consumers the broker has on the queue.
    pub async fn consumers(&self, queue: &str) -> u32 {
        self.look_at(queue).await.consumer_count()
    }

    /// The queue's counts, from a passive declare.
    async fn look_at(&self, queue: &str) -> lapin::Queue {
        let ch = self.conn.create_channel().await.unwrap();
        let opts = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        ch.queue_declare(queue.into(), opts, FieldTable::default())
            .await
            .unwrap()
    }

    /// Takes every ready message off the queue.
    pub async fn drain(&self, queue: &str) -> Vec<lapin::message::BasicGetMessage> {
        let ch = self.conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            out.push(m);
        }
        out
    }

    pub async fn delete(&self, queue: &str) {
        let ch = self.conn.create_channel().await.unwrap();
        let _ = ch
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await;
    }
}
