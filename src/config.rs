//! The config file: brokers, secrets, functions and mappings.
//!
//! Mapping fields keep Lambda's names (CreateEventSourceMapping), so anyone
//! who knows the Lambda API can read a mapping. Every mistake a user can make
//! here is reported with the file, the line and the field to fix.

use crate::invoke::FunctionConfig;
use crate::mapping::MappingSpec;
use mqtrigger_parse::config_text::ConfigText;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    brokers: Vec<Spanned<BrokerConfig>>,
    #[serde(default)]
    secrets: BTreeMap<String, Secret>,
    #[serde(default)]
    functions: BTreeMap<String, Spanned<FunctionConfig>>,
    #[serde(default)]
    mappings: Vec<Spanned<MappingSpec>>,
    #[serde(default)]
    engine: EngineSettings,
    #[serde(default)]
    api: ApiSettings,
    #[serde(default)]
    secrets_manager: SecretsManagerSettings,
    #[serde(default)]
    store: StoreSettings,
}

/// `[api]`: Lambda's event-source-mapping REST API.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Where `serve` and `console` listen when `--api` is not given.
    pub listen: Option<std::net::SocketAddr>,
    /// The keys whose SigV4 signatures are accepted. Without keys the API
    /// serves loopback only, and does not check signatures.
    #[serde(default)]
    pub access_keys: Vec<crate::api::sigv4::AccessKey>,
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
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            retry_initial_ms: 1_000,
            retry_max_ms: 30_000,
            reconnect_max_ms: 30_000,
            max_redeliveries: crate::mapping::MAX_REDELIVERIES,
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
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file = ConfigText::new(path, text);
        let raw: RawConfig = file.deserialize()?;

        for (i, broker) in raw.brokers.iter().enumerate() {
            let span = Some(broker.span());
            let b = broker.get_ref();
            if raw.brokers[..i].iter().any(|o| o.get_ref().arn == b.arn) {
                return Err(file.error_at(
                    span,
                    format!(
                        "broker `{}`: another broker has the same arn `{}`",
                        b.name, b.arn
                    ),
                ));
            }
            if b.endpoints.is_empty() {
                return Err(file.error_at(
                    span,
                    format!(
                        "broker `{}`: `endpoints` is empty; give at least one URL",
                        b.name
                    ),
                ));
            }
            for url in &b.endpoints {
                check_endpoint(b.engine, url).map_err(|m| {
                    file.error_at(span.clone(), format!("broker `{}`: {m}", b.name))
                })?;
            }
        }
        for (name, function) in &raw.functions {
            function.get_ref().validate().map_err(|m| {
                file.error_in_table(
                    function.span().start,
                    first_word(&m),
                    format!("[functions.{name}]: {m}"),
                )
            })?;
        }

        check_api(&raw.api).map_err(|(key, message)| {
            file.error_in_named_table("api", key, format!("[api]: {message}"))
        })?;

        crate::validation::check_engine(&raw.engine)
            .map_err(|e| file.error_in_named_table("engine", e.key, format!("[engine]: {e}")))?;

        let mut config = Config {
            path: path.to_owned(),
            brokers: raw.brokers.into_iter().map(Spanned::into_inner).collect(),
            secrets: raw.secrets,
            functions: raw
                .functions
                .into_iter()
                .map(|(k, v)| (k, v.into_inner()))
                .collect(),
            mappings: Vec::new(),
            engine: raw.engine,
            api: raw.api,
            secrets_manager: raw.secrets_manager,
            store: raw.store,
        };
        for spanned in raw.mappings {
            let span = spanned.span();
            let spec = spanned.into_inner();
            let what = format!("mapping of `{}` to {:?}", spec.function_name, spec.queues);
            crate::validation::check_mapping(&spec, &config)
                .map_err(|e| file.error_in_table(span.start, e.field, format!("{what}: {e}")))?;
            // A duplicate is about the file, not the mapping: Control refuses
            // the same at run time with Lambda's ResourceConflictException.
            if config.mappings.iter().any(|m| m.conflicts_with(&spec)) {
                return Err(file.error_at(
                    Some(span),
                    format!(
                        "{what}: the same function is already mapped to this queue (Lambda allows one such mapping)"
                    ),
                ));
            }
            config.mappings.push(spec);
        }
        Ok(config)
    }

    pub fn broker(&self, arn: &str) -> Option<&BrokerConfig> {
        self.brokers.iter().find(|b| b.arn == arn)
    }
}

/// `[api]`'s lists and region: each entry must be something a request can
/// carry, so a typo is said at start rather than refusing every request.
/// The error is the key it is about, and what to fix.
fn check_api(api: &ApiSettings) -> Result<(), (&'static str, String)> {
    if let Some(region) = &api.region {
        let fits = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if region.is_empty() || !region.chars().all(fits) {
            return Err((
                "region",
                format!("region `{region}` is not an AWS region name (like `us-east-1`)"),
            ));
        }
    }
    for host in &api.allowed_hosts {
        if let Err(why) = crate::api::guard::check_allowed_host(host) {
            return Err(("allowed_hosts", format!("allowed_hosts `{host}`: {why}")));
        }
    }
    for origin in &api.allowed_origins {
        if let Err(why) = crate::api::guard::check_allowed_origin(origin) {
            return Err((
                "allowed_origins",
                format!("allowed_origins `{origin}`: {why}"),
            ));
        }
    }
    Ok(())
}

/// Secrets not in `[secrets]` with such an ARN are read from Secrets Manager.
pub fn is_secrets_manager_arn(uri: &str) -> bool {
    uri.starts_with("arn:") && uri.split(':').nth(2) == Some("secretsmanager")
}

/// The first word of a message that starts with the field it is about
/// (FunctionConfig's checks name their key first).
fn first_word(message: &str) -> &str {
    message
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default()
}

fn check_endpoint(engine: BrokerEngine, url: &str) -> Result<(), String> {
    let schemes: &[&str] = match engine {
        BrokerEngine::Rabbitmq => &["amqp://", "amqps://"],
        BrokerEngine::Activemq => &["stomp://", "stomp+ssl://"],
    };
    if !schemes.iter().any(|s| url.starts_with(s)) {
        return Err(format!(
            "endpoint `{url}` is not a {engine} URL; use {}",
            schemes
                .iter()
                .map(|s| format!("{s}host:port"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty()
        || host
            .rsplit_once('@')
            .map(|(_, h)| h)
            .unwrap_or(host)
            .is_empty()
    {
        return Err(format!("endpoint `{url}` has no host"));
    }
    if host.contains('@') {
        return Err(format!(
            "endpoint `{url}` carries credentials; put them in [secrets] and name the secret in BASIC_AUTH"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::SourceAccessType;

    const GOOD: &str = r#"
[[brokers]]
name = "local-rabbit"
engine = "rabbitmq"
arn = "arn:aws:mq:us-east-1:000000000000:broker:local-rabbit:b-1"
endpoints = ["amqp://127.0.0.1:5672"]

[secrets]
"arn:aws:secretsmanager:us-east-1:000000000000:secret:local-rabbit" = { username = "guest", password = "guest" }

[functions.echo]
command = ["python3", "echo.py"]
timeout = 30

[[mappings]]
FunctionName = "echo"
EventSourceArn = "arn:aws:mq:us-east-1:000000000000:broker:local-rabbit:b-1"
Queues = ["orders"]
BatchSize = 10
SourceAccessConfigurations = [
  { Type = "BASIC_AUTH", URI = "arn:aws:secretsmanager:us-east-1:000000000000:secret:local-rabbit" },
  { Type = "VIRTUAL_HOST", URI = "/" },
]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("t.toml"), text)
    }

    #[test]
    fn a_good_file_parses_with_lambda_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.mappings.len(), 1);
        let m = &c.mappings[0];
        assert_eq!(m.batch_size(), 10);
        assert_eq!(m.batching_window(), Duration::from_millis(500));
        assert_eq!(m.access(SourceAccessType::VirtualHost), Some("/"));
        assert_eq!(c.functions["echo"].timeout(), Duration::from_secs(30));
        let shown = format!("{:?}", c.secrets);
        assert!(
            shown.contains("<redacted>") && !shown.contains("password: \"guest\""),
            "{shown}"
        );
    }

    fn error_of(text: &str) -> ConfigError {
        parse(text).expect_err("this config must be refused")
    }

    #[test]
    fn mistakes_name_the_line_and_the_fix() {
        let e = error_of(&GOOD.replace("BatchSize = 10", "BatchSize = 20000"));
        assert_eq!(e.line, Some(19), "{e}");
        assert!(
            e.message.contains("BatchSize") && e.message.contains("10000"),
            "{e}"
        );

        let e = error_of(&GOOD.replace("BatchSize = 10", "BatchSize = \"ten\""));
        assert_eq!(e.line, Some(19), "{e}");
        assert!(
            e.message
                .starts_with(r#"BatchSize: invalid type: string "ten", expected u32"#),
            "{e}"
        );

        let e = error_of(&GOOD.replace("BatchSize = 10", "Batchsize = 10"));
        assert!(e.message.contains("unknown field `Batchsize`"), "{e}");
        assert_eq!(e.line, Some(19), "{e}");

        let e = error_of(&GOOD.replace("timeout = 30", "timeout = 900"));
        assert!(
            e.message.contains("[functions.echo]") && e.message.contains("840"),
            "{e}"
        );
        assert_eq!(e.line, Some(13), "{e}");

        let e = error_of(&GOOD.replace("FunctionName = \"echo\"", "FunctionName = \"nope\""));
        assert!(e.message.contains("[functions.nope]"), "{e}");

        let e = error_of(&GOOD.replace(
            "EventSourceArn = \"arn:aws:mq:us-east-1:000000000000:broker:local-rabbit:b-1\"",
            "EventSourceArn = \"arn:x\"",
        ));
        assert!(e.message.contains("names no broker"), "{e}");

        let e = error_of(&GOOD.replace("amqp://127.0.0.1:5672", "http://127.0.0.1:5672"));
        assert!(e.message.contains("amqp://host:port"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");

        let e = error_of(&GOOD.replace("Queues = [\"orders\"]", "Queues = [\"a\", \"b\"]"));
        assert!(e.message.contains("exactly one queue"), "{e}");

        let e = error_of(&GOOD.replace("{ Type = \"BASIC_AUTH\", URI = \"arn:aws:secretsmanager:us-east-1:000000000000:secret:local-rabbit\" },", ""));
        assert!(e.message.contains("BASIC_AUTH"), "{e}");

        let dup = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[mappings]]").unwrap()..]);
        let e = error_of(&dup);
        assert!(e.message.contains("already mapped"), "{e}");
        let second = dup.rfind("[[mappings]]").unwrap();
        assert_eq!(
            e.line,
            Some(ConfigText::new(Path::new("t.toml"), &dup).line_of(second)),
            "{e}"
        );

        let e = error_of(&GOOD.replace("\"rabbitmq\"", "\"activemq\""));
        assert!(e.message.contains("stomp://"), "{e}");

        // The line of the field the check names, not of the table.
        let e = error_of(&GOOD.replace(
            "{ Type = \"VIRTUAL_HOST\", URI = \"/\" },",
            "{ Type = \"VIRTUAL_HOST\", URI = \"/\" }, { Type = \"VIRTUAL_HOST\", URI = \"/b\" },",
        ));
        assert!(e.message.contains("at most one VIRTUAL_HOST"), "{e}");
        assert_eq!(e.line, Some(20), "{e}");
        let e = error_of(&GOOD.replace(
            "BatchSize = 10",
            "BatchSize = 10\nScalingConfig = { MaximumConcurrency = 0 }",
        ));
        assert!(
            e.message.contains("ScalingConfig.MaximumConcurrency 0"),
            "{e}"
        );
        assert_eq!(e.line, Some(20), "{e}");

        let e = error_of(&format!(
            "{GOOD}\n[engine]\nretry_initial_ms = 10\nmax_redeliveries = 21\n"
        ));
        assert!(
            e.message
                .starts_with("[engine]: max_redeliveries 21 is out of range: it must be 0 to 20"),
            "{e}"
        );
        assert_eq!(e.line, Some(GOOD.lines().count() + 4), "{e}");
        assert_eq!(parse(GOOD).unwrap().engine.max_redeliveries, 5);

        let e = error_of("[[brokers]\n");
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.to_string().starts_with("t.toml:1: "), "{e}");
    }

    #[test]
    fn the_apis_hosts_origins_and_region_are_checked_with_their_line() {
        let api = |body: &str| format!("{GOOD}\n[api]\nlisten = \"127.0.0.1:9001\"\n{body}\n");
        let good = api(
            "region = \"eu-west-1\"\nallowed_hosts = [\"ops-1\", \"ops-1:9001\"]\nallowed_origins = [\"http://ops-ui:8080\"]",
        );
        let c = parse(&good).unwrap();
        assert_eq!(c.api.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.api.allowed_hosts, ["ops-1", "ops-1:9001"]);
        assert_eq!(c.api.allowed_origins, ["http://ops-ui:8080"]);
        let key_line = GOOD.lines().count() + 4;
        for (body, names) in [
            (
                "allowed_origins = [\"http://ops-ui:8080/\"]",
                "allowed_origins `http://ops-ui:8080/`",
            ),
            ("allowed_origins = [\"null\"]", "allowed_origins `null`"),
            (
                "allowed_hosts = [\"http://ops-1\"]",
                "allowed_hosts `http://ops-1`",
            ),
            ("region = \"Ireland\"", "region `Ireland`"),
        ] {
            let e = error_of(&api(body));
            assert!(e.message.starts_with(&format!("[api]: {names}")), "{e}");
            assert_eq!(e.line, Some(key_line), "{e}");
        }
    }

    /// The config fuzz target reaches the parsing and the locating of errors
    /// only (`mqtrigger_parse::fuzzing::config_parser`); its seeds also go
    /// through the whole of `Config::parse` here, checks included.
    #[test]
    fn the_fuzz_seeds_parse_or_name_a_line_of_their_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/config_parser");
        for seed in std::fs::read_dir(&dir).unwrap() {
            let seed = seed.unwrap().path();
            let Ok(text) = std::fs::read_to_string(&seed) else {
                continue;
            };
            if let Err(e) = Config::parse(&seed, &text) {
                assert!(
                    e.to_string().starts_with(&seed.display().to_string()),
                    "{e}"
                );
                let lines = text.matches('\n').count() + 1;
                assert!(e.line.is_none_or(|l| (1..=lines).contains(&l)), "{e}");
            }
        }
    }
}
