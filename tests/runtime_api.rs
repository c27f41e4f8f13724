//! The Lambda Runtime API mqtrigger serves a `bootstrap` process, spoken to
//! the way a runtime client speaks it, over real HTTP.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mqtrigger::invoke::bootstrap::runtime_api::{Invocation, Reply, RuntimeApi};
use std::time::Duration;
use tokio::sync::oneshot;

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn call(
    http: &Http,
    api: &RuntimeApi,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{}/2018-06-01/runtime/{path}", api.addr))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(60), http.request(request))
        .await
        .expect("an answer")
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn invocation(id: &str) -> (Invocation, oneshot::Receiver<Reply>) {
    let (reply, answer) = oneshot::channel();
    (
        Invocation {
            request_id: id.into(),
            event: Bytes::from_static(br#"{"eventSource":"aws:rmq"}"#),
            deadline_ms: 1_900_000_000_000,
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:orders".into(),
            trace_id: "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"
                .into(),
            reply,
        },
        answer,
    )
}

#[tokio::test]
async fn next_hands_out_the_event_with_lambdas_headers_and_answers_are_checked() {
    let api = RuntimeApi::start().await.unwrap();
    let http: Http = Client::builder(TokioExecutor::new()).build_http();

    let (first, answer) = invocation("req-1");
    api.invocations.send(first).await.unwrap();
    let (status, headers, body) = call(&http, &api, Method::GET, "invocation/next", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"eventSource":"aws:rmq"}"#);
    assert_eq!(headers["lambda-runtime-aws-request-id"], "req-1");
    assert_eq!(headers["lambda-runtime-deadline-ms"], "1900000000000");
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:orders"
    );
    assert!(
        headers["lambda-runtime-trace-id"]
            .to_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    // The optional ones only when set: never, for an MQ event.
    assert!(headers.get("lambda-runtime-client-context").is_none());
    assert!(headers.get("lambda-runtime-cognito-identity").is_none());

    let (status, _, _) = call(
        &http,
        &api,
        Method::POST,
        "invocation/req-1/response",
        b"{\"ok\":1}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(matches!(answer.await.unwrap(), Reply::Response(b) if b == "{\"ok\":1}"));
    // Answered already, or never handed out: 400.
    let (status, _, body) = call(
        &http,
        &api,
        Method::POST,
        "invocation/req-1/response",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
    let (status, _, _) = call(
        &http,
        &api,
        Method::POST,
        "invocation/nope/error",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // An error: its type from the header.
    let (second, answer) = invocation("req-2");
    api.invocations.send(second).await.unwrap();
    call(&http, &api, Method::GET, "invocation/next", vec![]).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!(
            "http://{}/2018-06-01/runtime/invocation/req-2/error",
            api.addr
        ))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.HandlerError")
        .body(Full::new(Bytes::from_static(
            br#"{"errorType":"ValueError","errorMessage":"bad","stackTrace":[]}"#,
        )))
        .unwrap();
    let response = http.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    match answer.await.unwrap() {
        Reply::Error { error_type, body } => {
            assert_eq!(error_type, "Runtime.HandlerError");
            assert!(String::from_utf8_lossy(&body).contains("ValueError"));
        }
        other => panic!("{other:?}"),
    }

    // Past 6 MB: 413, and the invocation fails as too large.
    let (third, answer) = invocation("req-3");
    api.invocations.send(third).await.unwrap();
    call(&http, &api, Method::GET, "invocation/next", vec![]).await;
    let big = vec![b'x'; 6 * 1024 * 1024 + 1];
    let (status, _, _) = call(&http, &api, Method::POST, "invocation/req-3/response", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(matches!(answer.await.unwrap(), Reply::TooLarge(n) if n == 6 * 1024 * 1024 + 1));

    // An init error is told, whatever it is about.
    let (status, _, _) = call(
        &http,
        &api,
        Method::POST,
        "init/error",
        br#"{"errorType":"Runtime.ImportModuleError","errorMessage":"no module"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let told = api.init_error.borrow().clone().expect("the init error");
    assert_eq!(told.error_type, "Runtime.ImportModuleError");
}
