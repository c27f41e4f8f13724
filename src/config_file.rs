//! Reading the config file: its text parsed (`mqtrigger_parse::config_text`),
//! every part checked with the rules the API and the console use too
//! (`crate::validation`), and each error at its file and line. Apart from
//! `config.rs`, which holds only what a config is, so that the rules can
//! read a config without the reading of a file depending on them in turn.

use crate::config::{
    ApiSettings, BrokerConfig, BrokerEngine, Config, ConfigError, EngineSettings, Secret,
    SecretsManagerSettings, StoreSettings,
};
use crate::invoke::FunctionConfig;
use crate::mapping::MappingSpec;
use mqtrigger_parse::config_text::ConfigText;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

/// The file's layout, each broker, function and mapping with where it is.
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
    #[serde(default)]
    telemetry: crate::telemetry::TelemetrySettings,
}

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
            crate::validation::check_admin(b)
                .map_err(|m| file.error_at(span.clone(), format!("broker `{}`: {m}", b.name)))?;
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

        crate::validation::check_api(&raw.api).map_err(|(key, message)| {
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
            telemetry: raw.telemetry,
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
    use std::time::Duration;

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

        let e = error_of(&GOOD.replace("Queues = [\"orders\"]", "Queues = [\"a\", \"a\"]"));
        assert!(e.message.contains("Queues names a twice"), "{e}");

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
