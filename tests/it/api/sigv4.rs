//! Signature Version 4 on the signed API: a wrong secret, an unknown key, an
//! old clock or no signature at all is refused, and so is a signature
//! scoped to another region or to another service than `lambda`.

use super::{KEY_ID, KEY_SECRET, lambda, start_api};
use crate::common::*;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use std::time::{Duration, SystemTime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_signature_are_refused() {
    let queue = unique("api-sig");
    let api = start_api(&queue).await;
    let list = |client: aws_sdk_lambda::Client| async move {
        client.list_event_source_mappings().send().await
    };

    let good = list(lambda(&api.url, KEY_ID, KEY_SECRET, None)).await;
    assert_eq!(good.unwrap().event_source_mappings().len(), 1);

    let refused =
        |e: aws_sdk_lambda::error::SdkError<_, aws_sdk_lambda::config::http::HttpResponse>| {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let code = e.code().map(str::to_owned);
            (status, code)
        };
    let wrong = list(lambda(&api.url, KEY_ID, "not-the-secret", None)).await;
    assert_eq!(
        refused(wrong.unwrap_err()),
        (Some(403), Some("InvalidSignatureException".into()))
    );
    let unknown = list(lambda(&api.url, "AKIDNOBODY", KEY_SECRET, None)).await;
    assert_eq!(
        refused(unknown.unwrap_err()),
        (Some(403), Some("UnrecognizedClientException".into()))
    );
    let ten_minutes_ago = SystemTime::now() - Duration::from_secs(600);
    let expired = list(lambda(&api.url, KEY_ID, KEY_SECRET, Some(ten_minutes_ago))).await;
    let (status, code) = refused(expired.unwrap_err());
    assert_eq!(status, Some(403));
    assert_eq!(code.as_deref(), Some("InvalidSignatureException"));

    // No signature at all: a plain HTTP request.
    let (status, body) = http_get(&api.url, "/2015-03-31/event-source-mappings/").await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains(KEY_SECRET));
    // The mapping is untouched by any of them.
    assert_eq!(api.running.control.list().unwrap().len(), 1);
}

/// A bare HTTP/1.1 GET: (status, body).
pub async fn http_get(url: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_must_be_scoped_to_lambda_and_the_apis_region() {
    let queue = unique("api-scope");
    let mut setup = Setup::new(&queue);
    setup.extra_toml = format!(
        "[api]\nregion = \"eu-west-1\"\naccess_keys = [{{ id = \"{KEY_ID}\", secret = \"{KEY_SECRET}\" }}]\n"
    );
    let running = Running::start(&setup).await;
    let listener = mqtrigger::api::bind("127.0.0.1:0".parse().unwrap(), &[])
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mqtrigger::api::serve(
        running.control.clone(),
        listener,
        stop.clone(),
    ));
    let _stop = stop.drop_guard();
    let in_region = |region: &'static str| {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version_latest()
            .region(Region::new(region))
            .endpoint_url(&url)
            .credentials_provider(Credentials::new(KEY_ID, KEY_SECRET, None, None, "test"))
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    };
    let listed = in_region("eu-west-1")
        .list_event_source_mappings()
        .send()
        .await;
    assert_eq!(listed.unwrap().event_source_mappings().len(), 1);
    let refused = in_region("us-east-1")
        .list_event_source_mappings()
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("InvalidSignatureException"));
    assert_eq!(
        refused.message(),
        Some("Credential should be scoped to a valid region.")
    );
    // botocore signing for S3 with the right key and region.
    let script = r#"
import sys, urllib.request, urllib.error
import botocore.auth, botocore.awsrequest, botocore.credentials
r = botocore.awsrequest.AWSRequest(method="GET", url=sys.argv[1] + "/2015-03-31/event-source-mappings/")
botocore.auth.SigV4Auth(botocore.credentials.Credentials(sys.argv[2], sys.argv[3]), "s3", "eu-west-1").add_auth(r)
try:
    urllib.request.urlopen(urllib.request.Request(r.url, headers=dict(r.headers)))
    print("accepted")
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("x-amzn-ErrorType"), e.read().decode())
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script, &url, KEY_ID, KEY_SECRET])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("403 InvalidSignatureException")
            && said.contains("Credential should be scoped to correct service: 'lambda'."),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
