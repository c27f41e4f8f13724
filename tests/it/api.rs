//! Lambda's event-source-mapping API, driven with aws-sdk-lambda as any
//! SDK user would, against a real engine on the real RabbitMQ.

use crate::common::*;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{SourceAccessConfiguration, SourceAccessType};
use std::time::{Duration, SystemTime};

const KEY_ID: &str = "AKIDMQTRIGGERTEST";
const KEY_SECRET: &str = "api-secret-never-printed-7f3a";

struct Api {
    running: Running,
    url: String,
    _stop: tokio_util::sync::DropGuard,
}

async fn start_api(queue: &str) -> Api {
    let mut setup = Setup::new(queue);
    setup.extra_toml =
        format!("[api]\naccess_keys = [{{ id = \"{KEY_ID}\", secret = \"{KEY_SECRET}\" }}]\n");
    let running = Running::start(&setup).await;
    let listener = mqtrigger::api::bind("127.0.0.1:0".parse().unwrap(), &[])
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mqtrigger::api::serve(
        running.control.clone(),
        listener,
        stop.clone(),
    ));
    Api {
        running,
        url,
        _stop: stop.drop_guard(),
    }
}

fn lambda(url: &str, id: &str, secret: &str, clock: Option<SystemTime>) -> aws_sdk_lambda::Client {
    let mut config = aws_sdk_lambda::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(id, secret, None, None, "test"));
    if let Some(t) = clock {
        config = config.time_source(aws_smithy_async::time::StaticTimeSource::new(t));
    }
    aws_sdk_lambda::Client::from_conf(config.build())
}

fn access(kind: SourceAccessType, uri: &str) -> SourceAccessConfiguration {
    SourceAccessConfiguration::builder()
        .r#type(kind)
        .uri(uri)
        .build()
}

async fn state_of(client: &aws_sdk_lambda::Client, uuid: &str) -> String {
    let m = client.get_event_source_mapping().uuid(uuid).send().await;
    m.unwrap().state().unwrap_or_default().to_owned()
}

async fn settles(client: &aws_sdk_lambda::Client, uuid: &str, want: &str) {
    let limit = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = state_of(client, uuid).await;
        if state == want {
            return;
        }
        assert!(
            std::time::Instant::now() < limit,
            "mapping {uuid} stayed {state}, never {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_manages_mappings_as_on_lambda() {
    let config_queue = unique("api-config");
    let queue = unique("api-sdk");
    let broker = Broker::connect().await;
    broker.declare(&config_queue, Default::default()).await;
    broker.declare(&queue, Default::default()).await;
    let api = start_api(&config_queue).await;
    let client = lambda(&api.url, KEY_ID, KEY_SECRET, None);

    // As in the Lambda guide: a queue, the vhost and the broker's secret.
    let created = client
        .create_event_source_mapping()
        .function_name("recorder")
        .event_source_arn(BROKER_ARN)
        .queues(&queue)
        .source_access_configurations(access(SourceAccessType::VirtualHost, "/"))
        .source_access_configurations(access(SourceAccessType::BasicAuth, SECRET_ARN))
        .send()
        .await
        .expect("create");
    assert_eq!(created.state(), Some("Creating"));
    assert_eq!(created.queues(), std::slice::from_ref(&queue));
    assert_eq!(created.batch_size(), Some(100));
    assert_eq!(created.event_source_arn(), Some(BROKER_ARN));
    assert!(
        created
            .function_arn()
            .unwrap()
            .ends_with(":function:recorder")
    );
    assert!(created.last_modified().unwrap().secs() > 1_700_000_000);
    let uuid = created.uuid().unwrap().to_owned();
    settles(&client, &uuid, "Enabled").await;

    // It consumes: a message published now reaches the function.
    broker
        .publish(&queue, b"through the API", Default::default())
        .await;
    wait_for("the API mapping's message to reach the function", || {
        api.running
            .events()
            .iter()
            .any(|e| messages(e).iter().any(|(b, _)| b == b"through the API"))
    })
    .await;

    let updated = client
        .update_event_source_mapping()
        .uuid(&uuid)
        .batch_size(2)
        .send()
        .await
        .expect("update");
    assert_eq!(updated.state(), Some("Updating"));
    assert_eq!(updated.batch_size(), Some(2));
    settles(&client, &uuid, "Enabled").await;
    let got = client
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .unwrap();
    assert_eq!(got.batch_size(), Some(2));
    assert_eq!(got.last_processing_result(), Some("OK"));

    // Disable and enable, as update-event-source-mapping --no-enabled/--enabled.
    client
        .update_event_source_mapping()
        .uuid(&uuid)
        .enabled(false)
        .send()
        .await
        .unwrap();
    settles(&client, &uuid, "Disabled").await;
    client
        .update_event_source_mapping()
        .uuid(&uuid)
        .enabled(true)
        .send()
        .await
        .unwrap();
    settles(&client, &uuid, "Enabled").await;

    // The config file's mapping and this one, listed one per page.
    let mut pages = client
        .list_event_source_mappings()
        .max_items(1)
        .into_paginator()
        .send();
    let mut seen = Vec::new();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        page_count += 1;
        assert!(page.event_source_mappings().len() <= 1);
        seen.extend(
            page.event_source_mappings()
                .iter()
                .map(|m| m.uuid().unwrap().to_owned()),
        );
    }
    assert_eq!(seen.len(), 2, "both mappings, once each: {seen:?}");
    assert!(seen.contains(&uuid));
    assert!(page_count >= 2);
    let of_queue = client
        .list_event_source_mappings()
        .function_name("arn:aws:lambda:us-east-1:000000000000:function:recorder")
        .send()
        .await
        .unwrap();
    assert_eq!(of_queue.event_source_mappings().len(), 2);

    let deleted = client
        .delete_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.state(), Some("Deleting"));
    wait_for("the mapping to be gone", || {
        api.running
            .control
            .list()
            .unwrap()
            .iter()
            .all(|m| m.uuid.to_string() != uuid)
    })
    .await;
    let gone = client
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
    assert!(gone.into_service_error().is_resource_not_found_exception());
    broker.delete(&queue).await;
    broker.delete(&config_queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_lambdas_typed_errors() {
    let queue = unique("api-errors");
    let api = start_api(&queue).await;
    let client = lambda(&api.url, KEY_ID, KEY_SECRET, None);
    let create_on = |q: &str| {
        client
            .create_event_source_mapping()
            .function_name("recorder")
            .event_source_arn(BROKER_ARN)
            .queues(q)
            .source_access_configurations(access(SourceAccessType::BasicAuth, SECRET_ARN))
    };
    let create = || create_on(&queue);

    // 409: the config file already maps recorder to this queue.
    let conflict = create().send().await.unwrap_err().into_service_error();
    assert!(conflict.is_resource_conflict_exception(), "{conflict:?}");
    let existing = api.running.mapping().uuid.to_string();
    assert!(conflict.message().unwrap().contains(&existing));

    // 400: out of range, named.
    let invalid = create_on("another")
        .batch_size(20_000)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        invalid.is_invalid_parameter_value_exception(),
        "{invalid:?}"
    );
    assert!(invalid.message().unwrap().contains("BatchSize 20000"));
    let bad_broker = create()
        .event_source_arn("arn:aws:mq:us-east-1:000000000000:broker:nope:b-0")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(bad_broker.is_invalid_parameter_value_exception());
    assert!(bad_broker.message().unwrap().contains("EventSourceArn"));
    let uuid = existing.clone();
    let bad_update = client
        .update_event_source_mapping()
        .uuid(&uuid)
        .batch_size(0)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(bad_update.is_invalid_parameter_value_exception());
    assert_eq!(api.running.mapping().spec.batch_size(), 10, "unchanged");

    // 404: no such mapping, no such function.
    let missing = client
        .get_event_source_mapping()
        .uuid("2a4d9d52-0000-4000-8000-000000000000")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception());
    let no_function = create()
        .function_name("nowhere")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(no_function.is_resource_not_found_exception());
    assert!(
        no_function
            .message()
            .unwrap()
            .contains("[functions.nowhere]")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_signature_are_refused() {
    let queue = unique("api-sig");
    let api = start_api(&queue).await;
    let list = |client: aws_sdk_lambda::Client| async move {
        client.list_event_source_mappings().send().await
    };

    let good = list(lambda(&api.url, KEY_ID, KEY_SECRET, None)).await;
    assert_eq!(good.unwrap().event_source_mappings().len(), 1);

    let refused =
        |e: aws_sdk_lambda::error::SdkError<_, aws_sdk_lambda::config::http::HttpResponse>| {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let code = e.code().map(str::to_owned);
            (status, code)
        };
    let wrong = list(lambda(&api.url, KEY_ID, "not-the-secret", None)).await;
    assert_eq!(
        refused(wrong.unwrap_err()),
        (Some(403), Some("InvalidSignatureException".into()))
    );
    let unknown = list(lambda(&api.url, "AKIDNOBODY", KEY_SECRET, None)).await;
    assert_eq!(
        refused(unknown.unwrap_err()),
        (Some(403), Some("UnrecognizedClientException".into()))
    );
    let ten_minutes_ago = SystemTime::now() - Duration::from_secs(600);
    let expired = list(lambda(&api.url, KEY_ID, KEY_SECRET, Some(ten_minutes_ago))).await;
    let (status, code) = refused(expired.unwrap_err());
    assert_eq!(status, Some(403));
    assert_eq!(code.as_deref(), Some("InvalidSignatureException"));

    // No signature at all: a plain HTTP request.
    let (status, body) = http_get(&api.url, "/2015-03-31/event-source-mappings/").await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains(KEY_SECRET));
    // The mapping is untouched by any of them.
    assert_eq!(api.running.control.list().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readonly_engine_refuses_changes_through_the_api() {
    let queue = unique("api-readonly");
    let api = start_api(&queue).await;
    api.running.control.make_readonly();
    let client = lambda(&api.url, KEY_ID, KEY_SECRET, None);
    let uuid = api.running.mapping().uuid.to_string();
    let listed = client.list_event_source_mappings().send().await.unwrap();
    assert_eq!(listed.event_source_mappings().len(), 1, "reading is fine");
    let refused = client
        .update_event_source_mapping()
        .uuid(&uuid)
        .batch_size(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("AccessDeniedException"));
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );
    assert_eq!(api.running.mapping().spec.batch_size(), 10);
}

#[tokio::test]
async fn without_keys_the_api_will_not_listen_beyond_loopback() {
    let err = mqtrigger::api::bind("0.0.0.0:0".parse().unwrap(), &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("access_keys"), "{err}");
}

/// A bare HTTP/1.1 GET: (status, body).
pub async fn http_get(url: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The real AWS CLI (`pip install awscli`; scripts/test installs it).
fn aws(url: &str, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = std::process::Command::new("aws")
        .args(["lambda", "--endpoint-url", url, "--output", "json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_PAGER", "")
        .output()
        .expect("the AWS CLI is installed (pip install awscli)");
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(serde_json::from_str(text.trim()).unwrap_or(serde_json::Value::Null))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

async fn aws_async(url: String, args: Vec<String>) -> Result<serde_json::Value, String> {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        aws(&url, &args)
    })
    .await
    .unwrap()
}

macro_rules! aws {
    ($url:expr, $($arg:expr),+ $(,)?) => {
        aws_async($url.to_owned(), vec![$($arg.to_string()),+]).await
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_manages_mappings_as_in_the_lambda_guide() {
    let config_queue = unique("cli-config");
    let queue = unique("cli-guide");
    let api = start_api(&config_queue).await;
    let url = api.url.clone();

    let created = aws!(
        url,
        "create-event-source-mapping",
        "--function-name",
        "recorder",
        "--event-source-arn",
        BROKER_ARN,
        "--queues",
        queue,
        "--source-access-configurations",
        "Type=VIRTUAL_HOST,URI=/",
        format!("Type=BASIC_AUTH,URI={SECRET_ARN}"),
    )
    .expect("create");
    assert_eq!(created["State"], "Creating");
    assert_eq!(created["Queues"][0], queue.as_str());
    let uuid = created["UUID"].as_str().unwrap().to_owned();

    let updated = aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--batch-size",
        2
    )
    .unwrap();
    assert_eq!(updated["State"], "Updating");
    assert_eq!(updated["BatchSize"], 2);
    let got = aws!(url, "get-event-source-mapping", "--uuid", uuid).unwrap();
    assert_eq!(got["BatchSize"], 2);
    assert_eq!(got["UUID"], uuid.as_str());

    // --page-size 1 makes the CLI follow NextMarker page by page.
    let listed = aws!(url, "list-event-source-mappings", "--page-size", 1).unwrap();
    let uuids: Vec<&str> = listed["EventSourceMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["UUID"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), 2, "{listed}");
    assert!(uuids.contains(&uuid.as_str()));

    aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--no-enabled"
    )
    .unwrap();
    let limit = std::time::Instant::now() + Duration::from_secs(60);
    while aws!(url, "get-event-source-mapping", "--uuid", uuid).unwrap()["State"] != "Disabled" {
        assert!(std::time::Instant::now() < limit, "never Disabled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--enabled"
    )
    .unwrap();

    let conflict = aws!(
        url,
        "create-event-source-mapping",
        "--function-name",
        "recorder",
        "--event-source-arn",
        BROKER_ARN,
        "--queues",
        queue,
        "--source-access-configurations",
        format!("Type=BASIC_AUTH,URI={SECRET_ARN}"),
    )
    .unwrap_err();
    assert!(conflict.contains("ResourceConflictException"), "{conflict}");
    let invalid = aws!(
        url,
        "create-event-source-mapping",
        "--function-name",
        "recorder",
        "--event-source-arn",
        "arn:aws:mq:us-east-1:000000000000:broker:nope:b-0",
        "--queues",
        "elsewhere",
        "--source-access-configurations",
        format!("Type=BASIC_AUTH,URI={SECRET_ARN}"),
    )
    .unwrap_err();
    assert!(
        invalid.contains("InvalidParameterValueException"),
        "{invalid}"
    );

    let deleted = aws!(url, "delete-event-source-mapping", "--uuid", uuid).unwrap();
    assert_eq!(deleted["State"], "Deleting");
    wait_for("the mapping to be gone", || {
        api.running.control.list().unwrap().len() == 1
    })
    .await;
    let missing = aws!(url, "get-event-source-mapping", "--uuid", uuid).unwrap_err();
    assert!(missing.contains("ResourceNotFoundException"), "{missing}");
}

// ---------------------------------------------------------------------------
// A keyless `serve --api` on loopback, against the web pages of a browser on
// the same machine (`api::guard`), and the clients it must still serve.

/// One answer of [`raw`]: the status, `x-amzn-ErrorType`, and the body.
#[derive(Debug)]
struct Answer {
    status: u16,
    kind: String,
    body: String,
}

/// An HTTP/1.1 request with exactly these headers (a `Host` of `addr`
/// unless one is given), as a browser or a hostile page would send it.
async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let kind = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-amzn-errortype")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    Answer {
        status,
        kind,
        body: body.to_owned(),
    }
}

/// A 403 `AccessDeniedException` whose message names `rule`.
fn refused_by(answer: &Answer, rule: &str) {
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(answer.kind, "AccessDeniedException", "{answer:?}");
    let message = serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(&format!("refused by the API's {rule} rule: ")),
        "{message}"
    );
}

/// A keyless `serve --api` on loopback (the README's default) whose
/// function writes each event it gets to DIR/touched: the directory, its
/// address, the mapping's UUID and the process.
struct Keyless {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    queue: String,
    uuid: String,
    _service: KillOnDrop,
}

impl Keyless {
    async fn start(name: &str, api_toml: &str) -> Keyless {
        let queue = unique(name);
        Broker::connect()
            .await
            .declare(&queue, Default::default())
            .await;
        let dir = tempfile::tempdir().unwrap();
        let touched = dir.path().join("touched");
        let mut setup = Setup::new(&queue);
        setup.function_command = Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "cat > '{}'; echo '{{\"replayed\": true}}'",
                touched.display()
            ),
        ]);
        setup.extra_toml = api_toml.to_owned();
        write_service_config(dir.path(), &setup);
        let addr = free_port();
        let service = serve_api(dir.path(), addr, &[]);
        wait_listening(addr).await;
        let listed = raw(addr, "GET", "/2015-03-31/event-source-mappings/", &[], "").await;
        assert_eq!(listed.status, 200, "{listed:?}");
        let listed: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
        let uuid = listed["EventSourceMappings"][0]["UUID"]
            .as_str()
            .unwrap()
            .to_owned();
        Keyless {
            dir,
            addr,
            queue,
            uuid,
            _service: service,
        }
    }

    fn touched(&self) -> bool {
        self.dir.path().join("touched").exists()
    }

    async fn uuids(&self) -> Vec<String> {
        let listed = raw(
            self.addr,
            "GET",
            "/2015-03-31/event-source-mappings/",
            &[],
            "",
        )
        .await;
        assert_eq!(listed.status, 200, "{listed:?}");
        let listed: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
        listed["EventSourceMappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["UUID"].as_str().unwrap().to_owned())
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn replay_path(&self) -> String {
        format!("/mqtrigger/v1/mappings/{}/replay", self.uuid)
    }
}

/// What a page may send to create a mapping: Lambda's JSON, on another queue.
fn create_body(queue: &str) -> String {
    serde_json::json!({
        "FunctionName": "recorder",
        "EventSourceArn": BROKER_ARN,
        "Queues": [queue],
        "SourceAccessConfigurations": [
            { "Type": "BASIC_AUTH", "URI": SECRET_ARN },
            { "Type": "VIRTUAL_HOST", "URI": "/" },
        ],
    })
    .to_string()
}

const EVENT: &str = r#"{"eventSource":"aws:rmq","rmqMessagesByQueue":{}}"#;
const COLLECTION: &str = "/2015-03-31/event-source-mappings/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_api_refuses_what_another_sites_web_page_can_send() {
    let api = Keyless::start("guard-hostile", "").await;
    let addr = api.addr;
    let page = [
        ("Content-Type", "text/plain"),
        ("Origin", "http://evil.example"),
    ];

    // The hostile trial's create: a simple request, no preflight needed.
    let create = create_body(&unique("guard-never"));
    let answer = raw(addr, "POST", COLLECTION, &page, &create).await;
    refused_by(&answer, "cross-site");
    assert!(
        answer.body.contains("Origin http://evil.example"),
        "{answer:?}"
    );
    assert!(answer.body.contains("[api] allowed_origins"), "{answer:?}");
    // A browser that strips Origin still cannot send JSON without asking;
    // nor may a page's untyped POST (fetch in no-cors mode) pass.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let answer = raw(
            addr,
            "POST",
            COLLECTION,
            &[("Content-Type", content_type)],
            &create,
        )
        .await;
        refused_by(&answer, "content-type");
    }
    refused_by(
        &raw(addr, "POST", COLLECTION, &[], &create).await,
        "content-type",
    );
    // A no-cors GET of a script or an image says where it comes from.
    let answer = raw(
        addr,
        "GET",
        COLLECTION,
        &[("Sec-Fetch-Site", "cross-site")],
        "",
    )
    .await;
    refused_by(&answer, "cross-site");

    // The replay: an event of the page's making, to the mapping's function.
    let replay = api.replay_path();
    refused_by(
        &raw(addr, "POST", &replay, &page, EVENT).await,
        "cross-site",
    );
    let plain = [("Content-Type", "text/plain")];
    refused_by(
        &raw(addr, "POST", &replay, &plain, EVENT).await,
        "content-type",
    );
    refused_by(
        &raw(addr, "POST", &replay, &[], EVENT).await,
        "content-type",
    );

    // DNS rebinding: the page's own name, resolved to 127.0.0.1.
    let rebound = format!("evil.example:{}", addr.port());
    for path in [
        COLLECTION,
        "/mqtrigger/v1/dead-letters",
        "/mqtrigger/v1/snapshot",
    ] {
        let answer = raw(addr, "GET", path, &[("Host", &rebound)], "").await;
        refused_by(&answer, "host");
        assert!(answer.body.contains("[api] allowed_hosts"), "{answer:?}");
    }
    refused_by(
        &raw(addr, "GET", COLLECTION, &[("Host", "evil.example")], "").await,
        "host",
    );

    // Nothing was created, nothing invoked.
    assert_eq!(api.uuids().await, std::slice::from_ref(&api.uuid));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!api.touched(), "a refused replay reached the function");

    // The same replay from this machine's tools goes through: the file
    // above would have been written, had a refusal let one pass.
    let json = [("Content-Type", "application/json")];
    let answer = raw(addr, "POST", &replay, &json, EVENT).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("replayed"), "{answer:?}");
    assert!(api.touched());
    for host in [
        format!("localhost:{}", addr.port()),
        "localhost".to_owned(),
        addr.to_string(),
    ] {
        let answer = raw(addr, "GET", COLLECTION, &[("Host", &host)], "").await;
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
    }

    // Each rule's refusals are logged once at warn for this peer.
    let log = api.log();
    for rule in ["cross-site", "content-type", "host"] {
        let warned = log
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains(&format!("the API's {rule} rule")))
            .count();
        assert_eq!(warned, 1, "{rule} refusals warned about:\n{log}");
    }
    Broker::connect().await.delete(&api.queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_api_takes_the_origins_and_hosts_it_is_told_to() {
    let ui = "http://ops-ui:8080";
    let api = Keyless::start(
        "guard-allowed",
        &format!("[api]\nallowed_origins = [\"{ui}\"]\nallowed_hosts = [\"ops-1\"]\n"),
    )
    .await;
    let addr = api.addr;
    let from_ui = [
        ("Origin", ui),
        ("Sec-Fetch-Site", "cross-site"),
        ("Content-Type", "application/json"),
    ];
    let queue = unique("guard-from-ui");
    let answer = raw(addr, "POST", COLLECTION, &from_ui, &create_body(&queue)).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(api.uuids().await.len(), 2);
    // Only that origin: another port of it is another origin.
    let other = [("Origin", "http://ops-ui:8081")];
    refused_by(
        &raw(addr, "GET", COLLECTION, &other, "").await,
        "cross-site",
    );
    // An allowed origin is still held to the content-type rule.
    let typed = [("Origin", ui), ("Content-Type", "text/plain")];
    refused_by(
        &raw(addr, "POST", &api.replay_path(), &typed, EVENT).await,
        "content-type",
    );
    assert!(!api.touched());

    let answer = raw(addr, "GET", COLLECTION, &[("Host", "ops-1")], "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let port = format!("ops-1:{}", addr.port());
    refused_by(
        &raw(addr, "GET", COLLECTION, &[("Host", &port)], "").await,
        "host",
    );
    refused_by(
        &raw(addr, "GET", COLLECTION, &[("Host", "ops-2")], "").await,
        "host",
    );
    Broker::connect().await.delete(&api.queue).await;
}

/// boto3 (botocore's rest-json, as any Python user has it) against `url`.
fn boto3(url: &str, script: &str) -> Result<String, String> {
    let out = std::process::Command::new(python())
        .args(["-c", script, url])
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("python3 runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_boto3_the_mappings_cli_and_the_console_client_work_keyless() {
    use mqtrigger::console::driver::Driver;
    let api = Keyless::start("guard-clients", "").await;
    let url = format!("http://{}", api.addr);
    let broker = Broker::connect().await;

    // The AWS CLI: create, update, get, list, delete.
    let queue = unique("guard-cli");
    broker.declare(&queue, Default::default()).await;
    let created = aws!(
        url,
        "create-event-source-mapping",
        "--function-name",
        "recorder",
        "--event-source-arn",
        BROKER_ARN,
        "--queues",
        queue,
        "--source-access-configurations",
        "Type=VIRTUAL_HOST,URI=/",
        format!("Type=BASIC_AUTH,URI={SECRET_ARN}"),
    )
    .expect("create through the AWS CLI");
    let uuid = created["UUID"].as_str().unwrap().to_owned();
    let updated = aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--batch-size",
        3
    );
    assert_eq!(updated.expect("update")["BatchSize"], 3);
    assert_eq!(
        aws!(url, "get-event-source-mapping", "--uuid", uuid).unwrap()["BatchSize"],
        3
    );
    let listed = aws!(url, "list-event-source-mappings").unwrap();
    assert_eq!(listed["EventSourceMappings"].as_array().unwrap().len(), 2);
    let deleted = aws!(url, "delete-event-source-mapping", "--uuid", uuid);
    assert_eq!(deleted.expect("delete")["State"], "Deleting");
    wait_for("the CLI's mapping to go", || {
        aws_lambda_list(&url).len() == 1
    })
    .await;

    // boto3: the same, and at localhost.
    let script = format!(
        r#"
import sys, boto3
c = boto3.client("lambda", endpoint_url=sys.argv[1])
m = c.create_event_source_mapping(FunctionName="recorder", EventSourceArn="{BROKER_ARN}",
    Queues=["{queue}"], SourceAccessConfigurations=[
        {{"Type": "BASIC_AUTH", "URI": "{SECRET_ARN}"}}, {{"Type": "VIRTUAL_HOST", "URI": "/"}}])
c.update_event_source_mapping(UUID=m["UUID"], BatchSize=4)
assert c.get_event_source_mapping(UUID=m["UUID"])["BatchSize"] == 4
print(len(c.list_event_source_mappings()["EventSourceMappings"]))
print(c.delete_event_source_mapping(UUID=m["UUID"])["State"])
"#
    );
    let local = format!("http://localhost:{}", api.addr.port());
    let out = boto3(&local, &script).expect("boto3 on a keyless API");
    assert_eq!(out, "2\nDeleting", "{out}");
    wait_for("boto3's mapping to go", || aws_lambda_list(&url).len() == 1).await;

    // `mqtrigger mappings` (aws-sdk-lambda): create, update, disable, delete.
    let created = create_through_cli(&url, &queue, &["--disabled"]);
    let uuid = created["UUID"].as_str().unwrap().to_owned();
    stdout(&mappings_cli(&url, &["update", &uuid, "--batch-size", "5"]));
    stdout(&mappings_cli(&url, &["enable", &uuid]));
    let table = stdout(&mappings_cli(&url, &["list"]));
    assert!(table.contains(&uuid), "{table}");
    stdout(&mappings_cli(&url, &["delete", &uuid]));
    wait_for("the mappings CLI's mapping to go", || {
        aws_lambda_list(&url).len() == 1
    })
    .await;

    // The console's client (`console --endpoint`): describe, follow, change, replay.
    let remote = mqtrigger::api::remote::Remote::new(&url).await.unwrap();
    let described = remote.describe().await.unwrap();
    assert_eq!(described.endpoint, Some(url.clone()));
    assert!(!described.readonly);
    let mapping: uuid::Uuid = api.uuid.parse().unwrap();
    remote.set_batch_size(mapping, 7).await.unwrap();
    let answer = remote
        .replay_event(mapping, bytes::Bytes::from_static(EVENT.as_bytes()))
        .await
        .unwrap();
    assert!(answer.contains("replayed"), "{answer}");
    assert!(api.touched());
    let mut items = remote.follow();
    let first = tokio::time::timeout(Duration::from_secs(60), items.recv()).await;
    assert!(
        matches!(first, Ok(Some(mqtrigger::engine::FeedItem::Synced(_)))),
        "{first:?}"
    );
    broker.delete(&queue).await;
    broker.delete(&api.queue).await;
}

/// The UUIDs `aws lambda list-event-source-mappings` reports.
fn aws_lambda_list(url: &str) -> Vec<String> {
    aws(url, &["list-event-source-mappings"]).unwrap()["EventSourceMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["UUID"].as_str().unwrap().to_owned())
        .collect()
}

/// `mqtrigger ARGS`, which should be refused at once: its stderr.
fn refused_start(args: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"));
    command.args(args);
    let out = run_to_its_end(&mut command, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("mqtrigger {args:?} started: {e}"));
    assert!(!out.status.success(), "mqtrigger {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_way_to_listen_puts_a_keyless_api_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let queue = unique("guard-listen");
    let port = free_port().port();
    let config = |extra: &str| {
        let path = dir.path().join(format!("c{}.toml", extra.len()));
        let mut setup = Setup::new(&queue);
        setup.extra_toml = extra.to_owned();
        std::fs::write(&path, setup.toml(&dir.path().join("events.jsonl"))).unwrap();
        path.display().to_string()
    };
    let plain = config("");
    let state = dir.path().join("state").display().to_string();
    let everywhere = format!("0.0.0.0:{port}");
    let v6_everywhere = format!("[::]:{port}");
    let listen_everywhere = config(&format!("[api]\nlisten = \"{everywhere}\"\n"));
    let cases: [(&str, Vec<&str>); 4] = [
        (
            "serve --api",
            vec![
                "serve",
                "-c",
                &plain,
                "--state",
                &state,
                "--api",
                &everywhere,
            ],
        ),
        (
            "serve --api [::]",
            vec![
                "serve",
                "-c",
                &plain,
                "--state",
                &state,
                "--api",
                &v6_everywhere,
            ],
        ),
        (
            "[api] listen",
            vec!["serve", "-c", &listen_everywhere, "--state", &state],
        ),
        // Said before the console asks for a terminal, which this has not.
        (
            "console --api",
            vec![
                "console",
                "-c",
                &plain,
                "--state",
                &state,
                "--api",
                &everywhere,
            ],
        ),
    ];
    for (what, args) in cases {
        let stderr = refused_start(&args);
        assert!(
            stderr.contains("refusing to serve the API on")
                && stderr.contains("without [api] access_keys"),
            "{what}: {stderr}"
        );
    }
    // A name is resolved to one address, and that one is checked and bound:
    // `localhost` (127.0.0.1 here, ::1 on some machines) is loopback.
    let by_name = format!("localhost:{port}");
    let serving = spawn_with(&["serve", "-c", &plain, "--state", &state, "--api", &by_name]);
    wait_listening(format!("127.0.0.1:{port}").parse().unwrap()).await;
    drop(serving);
    // With access_keys any address may be listened on.
    let keyed = config(&format!(
        "[api]\nlisten = \"{everywhere}\"\naccess_keys = [{{ id = \"{KEY_ID}\", secret = \"{KEY_SECRET}\" }}]\n"
    ));
    let serving = spawn_with(&["serve", "-c", &keyed, "--state", &state]);
    wait_listening(format!("127.0.0.1:{port}").parse().unwrap()).await;
    drop(serving);
}

fn spawn_with(args: &[&str]) -> KillOnDrop {
    KillOnDrop::new(
        std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_must_be_scoped_to_lambda_and_the_apis_region() {
    let queue = unique("api-scope");
    let mut setup = Setup::new(&queue);
    setup.extra_toml = format!(
        "[api]\nregion = \"eu-west-1\"\naccess_keys = [{{ id = \"{KEY_ID}\", secret = \"{KEY_SECRET}\" }}]\n"
    );
    let running = Running::start(&setup).await;
    let listener = mqtrigger::api::bind("127.0.0.1:0".parse().unwrap(), &[])
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mqtrigger::api::serve(
        running.control.clone(),
        listener,
        stop.clone(),
    ));
    let _stop = stop.drop_guard();
    let in_region = |region: &'static str| {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version_latest()
            .region(Region::new(region))
            .endpoint_url(&url)
            .credentials_provider(Credentials::new(KEY_ID, KEY_SECRET, None, None, "test"))
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    };
    let listed = in_region("eu-west-1")
        .list_event_source_mappings()
        .send()
        .await;
    assert_eq!(listed.unwrap().event_source_mappings().len(), 1);
    let refused = in_region("us-east-1")
        .list_event_source_mappings()
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("InvalidSignatureException"));
    assert_eq!(
        refused.message(),
        Some("Credential should be scoped to a valid region.")
    );
    // botocore signing for S3 with the right key and region.
    let script = r#"
import sys, urllib.request, urllib.error
import botocore.auth, botocore.awsrequest, botocore.credentials
r = botocore.awsrequest.AWSRequest(method="GET", url=sys.argv[1] + "/2015-03-31/event-source-mappings/")
botocore.auth.SigV4Auth(botocore.credentials.Credentials(sys.argv[2], sys.argv[3]), "s3", "eu-west-1").add_auth(r)
try:
    urllib.request.urlopen(urllib.request.Request(r.url, headers=dict(r.headers)))
    print("accepted")
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("x-amzn-ErrorType"), e.read().decode())
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script, &url, KEY_ID, KEY_SECRET])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("403 InvalidSignatureException")
            && said.contains("Credential should be scoped to correct service: 'lambda'."),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
