//! The rest of today's event-source-mapping API through the real AWS CLI:
//! EventSourceMappingArn in every answer, tags (at create, then
//! TagResource, ListTags, UntagResource), MetricsConfig with Lambda's ESM
//! metric names, and the fields Lambda refuses for MQ refused by name.

use super::{aws_async, start_api};
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_metrics_config_the_arn_and_the_fields_refused_for_mq() {
    let config_queue = unique("esm-config");
    let queue = unique("esm-rest");
    let api = start_api(&config_queue).await;
    let url = api.url.clone();
    let base = [
        "--function-name".to_owned(),
        "recorder".into(),
        "--event-source-arn".into(),
        BROKER_ARN.into(),
        "--queues".into(),
        queue.clone(),
        "--source-access-configurations".into(),
        format!("Type=BASIC_AUTH,URI={SECRET_ARN}"),
    ];

    // A stream's field is refused by name, with Lambda's error type.
    let mut args = vec!["create-event-source-mapping".to_owned()];
    args.extend(base.iter().cloned());
    args.extend(["--starting-position".into(), "LATEST".into()]);
    let refused = aws_async(url.clone(), args).await.unwrap_err();
    assert!(
        refused.contains("InvalidParameterValueException"),
        "{refused}"
    );
    assert!(
        refused.contains("StartingPosition is not supported for an Amazon MQ event source"),
        "{refused}"
    );

    let mut args = vec!["create-event-source-mapping".to_owned()];
    args.extend(base.iter().cloned());
    args.extend([
        "--tags".into(),
        "team=orders,env=test".into(),
        "--metrics-config".into(),
        "Metrics=EventCount".into(),
    ]);
    let created = aws_async(url.clone(), args).await.expect("create");
    let uuid = created["UUID"].as_str().unwrap().to_owned();
    let arn = created["EventSourceMappingArn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        arn,
        format!("arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{uuid}")
    );
    assert_eq!(created["MetricsConfig"]["Metrics"][0], "EventCount");

    let tags = aws!(url, "list-tags", "--resource", arn).unwrap();
    assert_eq!(
        tags["Tags"],
        serde_json::json!({"team": "orders", "env": "test"})
    );
    aws!(
        url,
        "tag-resource",
        "--resource",
        arn,
        "--tags",
        "owner=ops"
    )
    .unwrap();
    aws!(
        url,
        "untag-resource",
        "--resource",
        arn,
        "--tag-keys",
        "env"
    )
    .unwrap();
    let tags = aws!(url, "list-tags", "--resource", arn).unwrap();
    assert_eq!(
        tags["Tags"],
        serde_json::json!({"team": "orders", "owner": "ops"})
    );
    let reserved = aws!(url, "tag-resource", "--resource", arn, "--tags", "aws:x=1").unwrap_err();
    assert!(reserved.contains("reserved"), "{reserved}");
    let function = "arn:aws:lambda:us-east-1:000000000000:function:recorder";
    let not_ours = aws!(url, "list-tags", "--resource", function).unwrap_err();
    assert!(not_ours.contains("ResourceNotFoundException"), "{not_ours}");

    let got = aws!(url, "get-event-source-mapping", "--uuid", uuid).unwrap();
    assert_eq!(got["EventSourceMappingArn"], arn.as_str());

    // DestinationConfig, as the AWS CLI's shorthand writes it.
    let failed = format!("{BROKER_ARN}:queue:{queue}-failed");
    let with_destination = aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--destination-config",
        format!("OnFailure={{Destination={failed}}}")
    )
    .unwrap();
    assert_eq!(
        with_destination["DestinationConfig"]["OnFailure"]["Destination"],
        failed.as_str()
    );
    let refused = aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--destination-config",
        "OnSuccess={Destination=arn:aws:sqs:us-east-1:0:ok}"
    )
    .unwrap_err();
    assert!(refused.contains("OnSuccess is not supported"), "{refused}");
    let off = aws!(
        url,
        "update-event-source-mapping",
        "--uuid",
        uuid,
        "--metrics-config",
        "Metrics=[]"
    )
    .unwrap();
    assert!(off.get("MetricsConfig").is_none(), "{off}");
    aws!(url, "delete-event-source-mapping", "--uuid", uuid).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_sets_function_response_types_a_destination_and_tags() {
    let config_queue = unique("boto-config");
    let queue = unique("boto-esm");
    let api = start_api(&config_queue).await;
    let script = format!(
        r#"
import sys, boto3
c = boto3.client("lambda", endpoint_url=sys.argv[1])
failed = "{BROKER_ARN}:queue:{queue}-failed"
m = c.create_event_source_mapping(FunctionName="recorder", EventSourceArn="{BROKER_ARN}",
    Queues=["{queue}"], SourceAccessConfigurations=[{{"Type": "BASIC_AUTH", "URI": "{SECRET_ARN}"}}],
    FunctionResponseTypes=["ReportBatchItemFailures"],
    DestinationConfig={{"OnFailure": {{"Destination": failed}}}},
    Tags={{"team": "orders"}})
assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"], m
assert m["DestinationConfig"]["OnFailure"]["Destination"] == failed, m
arn = m["EventSourceMappingArn"]
assert arn.endswith(":event-source-mapping:" + m["UUID"]), arn
c.tag_resource(Resource=arn, Tags={{"owner": "ops"}})
print(sorted(c.list_tags(Resource=arn)["Tags"].items()))
u = c.update_event_source_mapping(UUID=m["UUID"], DestinationConfig={{}}, FunctionResponseTypes=[])
print("DestinationConfig" in u, "FunctionResponseTypes" in u)
try:
    c.update_event_source_mapping(UUID=m["UUID"], DestinationConfig={{"OnFailure": {{"Destination": "arn:aws:sqs:us-east-1:0:nowhere"}}}})
except c.exceptions.InvalidParameterValueException as e:
    print("refused", "BROKER_ARN:queue:NAME" in str(e))
c.delete_event_source_mapping(UUID=m["UUID"])
"#
    );
    let out = super::boto3(&api.url, &script, (super::KEY_ID, super::KEY_SECRET)).expect("boto3");
    assert_eq!(
        out, "[('owner', 'ops'), ('team', 'orders')]\nFalse False\nrefused True",
        "{out}"
    );
}
