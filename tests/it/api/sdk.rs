//! aws-sdk-lambda as any SDK user drives it: the mapping created, changed,
//! disabled, listed page by page and deleted as on Lambda, Lambda's typed
//! errors, and a read-only engine refusing changes.

use super::{KEY_ID, KEY_SECRET, lambda, start_api};
use crate::common::*;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{SourceAccessConfiguration, SourceAccessType};
use std::time::Duration;

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
