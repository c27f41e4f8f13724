//! The `lambda` runtime: aws-sdk-lambda against the Lambda Invoke API server
//! on 127.0.0.1. These tests need no AWS account and do not depend on the
//! developer's AWS settings: a loopback `endpoint_url` never consults the
//! instance metadata service, and falls back to dummy credentials (the
//! subprocess tests at the end check that rule with a controlled environment).

use bytes::Bytes;
use mqtrigger::invoke::lambda::LambdaInvoker;
use mqtrigger::invoke::lambda_server::{LambdaServer, MAX_REQUEST_BYTES, Reply};
use mqtrigger::invoke::{FunctionConfig, InvokeError, Invoker};
use std::time::{Duration, Instant};

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

#[tokio::test]
async fn the_response_is_the_functions_payload_and_the_event_arrives_byte_for_byte() {
    let server = LambdaServer::start(|_, payload: Bytes| {
        let mut reply = b"{\"got\":".to_vec();
        reply.extend_from_slice(&payload);
        reply.push(b'}');
        Reply::Ok(Bytes::from(reply))
    })
    .await
    .unwrap();
    // The engine's way in.
    let invoker = mqtrigger::invoke::build("orders", &function("orders", &server.url))
        .await
        .unwrap();
    assert_eq!(
        invoker.describe(),
        format!("lambda orders at {}", server.url)
    );
    let out = within_a_minute(invoker.invoke(event())).await.unwrap();
    assert_eq!(
        out,
        format!("{{\"got\":{}}}", String::from_utf8_lossy(&event()))
    );
    assert_eq!(server.invocations(), vec![("orders".to_owned(), event())]);
}

#[tokio::test]
async fn qualified_names_and_arns_reach_the_endpoint_as_written() {
    let server = LambdaServer::start(|_, _| Reply::Ok(Bytes::from_static(b"null")))
        .await
        .unwrap();
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live";
    for name in ["orders:7", arn] {
        let out = within_a_minute(invoker(name, &server.url).await.invoke(event()))
            .await
            .unwrap();
        assert_eq!(out, "null");
    }
    let names: Vec<String> = server.invocations().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["orders:7", arn]);
}

#[tokio::test]
async fn an_unhandled_function_error_carries_the_functions_payload() {
    let payload =
        r#"{"errorMessage":"order 7 has no lines","errorType":"OrderInvalid","stackTrace":[]}"#;
    let server = LambdaServer::start(move |_, _| Reply::FunctionError {
        kind: "Unhandled".into(),
        payload: Bytes::from_static(payload.as_bytes()),
    })
    .await
    .unwrap();
    let err = within_a_minute(invoker("orders", &server.url).await.invoke(event()))
        .await
        .unwrap_err();
    let InvokeError::Function {
        error_type,
        payload: got,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(error_type, "Unhandled");
    assert_eq!(got, payload);
}

/// The Runtime Interface Emulator and `sam local start-lambda` answer a
/// thrown error or a timeout with 200 and no X-Amz-Function-Error.
#[tokio::test]
async fn an_error_an_emulator_answers_with_200_is_still_a_function_error() {
    for (body, expected) in [
        (
            r#"{"errorMessage":"bad order","errorType":"ValueError","stackTrace":[]}"#,
            "ValueError",
        ),
        (
            r#"{"errorMessage":"Task timed out after 3.00 seconds"}"#,
            "Sandbox.Timedout",
        ),
    ] {
        let server =
            LambdaServer::start(move |_, _| Reply::Ok(Bytes::from_static(body.as_bytes())))
                .await
                .unwrap();
        let err = within_a_minute(invoker("orders", &server.url).await.invoke(event()))
            .await
            .unwrap_err();
        let InvokeError::Function {
            error_type,
            payload,
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(error_type, expected);
        assert_eq!(payload, body);
    }
}

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
async fn an_event_over_6_mb_is_refused_as_a_function_error() {
    let server = LambdaServer::start(|_, _| Reply::Ok(Bytes::from_static(b"{}")))
        .await
        .unwrap();
    let big = Bytes::from(format!(
        "{{\"data\":\"{}\"}}",
        "x".repeat(MAX_REQUEST_BYTES)
    ));
    let err = within_a_minute(invoker("orders", &server.url).await.invoke(big))
        .await
        .unwrap_err();
    let InvokeError::Function {
        error_type,
        payload,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(error_type, "RequestTooLarge");
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["errorType"], "RequestTooLargeException");
    assert!(
        payload["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Request must be smaller than 6291456 bytes"),
        "{payload}"
    );
    assert!(server.invocations().is_empty(), "the function never ran");
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

// ---- credentials for a local endpoint, in a controlled environment ----

/// One request as a header-recording stand-in for Lambda saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: String,
}

/// A server that answers every request with `{}` and records it; it also
/// stands in for the EC2 instance metadata service, to show nobody asks it.
async fn recording_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    use axum::http::{HeaderMap, Uri};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let record = record.clone();
        async move {
            let authorization = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            record.lock().unwrap().push(Seen {
                path: uri.path().to_owned(),
                authorization,
            });
            "{}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Runs in a child process that the `*_credentials_*` tests start with a
/// clean environment; it invokes a local endpoint and checks what signed it.
#[tokio::test]
#[ignore = "run by the credentials tests in a controlled environment"]
async fn child_invokes_a_local_endpoint() {
    let key = std::env::var("EXPECT_ACCESS_KEY").expect("started by a parent test");
    let region = std::env::var("EXPECT_REGION").expect("started by a parent test");
    let (url, seen) = recording_server().await;
    let config = FunctionConfig {
        profile: std::env::var("FUNCTION_PROFILE").ok(),
        ..function("orders", &url)
    };
    let invoker = within_a_minute(LambdaInvoker::new(&config)).await.unwrap();
    within_a_minute(invoker.invoke(event())).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        1,
        "one invoke and no instance metadata lookups: {seen:?}"
    );
    assert_eq!(seen[0].path, "/2015-03-31/functions/orders/invocations");
    // Credential=KEY/DATE/REGION/lambda/aws4_request
    let authorization = &seen[0].authorization;
    assert!(
        authorization.contains(&format!("Credential={key}/"))
            && authorization.contains(&format!("/{region}/lambda/aws4_request")),
        "expected {key} in {region}: {authorization}"
    );
}

/// Like `child_invokes_a_local_endpoint`, for an endpoint that is not on
/// this machine: no dummy credentials there.
#[tokio::test]
#[ignore = "run by the credentials tests in a controlled environment"]
async fn child_invokes_a_remote_endpoint_without_credentials() {
    // TEST-NET-1: never reached, signing fails first.
    let invoker = within_a_minute(LambdaInvoker::new(&function(
        "orders",
        "http://192.0.2.1:9001",
    )))
    .await
    .unwrap();
    let err = within_a_minute(invoker.invoke(event())).await.unwrap_err();
    let InvokeError::ConfigNotValid(message) = err else {
        panic!("{err:?}")
    };
    assert!(
        message.starts_with(
            "no usable AWS credentials to invoke Lambda function 'orders' at http://192.0.2.1:9001"
        ) && message.contains("AWS_PROFILE"),
        "{message}"
    );
}

/// Runs the child test `name` with only `env` (plus PATH and an empty HOME),
/// and the instance metadata service pointed at a recording server.
async fn run_child(name: &str, env: &[(&str, String)]) {
    // The tests are modules of one binary: `invoke_lambda::NAME`, without
    // the binary's own name that module_path! starts with.
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    let name = format!("{module}::{name}");
    let home = tempfile::tempdir().unwrap();
    let (imds_url, imds_seen) = recording_server().await;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", &name, "--ignored", "--nocapture"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds_url)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let out = within_a_minute(child.output()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        imds_seen.lock().unwrap().is_empty(),
        "the instance metadata service was asked: {:?}",
        imds_seen.lock().unwrap()
    );
}

#[tokio::test]
async fn without_credentials_a_remote_endpoint_is_a_config_error() {
    let env = [("AWS_EC2_METADATA_DISABLED", "true".into())];
    run_child("child_invokes_a_remote_endpoint_without_credentials", &env).await;
}

#[tokio::test]
async fn local_credentials_are_dummy_ones_when_the_environment_has_none() {
    run_child(
        "child_invokes_a_local_endpoint",
        &[
            ("EXPECT_ACCESS_KEY", "mqtrigger-local".into()),
            ("EXPECT_REGION", "us-east-1".into()),
        ],
    )
    .await;
}

#[tokio::test]
async fn local_credentials_come_from_the_environment_when_it_has_them() {
    run_child(
        "child_invokes_a_local_endpoint",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT".into()),
            ("AWS_SECRET_ACCESS_KEY", "secret".into()),
            ("AWS_REGION", "ap-south-1".into()),
            ("EXPECT_ACCESS_KEY", "AKIAFROMENVIRONMENT".into()),
            ("EXPECT_REGION", "ap-south-1".into()),
        ],
    )
    .await;
}

#[tokio::test]
async fn local_credentials_and_region_come_from_the_configured_profile() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    let config = dir.path().join("config");
    std::fs::write(
        &credentials,
        "[dev]\naws_access_key_id = AKIAFROMPROFILE\naws_secret_access_key = secret\n",
    )
    .unwrap();
    std::fs::write(&config, "[profile dev]\nregion = eu-west-1\n").unwrap();
    run_child(
        "child_invokes_a_local_endpoint",
        &[
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                credentials.display().to_string(),
            ),
            ("AWS_CONFIG_FILE", config.display().to_string()),
            ("FUNCTION_PROFILE", "dev".into()),
            ("EXPECT_ACCESS_KEY", "AKIAFROMPROFILE".into()),
            ("EXPECT_REGION", "eu-west-1".into()),
        ],
    )
    .await;
}
