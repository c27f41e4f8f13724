//! Shared helpers for the tests that run against the real RabbitMQ.
#![allow(dead_code)]

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use mqtrigger::config::Config;
use mqtrigger::engine::Control;
use mqtrigger::mapping::Mapping;
use mqtrigger::store::Store;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const BROKER_ARN: &str =
    "arn:aws:mq:us-east-1:000000000000:broker:test-rabbit:b-00000000-0000-0000-0000-000000000001";
pub const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:test-rabbit";

pub fn amqp_url() -> String {
    std::env::var("MQTRIGGER_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// host:port of the test broker, without credentials.
pub fn amqp_endpoint() -> String {
    let url = amqp_url();
    let rest = url.split_once("://").unwrap().1;
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("amqp://{}", host.split('/').next().unwrap())
}

pub fn unique(name: &str) -> String {
    format!(
        "mqt-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub struct Broker {
    pub conn: Connection,
    pub channel: Channel,
}

impl Broker {
    pub async fn connect() -> Broker {
        let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
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
        let ch = self.conn.create_channel().await.unwrap();
        let opts = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        ch.queue_declare(queue.into(), opts, FieldTable::default())
            .await
            .unwrap()
            .message_count()
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

/// A config file for one mapping on the test broker with the recorder function.
#[derive(Clone)]
pub struct Setup {
    pub queue: String,
    pub batch_size: u32,
    pub window_secs: Option<u32>,
    pub username: String,
    pub password: String,
    pub vhost: String,
    pub endpoints: Vec<String>,
    pub function_env: Vec<(String, String)>,
    pub function_command: Option<Vec<String>>,
    /// Invoke through aws-sdk-lambda at this endpoint instead of running the recorder.
    pub lambda_endpoint: Option<String>,
    pub timeout: u64,
    pub retry_initial_ms: u64,
}

impl Setup {
    pub fn new(queue: &str) -> Setup {
        Setup {
            queue: queue.into(),
            batch_size: 10,
            window_secs: Some(1),
            username: "guest".into(),
            password: "guest".into(),
            vhost: "/".into(),
            endpoints: vec![amqp_endpoint()],
            function_env: vec![],
            function_command: None,
            lambda_endpoint: None,
            timeout: 30,
            retry_initial_ms: 50,
        }
    }

    pub fn toml(&self, record_to: &Path) -> String {
        let command = self.function_command.clone().unwrap_or_else(|| {
            vec![
                "python3".into(),
                format!("{}/tests/functions/recorder.py", env!("CARGO_MANIFEST_DIR")),
            ]
        });
        let mut env = format!("RECORD_TO = {:?}", record_to.display().to_string());
        for (k, v) in &self.function_env {
            env.push_str(&format!(", {k} = {v:?}"));
        }
        let function = match &self.lambda_endpoint {
            Some(url) => format!(
                "lambda = \"arn:aws:lambda:us-east-1:000000000000:function:recorder\"\nregion = \"us-east-1\"\nendpoint_url = \"{url}\""
            ),
            None => format!("command = {command:?}\nenv = {{ {env} }}"),
        };
        let window = self
            .window_secs
            .map(|w| format!("MaximumBatchingWindowInSeconds = {w}"))
            .unwrap_or_default();
        format!(
            r#"
[engine]
retry_initial_ms = {retry}
retry_max_ms = {retry_max}
reconnect_max_ms = 1000

[[brokers]]
name = "test-rabbit"
engine = "rabbitmq"
arn = "{BROKER_ARN}"
endpoints = {endpoints:?}

[secrets]
"{SECRET_ARN}" = {{ username = "{user}", password = "{pass}" }}

[functions.recorder]
{function}
timeout = {timeout}

[[mappings]]
FunctionName = "recorder"
EventSourceArn = "{BROKER_ARN}"
Queues = ["{queue}"]
BatchSize = {batch}
{window}
SourceAccessConfigurations = [
  {{ Type = "BASIC_AUTH", URI = "{SECRET_ARN}" }},
  {{ Type = "VIRTUAL_HOST", URI = "{vhost}" }},
]
"#,
            retry = self.retry_initial_ms,
            retry_max = self.retry_initial_ms * 4,
            endpoints = self.endpoints,
            user = self.username,
            pass = self.password,
            timeout = self.timeout,
            queue = self.queue,
            batch = self.batch_size,
            vhost = self.vhost,
        )
    }
}

/// An engine running one mapping in this process, with its own state and record file.
pub struct Running {
    pub dir: tempfile::TempDir,
    pub record: PathBuf,
    pub config_path: PathBuf,
    pub control: Control,
}

impl Running {
    pub async fn start(setup: &Setup) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("events.jsonl");
        std::fs::write(&record, b"").unwrap();
        let config_path = dir.path().join("mqtrigger.toml");
        std::fs::write(&config_path, setup.toml(&record)).unwrap();
        let config = Config::load(&config_path).expect("test config is valid");
        let store = Store::open(&dir.path().join("state")).unwrap();
        let control = Control::start(config, store).await.unwrap();
        Running {
            dir,
            record,
            config_path,
            control,
        }
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        read_events(&self.record)
    }

    pub fn mapping(&self) -> Mapping {
        self.control.list().unwrap().remove(0)
    }
}

pub fn read_events(path: &Path) -> Vec<serde_json::Value> {
    // The function may be writing a line right now: only complete lines count.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The messages of an `aws:rmq` event: (body, redelivered).
pub fn messages(event: &serde_json::Value) -> Vec<(Vec<u8>, bool)> {
    use base64::Engine;
    let by_queue = event["rmqMessagesByQueue"]
        .as_object()
        .expect("an aws:rmq event");
    by_queue
        .values()
        .flat_map(|msgs| msgs.as_array().unwrap().iter())
        .map(|m| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(m["data"].as_str().unwrap())
                .unwrap();
            (data, m["redelivered"].as_bool().unwrap())
        })
        .collect()
}

/// Polls until `done` holds; panics with `what` after a generous safety limit.
pub async fn wait_for<F: FnMut() -> bool>(what: &str, mut done: F) {
    let limit = std::time::Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(
            std::time::Instant::now() < limit,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
