//! The config file: brokers, secrets, functions and mappings.
//!
//! Mapping fields keep Lambda's names (CreateEventSourceMapping), so anyone
//! who knows the Lambda API can read a mapping. Every mistake a user can make
//! here is reported with the file, the line and the field to fix.

use crate::invoke::FunctionConfig;
use crate::mapping::MappingSpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// `[api]`: Lambda's event-source-mapping REST API.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Where `serve` and `console` listen when `--api` is not given.
    pub listen: Option<std::net::SocketAddr>,
    /// The keys whose SigV4 signatures are accepted. Without keys the API
    /// serves loopback only, and does not check signatures.
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// The region requests must be signed for (their credential scope);
    /// any region when unset.
    pub region: Option<String>,
    /// Host headers accepted besides the API's own address (`ops-1`,
    /// `ops-1:9001`, each as the header carries it): the guard against DNS
    /// rebinding (`api::guard`). Without access_keys it always applies;
    /// with them, only when this is set.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Origins (`http://ops-ui:8080`) whose requests a keyless API accepts;
    /// a request from any other web page is refused (`api::guard`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// An `[api] access_keys` entry.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `[store]`: where mappings, dead letters and batch history are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `postgres://user@host:port/database`: a PostgreSQL store instead of
    /// the SQLite file in the state directory (`--store` overrides it).
    pub url: Option<String>,
    /// With several instances on one database: how long an instance may
    /// go unseen before the others take its mappings over (default 10).
    pub lease_seconds: Option<u64>,
}

impl StoreSettings {
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_seconds.unwrap_or(10).max(2))
    }
}

/// `[secrets_manager]`: where BASIC_AUTH secrets not in `[secrets]` are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsManagerSettings {
    /// Another Secrets Manager endpoint (LocalStack, a test server).
    pub endpoint_url: Option<String>,
    /// The region, when the secret's ARN and the environment do not say.
    pub region: Option<String>,
}

/// The whole config, validated.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub path: PathBuf,
    pub brokers: Vec<BrokerConfig>,
    pub secrets: BTreeMap<String, Secret>,
    pub functions: BTreeMap<String, FunctionConfig>,
    pub mappings: Vec<MappingSpec>,
    pub engine: EngineSettings,
    pub api: ApiSettings,
    pub secrets_manager: SecretsManagerSettings,
    pub store: StoreSettings,
    /// `[telemetry]`: where spans go (OTLP/HTTP), if anywhere.
    pub telemetry: crate::telemetry::TelemetrySettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerEngine {
    Rabbitmq,
    Activemq,
}

impl fmt::Display for BrokerEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rabbitmq => "RabbitMQ",
            Self::Activemq => "ActiveMQ",
        })
    }
}

/// `[[brokers]]`: a broker the mappings can name by ARN.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    pub name: String,
    pub engine: BrokerEngine,
    pub arn: String,
    /// Tried in order; the next one is used when one fails (Amazon MQ's
    /// active/standby pairs have two).
    pub endpoints: Vec<String>,
    /// A PEM file of CA certificates to trust for TLS endpoints, besides the
    /// system's (for brokers with a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// ActiveMQ only: its web console (`http://HOST:8161`), whose Jolokia
    /// API tells how many messages wait in a queue (the BACKLOG). STOMP
    /// cannot say; without it the backlog is unknown.
    #[serde(default)]
    pub admin_url: Option<url::Url>,
    /// The `[secrets]` entry (or Secrets Manager ARN) of a web console
    /// user; the mapping's own BASIC_AUTH secret when absent (on Amazon MQ
    /// and in ActiveMQ's default setup the broker's users are the console's).
    #[serde(default)]
    pub admin_secret: Option<String>,
}

/// A BASIC_AUTH secret: what AWS Secrets Manager would hold for Lambda.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub username: String,
    pub password: String,
}

impl Secret {
    /// A secret known by name only (what a console attached to a service
    /// is told of the service's secrets).
    pub fn unknown() -> Secret {
        Secret {
            username: String::new(),
            password: String::new(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `[engine]`: knobs that are not part of a mapping. The defaults are Lambda's;
/// tests shorten the back-off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// First retry delay after a function error, in milliseconds; doubles each time.
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// Longest wait between reconnect attempts to a broker that went away.
    pub reconnect_max_ms: u64,
    /// Lambda's maximumRedeliveries: how many times a failed message is
    /// delivered again before it is dead-lettered. 5 as Lambda's Amazon MQ
    /// guide long said (its docs now say 6 for ActiveMQ); 0 to 20.
    pub max_redeliveries: u32,
    /// How often the broker is asked how many messages wait in each
    /// running mapping's queue (the BACKLOG), in milliseconds; 0 never.
    pub backlog_interval_ms: u64,
    /// How many of each mapping's newest messages keep their history
    /// (arrivals, attempts, end; ids only); 0 keeps none.
    pub history_messages: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            retry_initial_ms: 1_000,
            retry_max_ms: 30_000,
            reconnect_max_ms: 30_000,
            max_redeliveries: crate::mapping::MAX_REDELIVERIES,
            backlog_interval_ms: 5_000,
            history_messages: 1_000,
        }
    }
}

impl EngineSettings {
    pub fn retry_initial(&self) -> Duration {
        Duration::from_millis(self.retry_initial_ms)
    }
    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.retry_max_ms)
    }
    pub fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }
}

/// A config file that could not be used: names the file, the line and what
/// to fix. It is made where the file's text is parsed and located
/// (`mqtrigger_parse::config_text`), so the fuzz target reaches it.
pub use mqtrigger_parse::config_text::ConfigError;

impl Config {
    pub fn broker(&self, arn: &str) -> Option<&BrokerConfig> {
        self.brokers.iter().find(|b| b.arn == arn)
    }
}

/// Secrets not in `[secrets]` with such an ARN are read from Secrets Manager.
pub fn is_secrets_manager_arn(uri: &str) -> bool {
    uri.starts_with("arn:") && uri.split(':').nth(2) == Some("secretsmanager")
}
