//! Lambda's event-source-mapping API, driven with aws-sdk-lambda as any
//! SDK user would, against a real engine on the real RabbitMQ.

mod common;

use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{SourceAccessConfiguration, SourceAccessType};
use common::*;
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
        .function_name("arn:aws:lambda:local:000000000000:function:recorder")
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
