//! The `lambda` runtime: aws-sdk-lambda against the Lambda Invoke API server
//! on 127.0.0.1. These tests need no AWS account and do not depend on the
//! developer's AWS settings: a loopback `endpoint_url` never consults the
//! instance metadata service, and falls back to dummy credentials (the
//! subprocess tests of `credentials.rs` check that rule with a controlled
//! environment). This file holds the function, the invoker and the event
//! they share.

mod answers;
mod credentials;
mod failures;

use bytes::Bytes;
use mqtrigger::invoke::FunctionConfig;
use mqtrigger::invoke::lambda::LambdaInvoker;
use std::time::Duration;

fn function(name: &str, endpoint: &str) -> FunctionConfig {
    FunctionConfig {
        lambda: Some(name.into()),
        endpoint_url: Some(endpoint.into()),
        ..FunctionConfig::default()
    }
}

async fn invoker(name: &str, endpoint: &str) -> LambdaInvoker {
    LambdaInvoker::new(&function(name, endpoint)).await.unwrap()
}

/// A generous safety net: none of these invocations should come near it.
async fn within_a_minute<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the invocation hung")
}

fn event() -> Bytes {
    Bytes::from(
        r#"{"eventSource":"aws:rmq","rmqMessagesByQueue":{"orders::/":[{"data":"aGk=","redelivered":false}]},"note":"ünïcödé \u0000"}"#,
    )
}
