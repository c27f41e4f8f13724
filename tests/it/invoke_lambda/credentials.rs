//! Credentials for a local endpoint, in a controlled environment: each
//! test runs a child test of this file in a process of its own with only
//! the variables it sets, and checks that the instance metadata service is
//! never asked.

use super::{event, function, within_a_minute};
use mqtrigger::invoke::lambda::LambdaInvoker;
use mqtrigger::invoke::{FunctionConfig, InvokeError, Invoker};

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
    // The tests are modules of one binary: `invoke_lambda::credentials::NAME`,
    // without the binary's own name that module_path! starts with.
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
