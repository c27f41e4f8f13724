//! The config a test runs with: one mapping on the test broker to the
//! recorder function ([`Setup`] and the TOML it writes), the broker's and
//! the secret's ARNs, the signed API's key, a second mapping beside it,
//! unique names for queues, and the Python the recorder runs on.

use super::{amqp_endpoint, stomp_endpoint};
use std::path::Path;

pub const BROKER_ARN: &str =
    "arn:aws:mq:us-east-1:000000000000:broker:test-rabbit:b-00000000-0000-0000-0000-000000000001";
pub const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:test-rabbit";

pub fn unique(name: &str) -> String {
    format!(
        "mqt-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
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
    /// More lines of the `[[brokers]]` entry (`admin_url = "…"`).
    pub broker_toml: String,
    /// More lines of `[engine]` (`backlog_interval_ms = 200`).
    pub engine_toml: String,
    /// More queues of the mapping, after `queue`.
    pub more_queues: Vec<String>,
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
            broker_toml: String::new(),
            engine_toml: String::new(),
            more_queues: Vec::new(),
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
{engine_extra}

[[brokers]]
name = "test-rabbit"
engine = "{engine}"
arn = "{BROKER_ARN}"
endpoints = {endpoints:?}
{ca_file}
{broker_extra}

[secrets]
"{SECRET_ARN}" = {{ username = "{user}", password = "{pass}" }}

[functions.recorder]
{function}
timeout = {timeout}

[[mappings]]
FunctionName = "recorder"
EventSourceArn = "{BROKER_ARN}"
Queues = {queues:?}
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
            engine_extra = self.engine_toml,
            broker_extra = self.broker_toml,
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
            queues = std::iter::once(&self.queue)
                .chain(&self.more_queues)
                .collect::<Vec<_>>(),
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

/// DIR/mqtrigger.toml from `setup` (its function records to DIR/events.jsonl).
pub fn write_service_config(dir: &Path, setup: &Setup) {
    let record = dir.join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    std::fs::write(dir.join("mqtrigger.toml"), setup.toml(&record)).unwrap();
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
        ..Default::default()
    }
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
