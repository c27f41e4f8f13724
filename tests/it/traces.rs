//! Trace context (#30): a message's W3C `traceparent` reaches its
//! function (as `_X_AMZN_TRACE_ID` and `TRACEPARENT`), and with
//! `[telemetry] otlp_endpoint` mqtrigger's spans of the batch reach an
//! OTLP/HTTP collector in the message's trace: here a small receiver
//! written for the test, which keeps what is posted to `/v1/traces`.

use crate::common::*;
use std::sync::{Arc, Mutex};

/// Listens on loopback for OTLP/HTTP posts; their bodies (protobuf).
async fn collector() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body.to_vec());
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_reaches_the_function_and_the_spans_reach_the_collector() {
    let (otlp, posted) = collector().await;
    let queue = unique("traces");
    let broker = Broker::connect().await;
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    let setup = Setup {
        batch_size: 1,
        window_secs: Some(0),
        function_command: Some(vec![
            python(),
            format!(
                "{}/tests/functions/trace_env.py",
                env!("CARGO_MANIFEST_DIR")
            ),
        ]),
        extra_toml: format!("[telemetry]\notlp_endpoint = \"{otlp}\"\n"),
        ..Setup::new(&queue)
    };
    std::fs::write(dir.path().join("c.toml"), setup.toml(&record)).unwrap();
    let serve = spawn_serve(&dir.path().join("c.toml"), &dir.path().join("state"));

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut headers = lapin::types::FieldTable::default();
    headers.insert(
        "traceparent".into(),
        lapin::types::AMQPValue::LongString(format!("00-{trace}-00f067aa0ba902b7-01").into()),
    );
    let props = lapin::BasicProperties::default().with_headers(headers);
    broker.publish(&queue, b"traced", props).await;
    wait_for("the function invoked", || !read_events(&record).is_empty()).await;
    let seen = &read_events(&record)[0];
    let xray = seen["xray"].as_str().unwrap_or_default();
    assert!(
        xray.starts_with(&format!("Root=1-{}-{};Parent=", &trace[..8], &trace[8..])),
        "{seen}"
    );
    assert!(xray.ends_with(";Sampled=1"), "{seen}");
    let parent = seen["traceparent"].as_str().unwrap_or_default();
    assert!(parent.starts_with(&format!("00-{trace}-")), "{seen}");
    assert!(
        !parent.contains("00f067aa0ba902b7"),
        "the function's parent is mqtrigger's invoke span, not the producer's: {parent}"
    );

    // Stopping flushes the spans still buffered.
    assert!(stop(serve).success());
    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    wait_for("spans at the collector", || {
        !posted.lock().unwrap().is_empty()
    })
    .await;
    let all: Vec<u8> = posted.lock().unwrap().concat();
    let holds = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(holds(&trace_bytes), "a span in the message's trace");
    for name in ["gather", "invoke", "settle"] {
        assert!(holds(name.as_bytes()), "a {name} span");
    }
    assert!(holds(queue.as_bytes()), "the queue named");
    broker.delete(&queue).await;
}
