//! Tests of `validation`.

use super::*;
use std::path::Path;

const RABBIT: &str = "arn:aws:mq:us-east-1:000000000000:broker:rabbit:b-1";
const ACTIVE: &str = "arn:aws:mq:us-east-1:000000000000:broker:active:b-2";
const SECRET: &str = "local-secret";

fn config() -> Config {
    let text = format!(
        r#"
[[brokers]]
name = "rabbit"
engine = "rabbitmq"
arn = "{RABBIT}"
endpoints = ["amqp://127.0.0.1:5672"]

[[brokers]]
name = "active"
engine = "activemq"
arn = "{ACTIVE}"
endpoints = ["stomp://127.0.0.1:61613"]

[secrets]
"{SECRET}" = {{ username = "guest", password = "guest" }}

[functions.echo]
command = ["true"]
"#
    );
    Config::parse(Path::new("t.toml"), &text).unwrap()
}

fn spec() -> MappingSpec {
    MappingSpec {
        function_name: "echo".into(),
        event_source_arn: RABBIT.into(),
        queues: vec!["orders".into()],
        batch_size: None,
        maximum_batching_window_in_seconds: None,
        enabled: None,
        filter_criteria: None,
        source_access_configurations: vec![SourceAccessConfiguration {
            kind: SourceAccessType::BasicAuth,
            uri: SECRET.into(),
        }],
        scaling_config: None,
        ..Default::default()
    }
}

fn refusal(change: impl FnOnce(&mut MappingSpec)) -> InvalidMapping {
    let mut s = spec();
    change(&mut s);
    check_mapping(&s, &config()).expect_err("this mapping must be refused")
}

fn access(kind: SourceAccessType, uri: &str) -> SourceAccessConfiguration {
    SourceAccessConfiguration {
        kind,
        uri: uri.into(),
    }
}

#[test]
fn a_good_mapping_passes_and_so_does_a_secrets_manager_arn() {
    check_mapping(&spec(), &config()).unwrap();
    let mut s = spec();
    s.source_access_configurations[0].uri =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:broker-AbCdEf".into();
    s.batch_size = Some(10_000);
    s.maximum_batching_window_in_seconds = Some(0);
    s.scaling_config = Some(ScalingConfig {
        maximum_concurrency: Some(1000),
    });
    check_mapping(&s, &config()).unwrap();
}

#[test]
fn each_rule_names_its_field_and_says_the_fix() {
    let cases: Vec<(InvalidMapping, &str, &str)> = vec![
        (
            refusal(|s| s.function_name = " ".into()),
            "FunctionName",
            "FunctionName is required",
        ),
        (
            refusal(|s| s.event_source_arn = "arn:x".into()),
            "EventSourceArn",
            "EventSourceArn `arn:x` names no broker; add a [[brokers]] entry with this arn",
        ),
        (
            refusal(|s| s.queues = vec![]),
            "Queues",
            "Queues must hold 1 to 10 queue names (it holds 0); Lambda takes one, mqtrigger up to 10",
        ),
        (
            refusal(|s| s.queues = vec!["é".repeat(1001)]),
            "Queues",
            "Queues: a queue name must be 1 to 1000 characters",
        ),
        (
            refusal(|s| s.batch_size = Some(10_001)),
            "BatchSize",
            "BatchSize 10001 is out of range: it must be 1 to 10000",
        ),
        (
            refusal(|s| s.maximum_batching_window_in_seconds = Some(301)),
            "MaximumBatchingWindowInSeconds",
            "MaximumBatchingWindowInSeconds 301 is out of range: it must be 0 to 300",
        ),
        (
            refusal(|s| {
                s.scaling_config = Some(ScalingConfig {
                    maximum_concurrency: Some(1001),
                })
            }),
            "ScalingConfig",
            "ScalingConfig.MaximumConcurrency 1001 is out of range: it must be 1 to 1000",
        ),
        (
            refusal(|s| {
                s.source_access_configurations
                    .push(access(SourceAccessType::BasicAuth, SECRET))
            }),
            "SourceAccessConfigurations",
            "SourceAccessConfigurations needs exactly one BASIC_AUTH entry (the secret with the broker's username and password)",
        ),
        (
            refusal(|s| s.source_access_configurations[0].uri = "arn:aws:mq:x".into()),
            "SourceAccessConfigurations",
            "BASIC_AUTH secret `arn:aws:mq:x` is not in [secrets]; add it there, or give the ARN of an AWS Secrets Manager secret",
        ),
        (
            refusal(|s| {
                s.source_access_configurations
                    .push(access(SourceAccessType::VirtualHost, "/"));
                s.source_access_configurations
                    .push(access(SourceAccessType::VirtualHost, "/b"));
            }),
            "SourceAccessConfigurations",
            "SourceAccessConfigurations may hold at most one VIRTUAL_HOST",
        ),
        (
            refusal(|s| {
                s.event_source_arn = ACTIVE.into();
                s.source_access_configurations
                    .push(access(SourceAccessType::VirtualHost, "/"));
            }),
            "SourceAccessConfigurations",
            "VIRTUAL_HOST is for RabbitMQ brokers only; remove it from the SourceAccessConfigurations of this ActiveMQ mapping",
        ),
    ];
    for (error, field, message) in cases {
        assert_eq!(error.field, field, "{error}");
        assert_eq!(error.message, message);
        assert_eq!(error.refusal, Refusal::Invalid, "{error}");
    }
}

#[test]
fn an_unknown_function_is_not_found_as_on_lambda() {
    let e = refusal(|s| s.function_name = "nowhere".into());
    assert_eq!(e.refusal, Refusal::NotFound);
    assert_eq!(e.field, "FunctionName");
    assert!(e.message.starts_with("Function not found: nowhere."), "{e}");
    assert!(e.message.contains("[functions.nowhere]"), "{e}");
}

#[test]
fn a_bad_pattern_is_refused_in_filter_criteria() {
    let e = refusal(|s| {
        s.filter_criteria = Some(crate::mapping::FilterCriteria::of_patterns([
            r#"{"data":{"kind":"order"}}"#,
        ]))
    });
    assert_eq!(e.field, "FilterCriteria");
    assert!(
        e.message.starts_with(
            "FilterCriteria: InvalidParameterValueException: Invalid filter pattern definition"
        ) && e.message.contains("inside a list"),
        "{e}"
    );
}

#[test]
fn typed_numbers_use_the_same_ranges() {
    assert_eq!(parse_batch_size(" 25 "), Ok(25));
    assert_eq!(
        parse_batch_size("ten").unwrap_err().message,
        "BatchSize must be a whole number from 1 to 10000"
    );
    assert_eq!(
        parse_batch_size("0").unwrap_err().message,
        "BatchSize 0 is out of range: it must be 1 to 10000"
    );
    assert_eq!(parse_batching_window(""), Ok(None));
    assert_eq!(parse_batching_window("300"), Ok(Some(300)));
    assert_eq!(
        parse_batching_window("301").unwrap_err().message,
        "MaximumBatchingWindowInSeconds 301 is out of range: it must be 0 to 300"
    );
    assert!(
        parse_batching_window("0.5")
            .unwrap_err()
            .message
            .contains("whole seconds")
    );
}

#[test]
fn max_redeliveries_stays_under_rabbitmqs_own_limits() {
    assert_eq!(max_redeliveries(0), Ok(()));
    assert_eq!(max_redeliveries(20), Ok(()));
    let e = max_redeliveries(21).unwrap_err();
    assert_eq!(e.key, "max_redeliveries");
    assert!(
        e.message
            .starts_with("max_redeliveries 21 is out of range: it must be 0 to 20.")
            && e.message.contains("quorum queues")
            && e.message.contains("consumer_timeout"),
        "{e}"
    );
}

#[test]
fn an_on_failure_destination_is_a_configured_function_or_a_queue_of_a_broker() {
    use crate::mapping::{Destination, DestinationConfig, OnFailure};
    let to = |arn: &str| {
        let mut s = spec();
        s.destination_config = Some(DestinationConfig {
            on_failure: Some(OnFailure {
                destination: Some(arn.into()),
            }),
            on_success: None,
        });
        s
    };
    let queue = format!("{ACTIVE}:queue:failed-orders");
    assert_eq!(
        on_failure(&to(&queue), &config()).unwrap(),
        Some(Destination::Queue {
            broker_arn: ACTIVE.into(),
            queue: "failed-orders".into(),
            arn: queue.clone(),
        })
    );
    let function = "arn:aws:lambda:us-east-1:000000000000:function:echo";
    match on_failure(&to(function), &config()).unwrap() {
        Some(Destination::Function { name, .. }) => assert_eq!(name, "echo"),
        other => panic!("{other:?}"),
    }
    let e = check_mapping(&to("arn:aws:sqs:us-east-1:0:nowhere"), &config()).unwrap_err();
    assert_eq!(e.field, "DestinationConfig");
    assert!(e.message.contains("BROKER_ARN:queue:NAME"), "{}", e.message);
    let e = check_mapping(&to(&format!("{RABBIT}:queue:")), &config()).unwrap_err();
    assert!(e.message.contains("names no queue"), "{}", e.message);
    let mut s = spec();
    s.destination_config = Some(DestinationConfig {
        on_failure: None,
        on_success: Some(OnFailure {
            destination: Some(queue),
        }),
    });
    let e = check_mapping(&s, &config()).unwrap_err();
    assert!(
        e.message.contains("OnSuccess is not supported"),
        "{}",
        e.message
    );
}
