//! What the function's answer becomes: its payload, byte for byte, for a
//! qualified name or an ARN as written, a function error with its payload
//! (also when an emulator answers it with 200), and an event over 6 MB
//! refused before the function runs.

use super::{event, function, invoker, within_a_minute};
use bytes::Bytes;
use mqtrigger::invoke::lambda_server::{LambdaServer, MAX_REQUEST_BYTES, Reply};
use mqtrigger::invoke::{InvokeError, Invoker};

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
