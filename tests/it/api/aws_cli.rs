//! The real AWS CLI against the signed API, step by step as in the Lambda
//! guide: create, update, get, list page by page, disable and enable, the
//! errors it reports, and delete.

use super::{aws_async, start_api};
use crate::common::*;
use std::time::Duration;

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

    // ReportBatchItemFailures, as the AWS CLI sets it for SQS.
    let reporting = aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--function-response-types",
        "ReportBatchItemFailures"
    )
    .unwrap();
    assert_eq!(
        reporting["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
    let got = aws!(url, "get-event-source-mapping", "--uuid", uuid).unwrap();
    assert_eq!(
        got["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
    let off = aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--function-response-types",
        "[]"
    )
    .unwrap();
    assert!(off.get("FunctionResponseTypes").is_none(), "{off}");

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
