//! The clients a test talks to a running mqtrigger with: a plain HTTP
//! GET, the AWS CLI signed by the test key, and `mqtrigger mappings`.

use super::{API_KEY_ID, API_SECRET, BROKER_ARN, SECRET_ARN};

/// A plain HTTP/1.1 GET (status line, headers and body), or None if nothing answers.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

/// `aws lambda ARGS --endpoint-url http://ADDR` signed by [`API_KEY_ID`]:
/// its standard output, trimmed.
pub fn aws_lambda(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let out = std::process::Command::new("aws")
        .args(["--endpoint-url", &format!("http://{addr}"), "lambda"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", API_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", API_SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the AWS CLI (scripts/test installs it)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The mapping's State, as `aws lambda get-event-source-mapping` reports it.
pub fn aws_cli_state(addr: std::net::SocketAddr, uuid: &str) -> String {
    aws_lambda(
        addr,
        &[
            "get-event-source-mapping",
            "--uuid",
            uuid,
            "--query",
            "State",
            "--output",
            "text",
        ],
    )
}

/// `mqtrigger mappings --endpoint URL ARGS`, with no AWS credentials of the
/// machine's (a loopback API takes any).
pub fn mappings_cli(endpoint: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args(["mappings", "--endpoint", endpoint])
        .args(args)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap()
}

/// `mappings create` of a mapping from `queue` on the test broker to the
/// recorder, as a user types it (and `more`): the created mapping's JSON.
pub fn create_through_cli(endpoint: &str, queue: &str, more: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--output",
        "json",
        "create",
        "--function-name",
        "recorder",
        "--event-source-arn",
        BROKER_ARN,
        "--queue",
        queue,
        "--secret",
        SECRET_ARN,
        "--virtual-host",
        "/",
    ];
    args.extend(more);
    serde_json::from_str(&stdout(&mappings_cli(endpoint, &args))).unwrap()
}

/// A command's standard output, once it succeeded.
pub fn stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
