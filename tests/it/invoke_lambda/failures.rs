//! How the endpoint's failures are classed: an unknown function, a
//! permission or a function's state is a config error, throttling, a
//! service error or nobody listening is transient, a slow function is a
//! timeout, and an endpoint_url that is not http is refused.

use super::{event, function, invoker, within_a_minute};
use bytes::Bytes;
use mqtrigger::invoke::lambda::LambdaInvoker;
use mqtrigger::invoke::lambda_server::{LambdaServer, Reply};
use mqtrigger::invoke::{FunctionConfig, InvokeError, Invoker};
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_unknown_function_is_a_config_error_that_says_what_to_check() {
    let server = LambdaServer::start(|name, _| Reply::not_found(name))
        .await
        .unwrap();
    let err = within_a_minute(invoker("orders", &server.url).await.invoke(event()))
        .await
        .unwrap_err();
    let InvokeError::ConfigNotValid(message) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        message,
        format!(
            "Lambda function 'orders' was not found at {} (ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:000000000000:function:orders) — check the function's `lambda`, `region` and `endpoint_url`",
            server.url
        )
    );
}

#[tokio::test]
async fn permission_and_function_state_errors_are_config_errors() {
    let server = LambdaServer::start(|name, _| match name {
        "denied" => Reply::Status(
            403,
            "AccessDeniedException".into(),
            "User is not authorized to perform: lambda:InvokeFunction".into(),
        ),
        // Lambda answers KMS trouble with 502; it is still the function's setup.
        _ => Reply::Status(
            502,
            "KMSAccessDeniedException".into(),
            "Lambda was unable to decrypt the environment variables".into(),
        ),
    })
    .await
    .unwrap();
    for (name, code) in [
        ("denied", "AccessDeniedException"),
        ("kms", "KMSAccessDeniedException"),
    ] {
        let err = within_a_minute(invoker(name, &server.url).await.invoke(event()))
            .await
            .unwrap_err();
        let InvokeError::ConfigNotValid(message) = err else {
            panic!("{name}: {err:?}")
        };
        assert!(
            message.contains(&format!("'{name}'"))
                && message.contains(code)
                && message.contains(&server.url),
            "{message}"
        );
    }
}

#[tokio::test]
async fn throttling_and_service_errors_are_transient_and_not_retried_by_the_sdk() {
    let server = LambdaServer::start(|name, _| match name {
        "throttled" => Reply::Status(
            429,
            "TooManyRequestsException".into(),
            "Rate Exceeded.".into(),
        ),
        _ => Reply::Status(
            500,
            "ServiceException".into(),
            "Lambda encountered an internal error".into(),
        ),
    })
    .await
    .unwrap();
    for (name, said) in [
        ("throttled", "TooManyRequestsException: Rate Exceeded."),
        (
            "broken",
            "ServiceException: Lambda encountered an internal error",
        ),
    ] {
        let err = within_a_minute(invoker(name, &server.url).await.invoke(event()))
            .await
            .unwrap_err();
        let InvokeError::Transient(message) = err else {
            panic!("{name}: {err:?}")
        };
        assert!(
            message.contains(&server.url) && message.contains(said),
            "{message}"
        );
    }
    assert_eq!(
        server.invocations().len(),
        2,
        "one request per invoke: the engine does the retrying"
    );
}

#[tokio::test]
async fn an_endpoint_nobody_listens_on_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = within_a_minute(invoker("orders", &url).await.invoke(event()))
        .await
        .unwrap_err();
    let InvokeError::Transient(message) = err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains(&url) && message.contains("'orders'"),
        "{message}"
    );
}

#[tokio::test]
async fn a_function_slower_than_its_timeout_plus_5_s_is_a_timeout() {
    let server = LambdaServer::start(|_, _| {
        Reply::Delay(
            Duration::from_secs(30),
            Box::new(Reply::Ok(Bytes::from_static(b"{}"))),
        )
    })
    .await
    .unwrap();
    let config = FunctionConfig {
        timeout: Some(1),
        ..function("slow", &server.url)
    };
    let invoker = LambdaInvoker::new(&config).await.unwrap();
    let started = Instant::now();
    let err = within_a_minute(invoker.invoke(event())).await.unwrap_err();
    assert!(
        matches!(err, InvokeError::Timeout(t) if t == Duration::from_secs(1)),
        "{err:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(6) && waited < Duration::from_secs(30),
        "the client waits the function's timeout plus 5 s, then gives up: {waited:?}"
    );
}

#[tokio::test]
async fn an_endpoint_url_that_is_not_http_is_a_config_error() {
    let Err(InvokeError::ConfigNotValid(message)) =
        LambdaInvoker::new(&function("orders", "localhost:9001")).await
    else {
        panic!("accepted an endpoint_url without a scheme")
    };
    assert_eq!(
        message,
        "`endpoint_url = \"localhost:9001\"` is not an http:// or https:// URL"
    );
}

#[tokio::test]
async fn the_server_stops_when_dropped() {
    let server = LambdaServer::start(|_, _| Reply::Ok(Bytes::from_static(b"{}")))
        .await
        .unwrap();
    let url = server.url.clone();
    let invoker = invoker("orders", &url).await;
    within_a_minute(invoker.invoke(event())).await.unwrap();
    drop(server);
    // Stopping is asynchronous: wait (within the safety net) until it refuses.
    within_a_minute(async {
        while !matches!(
            invoker.invoke(event()).await,
            Err(InvokeError::Transient(_))
        ) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}
