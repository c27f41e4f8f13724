//! One table of mappings through the three front doors: the config file,
//! the REST API and the console's add-mapping form. Each door refuses a bad
//! mapping with the same words (crate::validation), and accepts the good one.
//!
//! The API runs in-process on a Control with no mappings: a refused create
//! never reaches a broker, and the accepted one is created disabled.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use mqtrigger::config::Config;
use mqtrigger::console::popup::form::{LABELS, MappingForm};
use mqtrigger::console::view::Choices;
use mqtrigger::engine::Control;
use mqtrigger::mapping::{MappingSpec, ScalingConfig, SourceAccessConfiguration, SourceAccessType};
use mqtrigger::store::Store;
use serde_json::json;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RABBIT_ARN: &str = "arn:aws:mq:us-east-1:000000000000:broker:rabbit:b-1";
const ACTIVE_ARN: &str = "arn:aws:mq:us-east-1:000000000000:broker:active:b-2";
const LOCAL_SECRET: &str = "local-secret";
const SECRETS_MANAGER_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:broker-AbCdEf";

const BASE_TOML: &str = r#"
[[brokers]]
name = "rabbit"
engine = "rabbitmq"
arn = "arn:aws:mq:us-east-1:000000000000:broker:rabbit:b-1"
endpoints = ["amqp://127.0.0.1:5672"]

[[brokers]]
name = "active"
engine = "activemq"
arn = "arn:aws:mq:us-east-1:000000000000:broker:active:b-2"
endpoints = ["stomp://127.0.0.1:61613"]

[secrets]
local-secret = { username = "guest", password = "guest" }

[functions.echo]
command = ["true"]
"#;

fn access(kind: SourceAccessType, uri: &str) -> SourceAccessConfiguration {
    SourceAccessConfiguration {
        kind,
        uri: uri.into(),
    }
}

/// A mapping every door accepts.
fn good() -> MappingSpec {
    MappingSpec {
        function_name: "echo".into(),
        event_source_arn: RABBIT_ARN.into(),
        queues: vec!["orders".into()],
        batch_size: Some(100),
        maximum_batching_window_in_seconds: None,
        // Disabled, so the accepted create does not start a consumer.
        enabled: Some(false),
        filter_criteria: None,
        source_access_configurations: vec![access(SourceAccessType::BasicAuth, LOCAL_SECRET)],
        scaling_config: None,
        ..Default::default()
    }
}

struct Row {
    what: &'static str,
    spec: MappingSpec,
    /// Lambda's field the refusal names; None for a mapping that is accepted.
    field: Option<&'static str>,
    /// The words every door must say.
    message: &'static str,
    /// Lambda's error type on the API.
    api_error: &'static str,
}

fn with(change: impl FnOnce(&mut MappingSpec)) -> MappingSpec {
    let mut spec = good();
    change(&mut spec);
    spec
}

fn table() -> Vec<Row> {
    const INVALID: &str = "InvalidParameterValueException";
    let refused = |what, spec, field, message| Row {
        what,
        spec,
        field: Some(field),
        message,
        api_error: INVALID,
    };
    vec![
        refused(
            "a VIRTUAL_HOST on an ActiveMQ mapping",
            with(|s| {
                s.event_source_arn = ACTIVE_ARN.into();
                s.source_access_configurations
                    .push(access(SourceAccessType::VirtualHost, "/"));
            }),
            "SourceAccessConfigurations",
            "VIRTUAL_HOST is for RabbitMQ brokers only; remove it from the SourceAccessConfigurations of this ActiveMQ mapping",
        ),
        refused(
            "a BASIC_AUTH secret in neither [secrets] nor Secrets Manager",
            with(|s| s.source_access_configurations[0].uri = "nowhere-secret".into()),
            "SourceAccessConfigurations",
            "BASIC_AUTH secret `nowhere-secret` is not in [secrets]; add it there, or give the ARN of an AWS Secrets Manager secret",
        ),
        refused(
            "BatchSize 0",
            with(|s| s.batch_size = Some(0)),
            "BatchSize",
            "BatchSize 0 is out of range: it must be 1 to 10000",
        ),
        refused(
            "BatchSize 10001",
            with(|s| s.batch_size = Some(10_001)),
            "BatchSize",
            "BatchSize 10001 is out of range: it must be 1 to 10000",
        ),
        refused(
            "a window of 301 s",
            with(|s| s.maximum_batching_window_in_seconds = Some(301)),
            "MaximumBatchingWindowInSeconds",
            "MaximumBatchingWindowInSeconds 301 is out of range: it must be 0 to 300",
        ),
        refused(
            "MaximumConcurrency 0",
            with(|s| {
                s.scaling_config = Some(ScalingConfig {
                    maximum_concurrency: Some(0),
                })
            }),
            "ScalingConfig",
            "ScalingConfig.MaximumConcurrency 0 is out of range: it must be 1 to 1000",
        ),
        refused(
            "one queue twice",
            with(|s| s.queues = vec!["a".into(), "a".into()]),
            "Queues",
            "Queues names a twice",
        ),
        refused(
            "eleven queues",
            with(|s| s.queues = (0..11).map(|i| format!("q{i}")).collect()),
            "Queues",
            "Queues must hold 1 to 10 queue names (it holds 11); Lambda takes one, mqtrigger up to 10",
        ),
        refused(
            "an EventSourceArn of no broker",
            with(|s| {
                s.event_source_arn = "arn:aws:mq:us-east-1:000000000000:broker:nope:b-0".into()
            }),
            "EventSourceArn",
            "EventSourceArn `arn:aws:mq:us-east-1:000000000000:broker:nope:b-0` names no broker; add a [[brokers]] entry with this arn",
        ),
        refused(
            "a filter pattern whose value is not in a list",
            with(|s| {
                s.filter_criteria = Some(mqtrigger::mapping::FilterCriteria::of_patterns([
                    r#"{"data":{"kind":"order"}}"#,
                ]))
            }),
            "FilterCriteria",
            "FilterCriteria: InvalidParameterValueException: Invalid filter pattern definition: `\"order\"` must be inside a list, as in [\"order\"]",
        ),
        refused(
            "no BASIC_AUTH",
            with(|s| {
                s.source_access_configurations = vec![access(SourceAccessType::VirtualHost, "/")]
            }),
            "SourceAccessConfigurations",
            "SourceAccessConfigurations needs exactly one BASIC_AUTH entry (the secret with the broker's username and password)",
        ),
        Row {
            what: "an unknown FunctionName",
            spec: with(|s| s.function_name = "nowhere".into()),
            field: Some("FunctionName"),
            message: "Function not found: nowhere. mqtrigger invokes the functions of the config file; add a [functions.nowhere] section",
            api_error: "ResourceNotFoundException",
        },
        Row {
            what: "a Secrets Manager ARN as BASIC_AUTH",
            spec: with(|s| s.source_access_configurations[0].uri = SECRETS_MANAGER_ARN.into()),
            field: None,
            message: "",
            api_error: "",
        },
    ]
}

fn base_config() -> Config {
    Config::parse(Path::new("base.toml"), BASE_TOML).expect("the base config is valid")
}

/// The mapping as a `[[mappings]]` entry, the way toml writes it.
fn mapping_toml(spec: &MappingSpec) -> String {
    #[derive(serde::Serialize)]
    struct File<'a> {
        mappings: [&'a MappingSpec; 1],
    }
    toml::to_string(&File { mappings: [spec] }).expect("a mapping serializes to TOML")
}

/// The line a user would look at for `field`: where its key (or its
/// sub-table) is written in the mapping, else the `[[mappings]]` line.
fn expected_line(text: &str, field: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let entry = lines
        .iter()
        .position(|l| l.trim() == "[[mappings]]")
        .expect("the file has a mapping");
    lines[entry..]
        .iter()
        .position(|l| {
            let l = l.trim();
            let header = l.trim_matches(|c| c == '[' || c == ']');
            l.starts_with(&format!("{field} ="))
                || (l.starts_with('[')
                    && (header == format!("mappings.{field}")
                        || header.starts_with(&format!("mappings.{field}."))))
        })
        .map_or(entry, |i| entry + i)
        + 1
}

/// (a) The config file: written to disk and loaded as `serve` loads it.
fn file_door(row: &Row) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mqtrigger.toml");
    let text = format!("{BASE_TOML}\n{}", mapping_toml(&row.spec));
    std::fs::write(&path, &text).unwrap();
    let loaded = Config::load(&path);
    let Some(field) = row.field else {
        let config = loaded.unwrap_or_else(|e| panic!("{}: the file refused it: {e}", row.what));
        assert_eq!(
            config.mappings,
            std::slice::from_ref(&row.spec),
            "{}",
            row.what
        );
        return;
    };
    let e = loaded.expect_err(row.what);
    assert!(
        e.message.ends_with(&format!(": {}", row.message)),
        "{}: the file says\n  {}\nnot\n  {}",
        row.what,
        e.message,
        row.message
    );
    assert!(
        e.message.starts_with("mapping of `"),
        "{}: {}",
        row.what,
        e.message
    );
    let line = expected_line(&text, field);
    assert_eq!(e.line, Some(line), "{}: {e}\n{text}", row.what);
    assert!(
        e.to_string()
            .starts_with(&format!("{}:{line}: ", path.display())),
        "{e}"
    );
}

struct Answer {
    status: u16,
    error_type: Option<String>,
    body: serde_json::Value,
}

/// One plain HTTP/1.1 request, as any client sends it.
async fn post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let error_type = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-amzn-ErrorType")
            .then(|| value.trim().to_owned())
    });
    Answer {
        status,
        error_type,
        body: serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
    }
}

struct Api {
    addr: std::net::SocketAddr,
    control: Control,
    _state: tempfile::TempDir,
    _stop: tokio_util::sync::DropGuard,
}

async fn start_api() -> Api {
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("state")).unwrap();
    let control = Control::start(base_config(), store).await.unwrap();
    let listener = mqtrigger::api::bind("127.0.0.1:0".parse().unwrap(), &[])
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mqtrigger::api::serve(
        control.clone(),
        listener,
        stop.clone(),
    ));
    Api {
        addr,
        control,
        _state: state,
        _stop: stop.drop_guard(),
    }
}

const CREATE: &str = "/2015-03-31/event-source-mappings/";

/// (b) The API: CreateEventSourceMapping with the mapping as its body.
async fn api_door(api: &Api, row: &Row) {
    let body = serde_json::to_vec(&row.spec).unwrap();
    let answer = post(api.addr, CREATE, &body).await;
    if row.field.is_none() {
        assert_eq!(answer.status, 202, "{}: {}", row.what, answer.body);
        assert_eq!(answer.body["State"], "Creating", "{}", row.what);
        return;
    }
    let status = if row.api_error == "ResourceNotFoundException" {
        404
    } else {
        400
    };
    assert_eq!(answer.status, status, "{}: {}", row.what, answer.body);
    assert_eq!(
        answer.error_type.as_deref(),
        Some(row.api_error),
        "{}",
        row.what
    );
    assert_eq!(answer.body["message"], row.message, "{}", row.what);
}

/// The form's text for the mapping, when the form can express it (one
/// queue, at most one of each access type, no ScalingConfig).
fn form_values(spec: &MappingSpec) -> Option<[String; 8]> {
    let only = |kind| {
        let uris: Vec<&SourceAccessConfiguration> = spec
            .source_access_configurations
            .iter()
            .filter(|c| c.kind == kind)
            .collect();
        match uris.as_slice() {
            [] => Some(String::new()),
            [one] => Some(one.uri.clone()),
            _ => None,
        }
    };
    if spec.queues.len() != 1 || spec.scaling_config.is_some() {
        return None;
    }
    let patterns: Vec<&str> = spec
        .filter_criteria
        .iter()
        .flat_map(|c| c.patterns())
        .collect();
    Some([
        spec.event_source_arn.clone(),
        spec.queues[0].clone(),
        spec.function_name.clone(),
        spec.batch_size.map(|b| b.to_string()).unwrap_or_default(),
        spec.maximum_batching_window_in_seconds
            .map(|w| w.to_string())
            .unwrap_or_default(),
        only(SourceAccessType::BasicAuth)?,
        only(SourceAccessType::VirtualHost)?,
        match patterns.as_slice() {
            [] => String::new(),
            [one] => (*one).to_owned(),
            many => format!("[{}]", many.join(",")),
        },
    ])
}

/// Types `text` into field `i` of the form, over what it held.
fn fill(form: &mut MappingForm, i: usize, text: &str) {
    form.focused = i;
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    form.input(key(KeyCode::End));
    for _ in 0..form.value(i).chars().count() + 1 {
        form.input(key(KeyCode::Backspace));
    }
    for c in text.chars() {
        form.input(key(KeyCode::Char(c)));
    }
    assert_eq!(form.value(i), text.trim(), "typed into {}", LABELS[i]);
}

/// (c) The console's form: each field typed in, then its check.
fn form_door(row: &Row) -> bool {
    let Some(values) = form_values(&row.spec) else {
        return false;
    };
    let mut form = MappingForm::new(Choices::from_config(&base_config()));
    for (i, value) in values.iter().enumerate() {
        fill(&mut form, i, value);
    }
    match row.field {
        None => {
            let spec = form
                .spec()
                .unwrap_or_else(|e| panic!("{}: the form refused it: {e}", row.what));
            assert_eq!(
                spec,
                MappingSpec {
                    enabled: Some(true),
                    ..row.spec.clone()
                },
                "{}",
                row.what
            );
        }
        Some(_) => {
            assert_eq!(form.spec(), Err(row.message.to_owned()), "{}", row.what);
            let shown: Vec<&String> = form.errors.iter().flatten().collect();
            assert_eq!(shown, [row.message], "{}: the field errors", row.what);
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_door_refuses_a_bad_mapping_with_the_same_words() {
    let api = start_api().await;
    let mut through_the_form = 0;
    for row in table() {
        file_door(&row);
        api_door(&api, &row).await;
        if form_door(&row) {
            through_the_form += 1;
        }
    }
    // A queue twice, eleven queues and ScalingConfig have no field in the form.
    assert_eq!(through_the_form, table().len() - 3);
    assert_eq!(
        api.control.list().unwrap().len(),
        1,
        "only the good mapping was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_says_what_a_body_of_the_wrong_shape_should_be() {
    let api = start_api().await;
    let answer = post(api.addr, CREATE, b"[1,2,3]").await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.error_type.as_deref(),
        Some("InvalidParameterValueException")
    );
    assert_eq!(
        answer.body["message"],
        "The request body must be a JSON object of CreateEventSourceMapping's fields (FunctionName, EventSourceArn, Queues, SourceAccessConfigurations, …); it is an array"
    );
    let mut spec = serde_json::to_value(good()).unwrap();
    spec["BatchSize"] = json!("ten");
    let answer = post(api.addr, CREATE, spec.to_string().as_bytes()).await;
    assert_eq!(answer.status, 400);
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.starts_with(r#"BatchSize: invalid type: string "ten", expected u32"#),
        "{message}"
    );
}
