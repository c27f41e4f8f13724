//! The clients a keyless API must still serve: the AWS CLI, boto3,
//! `mqtrigger mappings` and the console's own client each create, change
//! and delete a mapping, or follow and replay.

use super::{EVENT, Keyless, aws, aws_async};
use crate::common::*;
use std::time::Duration;

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
    let out = super::boto3(&local, &script, ("local", "local")).expect("boto3 on a keyless API");
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
