//! Shared helpers for the tests that run against the real RabbitMQ.

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

pub fn stomp_endpoint() -> String {
    std::env::var("MQTRIGGER_TEST_STOMP").unwrap_or_else(|_| "stomp://127.0.0.1:61613".into())
}

/// The test CA that signed the stomp+ssl listener's certificate (for "localhost").
pub fn stomp_ca() -> String {
    std::env::var("MQTRIGGER_TEST_STOMP_CA")
        .unwrap_or_else(|_| "/etc/activemq/instances-available/mqtrigger/tls/ca.pem".into())
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
    /// The whole `[functions.recorder]` body instead (a `bootstrap`
    /// function); `{RECORD_TO}` in it becomes the record file's path.
    pub function_toml: Option<String>,
    pub timeout: u64,
    pub retry_initial_ms: u64,
    /// `[engine] max_redeliveries` (Lambda's 5 when None).
    pub max_redeliveries: Option<u32>,
    /// "rabbitmq" or "activemq".
    pub engine: String,
    pub ca_file: Option<String>,
    /// A FilterCriteria pattern (JSON).
    pub filter: Option<String>,
    /// More fields of the [[mappings]] entry (`ScalingConfig = …`).
    pub mapping_toml: String,
    /// The mapping's BASIC_AUTH URI (`[secrets]` holds SECRET_ARN only).
    pub secret_arn: String,
    /// More TOML at the end of the file (`[api]`, `[secrets_manager]`, …).
    pub extra_toml: String,
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
            function_toml: None,
            timeout: 30,
            retry_initial_ms: 50,
            max_redeliveries: None,
            engine: "rabbitmq".into(),
            ca_file: None,
            filter: None,
            extra_toml: String::new(),
            secret_arn: SECRET_ARN.into(),
            mapping_toml: String::new(),
        }
    }

    /// The same mapping on the test ActiveMQ (STOMP, admin/admin).
    pub fn activemq(queue: &str) -> Setup {
        Setup {
            username: "admin".into(),
            password: "admin".into(),
            endpoints: vec![stomp_endpoint()],
            engine: "activemq".into(),
            ..Setup::new(queue)
        }
    }

    pub fn toml(&self, record_to: &Path) -> String {
        let command = self.function_command.clone().unwrap_or_else(|| {
            vec![
                python(),
                format!("{}/tests/functions/recorder.py", env!("CARGO_MANIFEST_DIR")),
            ]
        });
        let mut env = format!("RECORD_TO = {:?}", record_to.display().to_string());
        for (k, v) in &self.function_env {
            env.push_str(&format!(", {k} = {v:?}"));
        }
        let function = match (&self.function_toml, &self.lambda_endpoint) {
            (Some(toml), _) => toml.replace("{RECORD_TO}", &record_to.display().to_string()),
            (None, endpoint) => match endpoint {
                Some(url) => format!(
                    "lambda = \"arn:aws:lambda:us-east-1:000000000000:function:recorder\"\nregion = \"us-east-1\"\nendpoint_url = \"{url}\""
                ),
                None => format!("command = {command:?}\nenv = {{ {env} }}"),
            },
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
{redeliveries}

[[brokers]]
name = "test-rabbit"
engine = "{engine}"
arn = "{BROKER_ARN}"
endpoints = {endpoints:?}
{ca_file}

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
{filter}
{mapping_extra}
SourceAccessConfigurations = [
  {{ Type = "BASIC_AUTH", URI = "{secret_arn}" }},
  {vhost}
]

{extra}
"#,
            extra = self.extra_toml,
            secret_arn = self.secret_arn,
            mapping_extra = self.mapping_toml,
            retry = self.retry_initial_ms,
            retry_max = self.retry_initial_ms * 4,
            redeliveries = self
                .max_redeliveries
                .map(|n| format!("max_redeliveries = {n}"))
                .unwrap_or_default(),
            endpoints = self.endpoints,
            user = self.username,
            pass = self.password,
            timeout = self.timeout,
            queue = self.queue,
            batch = self.batch_size,
            vhost = if self.engine == "rabbitmq" {
                format!("{{ Type = \"VIRTUAL_HOST\", URI = \"{}\" }},", self.vhost)
            } else {
                String::new()
            },
            engine = self.engine,
            filter = self
                .filter
                .as_ref()
                .map(|p| format!("FilterCriteria = {{ Filters = [ {{ Pattern = '{p}' }} ] }}"))
                .unwrap_or_default(),
            ca_file = self
                .ca_file
                .as_ref()
                .map(|f| format!("ca_file = {f:?}"))
                .unwrap_or_default(),
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
        // SQLite in the test's directory, unless `extra_toml` names a [store].
        let store = Store::choose(None, &config, &dir.path().join("state")).unwrap();
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

    /// The mapping's dead letters in the journal, newest first.
    pub fn dead_letters(&self) -> Vec<mqtrigger::store::DeadLetter> {
        let uuid = self.mapping().uuid;
        self.control.store().dead_letters(Some(uuid), 100).unwrap()
    }

    /// Waits for the mapping to stop itself; its reason and the sentence behind it.
    pub async fn stopped(&self) -> (mqtrigger::mapping::StateTransitionReason, String) {
        use mqtrigger::mapping::State;
        wait_for("the mapping to stop", || {
            self.mapping().state == State::Disabled
        })
        .await;
        let m = self.mapping();
        (
            m.state_transition_reason,
            m.state_detail.unwrap_or_default(),
        )
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
    let records: Vec<&serde_json::Value> = match event["rmqMessagesByQueue"].as_object() {
        Some(by_queue) => by_queue
            .values()
            .flat_map(|m| m.as_array().unwrap().iter())
            .collect(),
        None => event["messages"]
            .as_array()
            .expect("an aws:mq or aws:rmq event")
            .iter()
            .collect(),
    };
    records
        .into_iter()
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

/// A child process (`mqtrigger serve`) that is killed when the test ends,
/// also when it fails: a panicking test must not leave a consumer running
/// on the shared broker.
pub struct KillOnDrop {
    child: std::process::Child,
    /// Where the process writes its log, if anywhere: its last lines are
    /// printed when a test panics with the process still running, which is
    /// how a failure in CI says what the service was doing.
    log: Option<std::path::PathBuf>,
}

impl KillOnDrop {
    pub fn new(child: std::process::Child) -> KillOnDrop {
        KillOnDrop { child, log: None }
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.child
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.child
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let (true, Some(log)) = (std::thread::panicking(), &self.log) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- the last lines of {}:\n{}",
                log.display(),
                tail.join("\n")
            );
        }
    }
}

/// `mqtrigger serve` on CONFIG and STATE, its output appended to
/// `STATE.log` (shown when the test fails).
pub fn spawn_serve(config: &Path, state: &Path) -> KillOnDrop {
    let log = state.with_extension("log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("the serve log can be written");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args(["serve", "--config"])
        .arg(config)
        .arg("--state")
        .arg(state)
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .expect("the mqtrigger binary runs");
    KillOnDrop {
        child,
        log: Some(log),
    }
}

/// Stops a serve process as a user would (SIGTERM) and waits for it.
pub fn stop(mut child: KillOnDrop) -> std::process::ExitStatus {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

/// The Python interpreter itself, not a version manager's shim: the test
/// functions start a process per batch, and on a loaded machine a shell shim
/// triples what each start costs.
pub fn python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            std::process::Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .ok()
                .and_then(|out| String::from_utf8(out.stdout).ok())
                .map(|path| path.trim().to_owned())
                .filter(|path| !path.is_empty())
                .unwrap_or_else(|| "python3".into())
        })
        .clone()
}

/// Waits until `count()` reaches `target` for as long as it keeps rising:
/// a loaded machine makes a big flow slow, not wrong, so this gives up only
/// after 90 s without progress. `count` may be costly (it parses the
/// record), so it is read every 250 ms.
pub async fn wait_for_all<F: FnMut() -> usize>(what: &str, target: usize, mut count: F) {
    let stall = Duration::from_secs(90);
    let mut seen = count();
    let mut moved = std::time::Instant::now();
    while seen < target {
        assert!(
            moved.elapsed() < stall,
            "gave up waiting for {what}: {seen} of {target}, none more in {stall:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = count();
        if now != seen {
            seen = now;
            moved = std::time::Instant::now();
        }
    }
}

/// A plain STOMP client for the tests, on the project's codec.
pub struct Stomp {
    framed: tokio_util::codec::Framed<tokio::net::TcpStream, mqtrigger::source::stomp::StompCodec>,
    receipts: u32,
}

impl Stomp {
    pub async fn connect(login: &str, passcode: &str) -> Stomp {
        use futures::SinkExt;
        use mqtrigger::source::stomp::{Frame, StompCodec};
        let endpoint = stomp_endpoint();
        let hostport = endpoint.trim_start_matches("stomp://").to_owned();
        let stream = tokio::net::TcpStream::connect(&hostport)
            .await
            .expect("ActiveMQ must run (scripts/brokers up)");
        let mut stomp = Stomp {
            framed: tokio_util::codec::Framed::new(stream, StompCodec::default()),
            receipts: 0,
        };
        let connect = Frame::new("CONNECT")
            .header("accept-version", "1.2")
            .header("host", "localhost")
            .header("login", login)
            .header("passcode", passcode);
        stomp.framed.send(connect).await.unwrap();
        let answer = stomp.frame().await.expect("CONNECTED");
        assert_eq!(answer.command(), "CONNECTED", "{answer:?}");
        stomp
    }

    /// The next frame, or None after `wait` of silence.
    pub async fn frame_within(
        &mut self,
        wait: Duration,
    ) -> Option<mqtrigger::source::stomp::Frame> {
        use futures::StreamExt;
        use mqtrigger::source::stomp::Inbound;
        loop {
            match tokio::time::timeout(wait, self.framed.next()).await {
                Ok(Some(Ok(Inbound::Frame(f)))) => return Some(f),
                Ok(Some(Ok(Inbound::HeartBeat))) => continue,
                Ok(other) => panic!("STOMP connection ended: {other:?}"),
                Err(_) => return None,
            }
        }
    }

    pub async fn frame(&mut self) -> Option<mqtrigger::source::stomp::Frame> {
        self.frame_within(Duration::from_secs(30)).await
    }

    /// Sends a message and waits for the broker's receipt.
    pub async fn send(
        &mut self,
        queue: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        bytes_message: bool,
    ) {
        use futures::SinkExt;
        use mqtrigger::source::stomp::Frame;
        self.receipts += 1;
        let receipt = format!("r{}", self.receipts);
        let mut frame = Frame::new("SEND").header("destination", &format!("/queue/{queue}"));
        for (k, v) in headers {
            frame = frame.header(k, v);
        }
        if bytes_message {
            frame = frame.header("content-length", &body.len().to_string());
        }
        frame = frame.header("receipt", &receipt).body(body.to_vec());
        self.framed.send(frame).await.unwrap();
        let answer = self.frame().await.unwrap();
        assert_eq!(
            answer.get("receipt-id"),
            Some(receipt.as_str()),
            "{answer:?}"
        );
    }

    /// Takes the messages of `queue` for which `mine` holds (acking them) until
    /// `wait` passes without one; others are left for their owners.
    pub async fn take(
        &mut self,
        queue: &str,
        wait: Duration,
        mine: impl Fn(&mqtrigger::source::stomp::Frame) -> bool,
    ) -> Vec<mqtrigger::source::stomp::Frame> {
        use futures::SinkExt;
        use mqtrigger::source::stomp::Frame;
        let id = unique("sub");
        let subscribe = Frame::new("SUBSCRIBE")
            .header("id", &id)
            .header("destination", &format!("/queue/{queue}"))
            .header("ack", "client-individual");
        self.framed.send(subscribe).await.unwrap();
        let mut taken = Vec::new();
        while let Some(f) = self.frame_within(wait).await {
            if f.command() != "MESSAGE" {
                continue;
            }
            if mine(&f) {
                let ack = Frame::new("ACK").header("id", f.get("ack").unwrap());
                self.framed.send(ack).await.unwrap();
                taken.push(f);
            }
        }
        self.framed
            .send(Frame::new("UNSUBSCRIBE").header("id", &id))
            .await
            .unwrap();
        taken
    }
}

/// A plain HTTP/1.1 GET (status line, headers and body), or None if nothing answers.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

/// The `[api] access_keys` entry of [`Setup::signed`] services.
pub const API_KEY_ID: &str = "AKIDATTACH000001";
pub const API_SECRET: &str = "attach-secret-0123456789";

impl Setup {
    /// This setup with an API that checks signatures by [`API_KEY_ID`].
    pub fn signed(self) -> Setup {
        Setup {
            extra_toml: format!(
                "{}\n[api]\naccess_keys = [{{ id = \"{API_KEY_ID}\", secret = \"{API_SECRET}\" }}]\n",
                self.extra_toml
            ),
            ..self
        }
    }
}

/// A loopback address nothing listens on (yet).
pub fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// DIR/mqtrigger.toml from `setup` (its function records to DIR/events.jsonl).
pub fn write_service_config(dir: &Path, setup: &Setup) {
    let record = dir.join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    std::fs::write(dir.join("mqtrigger.toml"), setup.toml(&record)).unwrap();
}

/// `serve --api ADDR` on DIR/mqtrigger.toml and DIR/state, its log appended
/// to DIR/serve.log.
pub fn serve_api(dir: &Path, addr: std::net::SocketAddr, more: &[&str]) -> KillOnDrop {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    KillOnDrop::new(
        std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(["serve", "--config"])
            .arg(dir.join("mqtrigger.toml"))
            .arg("--state")
            .arg(dir.join("state"))
            .args(["--api", &addr.to_string()])
            .args(more)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the mqtrigger binary runs"),
    )
}

pub async fn wait_listening(addr: std::net::SocketAddr) {
    wait_for(&format!("something to listen on {addr}"), || {
        std::net::TcpStream::connect(addr).is_ok()
    })
    .await;
}

/// `aws lambda ARGS --endpoint-url http://ADDR` signed by [`API_KEY_ID`]:
/// its standard output, trimmed.
pub fn aws_lambda(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let out = std::process::Command::new("aws")
        .args(["--endpoint-url", &format!("http://{addr}"), "lambda"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", API_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", API_SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the AWS CLI (scripts/test installs it)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The mapping's State, as `aws lambda get-event-source-mapping` reports it.
pub fn aws_cli_state(addr: std::net::SocketAddr, uuid: &str) -> String {
    aws_lambda(
        addr,
        &[
            "get-event-source-mapping",
            "--uuid",
            uuid,
            "--query",
            "State",
            "--output",
            "text",
        ],
    )
}

/// A second mapping on the test broker, beside the Setup's own.
pub fn beside(function: &str, queue: &str, batch_size: u32) -> mqtrigger::mapping::MappingSpec {
    mqtrigger::mapping::MappingSpec {
        function_name: function.into(),
        event_source_arn: BROKER_ARN.into(),
        queues: vec![queue.into()],
        batch_size: Some(batch_size),
        maximum_batching_window_in_seconds: Some(1),
        enabled: None,
        filter_criteria: None,
        source_access_configurations: vec![mqtrigger::mapping::SourceAccessConfiguration {
            kind: mqtrigger::mapping::SourceAccessType::BasicAuth,
            uri: SECRET_ARN.into(),
        }],
        scaling_config: None,
    }
}

/// A PostgreSQL database made for one test on the machine's server
/// (`MQTRIGGER_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432;
/// `scripts/brokers up` makes sure it runs), dropped after it.
pub struct TestDatabase {
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    fn server() -> String {
        std::env::var("MQTRIGGER_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
    }

    /// The cluster the outage test stops (`scripts/brokers postgres-outage`).
    pub fn outage_server() -> String {
        std::env::var("MQTRIGGER_TEST_POSTGRES_OUTAGE")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5433".into())
    }

    fn admin(server: &str, sql: String) {
        let url = format!("{server}/postgres");
        // The blocking client runs its own runtime: not on a tokio thread.
        std::thread::spawn(move || {
            postgres::Client::connect(&url, postgres::NoTls)
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL must run at {url} (scripts/brokers up): {e}")
                })
                .batch_execute(&sql)
        })
        .join()
        .unwrap()
        .unwrap();
    }

    pub fn new() -> TestDatabase {
        Self::on(&Self::server())
    }

    pub fn on(server: &str) -> TestDatabase {
        let name = format!("mqt_test_{}", uuid::Uuid::new_v4().simple());
        Self::admin(server, format!("CREATE DATABASE {name}"));
        TestDatabase {
            url: format!("{server}/{name}"),
            server: server.to_owned(),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::panic::catch_unwind(|| Self::admin(&self.server, sql));
    }
}

/// `mqtrigger mappings --endpoint URL ARGS`, with no AWS credentials of the
/// machine's (a loopback API takes any).
pub fn mappings_cli(endpoint: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args(["mappings", "--endpoint", endpoint])
        .args(args)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap()
}

/// `mappings create` of a mapping from `queue` on the test broker to the
/// recorder, as a user types it (and `more`): the created mapping's JSON.
pub fn create_through_cli(endpoint: &str, queue: &str, more: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--output",
        "json",
        "create",
        "--function-name",
        "recorder",
        "--event-source-arn",
        BROKER_ARN,
        "--queue",
        queue,
        "--secret",
        SECRET_ARN,
        "--virtual-host",
        "/",
    ];
    args.extend(more);
    serde_json::from_str(&stdout(&mappings_cli(endpoint, &args))).unwrap()
}

/// A command's standard output, once it succeeded.
pub fn stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a command that should end by itself (a refused start): its output,
/// or Err when it still ran after `limit` (it was killed then), so a start
/// that should have been refused fails the test instead of hanging it.
pub fn run_to_its_end(
    command: &mut std::process::Command,
    limit: Duration,
) -> Result<std::process::Output, String> {
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the command runs");
    let until = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return Err(format!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child.wait_with_output().unwrap())
}
