//! The `lambda` runtime end to end: aws-sdk-lambda against a real Lambda
//! Invoke API server on 127.0.0.1, fed by the real RabbitMQ.

use crate::common::*;
use bytes::Bytes;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use mqtrigger::invoke::lambda_server::{LambdaServer, Reply};
use mqtrigger::mapping::{State, StateTransitionReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_reach_a_lambda_endpoint_and_function_errors_are_retried() {
    let broker = Broker::connect().await;
    let queue = unique("lambda");
    broker.declare(&queue, FieldTable::default()).await;
    // With a priority: aws_lambda_events cannot read the null Lambda sends without one.
    broker
        .publish(&queue, b"ok-1", BasicProperties::default().with_priority(0))
        .await;
    let server = LambdaServer::start(|_name: &str, payload: Bytes| {
        if String::from_utf8_lossy(&payload).contains("ZmFpbA") {
            // base64 of "fail"
            Reply::FunctionError {
                kind: "Unhandled".into(),
                payload: Bytes::from_static(b"{\"errorMessage\":\"no\"}"),
            }
        } else {
            Reply::Ok(Bytes::from_static(b"{}"))
        }
    })
    .await
    .unwrap();
    let mut setup = Setup::new(&queue);
    setup.lambda_endpoint = Some(server.url.clone());
    let running = Running::start(&setup).await;
    wait_for("the first invocation", || server.invocations().len() == 1).await;
    let (name, payload) = server.invocations().remove(0);
    assert!(name.ends_with("recorder"), "{name}");
    let event: aws_lambda_events::event::rabbitmq::RabbitMqEvent =
        serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        event.messages_by_queue[&format!("{queue}::/")][0]
            .data
            .as_deref(),
        Some("b2stMQ==")
    );
    wait_for("LastProcessingResult OK", || {
        running.mapping().last_processing_result == "OK"
    })
    .await;

    broker
        .publish(&queue, b"fail", BasicProperties::default())
        .await;
    wait_for("the dead letter, moved", || {
        running.dead_letters().iter().any(|d| d.moved)
    })
    .await;
    assert_eq!(
        server.invocations().len(),
        1 + 6,
        "one success, then 6 attempts of the failing batch"
    );
    let letter = running.dead_letters().remove(0);
    assert_eq!(
        letter.error.as_deref(),
        Some("{\"errorMessage\":\"no\"}"),
        "the function's error payload is journaled"
    );
    running.control.shutdown().await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_the_endpoint_does_not_know_stops_with_function_config_not_valid() {
    let broker = Broker::connect().await;
    let queue = unique("lambda-404");
    broker.declare(&queue, FieldTable::default()).await;
    broker
        .publish(&queue, b"kept", BasicProperties::default())
        .await;
    let server = LambdaServer::start(|name: &str, _| Reply::not_found(name))
        .await
        .unwrap();
    let mut setup = Setup::new(&queue);
    setup.lambda_endpoint = Some(server.url.clone());
    let running = Running::start(&setup).await;
    wait_for("the stop", || running.mapping().state == State::Disabled).await;
    let m = running.mapping();
    assert_eq!(
        m.state_transition_reason,
        StateTransitionReason::FunctionConfigNotValid
    );
    assert!(
        m.state_detail
            .as_deref()
            .unwrap_or_default()
            .contains("recorder"),
        "{:?}",
        m.state_detail
    );
    running.control.shutdown().await;
    assert_eq!(
        broker.ready(&queue).await,
        1,
        "the message went back to the queue, not lost"
    );
    broker.delete(&queue).await;
}
