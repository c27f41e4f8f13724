//! The Lambda Runtime API (2018-06-01) for one execution environment, on
//! loopback: the runtime in the process long-polls `next` for an
//! invocation and posts its response or error back.
//!
//! Each environment has its own listener, which answers only the processes
//! of that environment ([`super::peers`]): an invocation is handed only to
//! the environment it was given to, and answered only by it.

use crate::sync::Unpoisoned;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::peers::{Admission, Guarded};
use crate::invoke::MAX_RESPONSE_BYTES;

/// Lambda's limit on what a runtime may post; a little above the response
/// limit so a too-large response is read and refused as Lambda refuses it.
const MAX_POST_BYTES: usize = MAX_RESPONSE_BYTES + 1024 * 1024;

/// One invocation handed to the runtime.
pub struct Invocation {
    pub request_id: String,
    pub event: Bytes,
    /// Epoch milliseconds.
    pub deadline_ms: i64,
    pub function_arn: String,
    pub trace_id: String,
    pub reply: oneshot::Sender<Reply>,
}

/// What the runtime posted for an invocation.
#[derive(Debug)]
pub enum Reply {
    Response(Bytes),
    /// `/error`: the error type (the header, else the body's errorType) and the body.
    Error {
        error_type: String,
        body: Bytes,
    },
    /// A response over 6 MB, refused with 413.
    TooLarge(usize),
}

/// What the runtime said about its own start.
#[derive(Debug, Clone)]
pub struct InitError {
    pub error_type: String,
    pub body: Bytes,
}

struct Shared {
    invocations: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    /// Handed out and not yet answered, by request id.
    pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    init_error: tokio::sync::watch::Sender<Option<InitError>>,
    /// Told once, at the first `next`: the runtime finished its init.
    ready: Mutex<Option<oneshot::Sender<Instant>>>,
    /// How many times the runtime asked for work.
    asked: tokio::sync::watch::Sender<u64>,
}

/// A running Runtime API: give it invocations; it ends when dropped.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    pub invocations: mpsc::Sender<Invocation>,
    /// Set when the runtime reports that its init failed.
    pub init_error: tokio::sync::watch::Receiver<Option<InitError>>,
    /// When the runtime first asked for work.
    pub ready: Option<oneshot::Receiver<Instant>>,
    /// How many times the runtime asked for work (`next`): the end of an
    /// invocation's log, as on Lambda, is the runtime's next ask.
    pub asked: tokio::sync::watch::Receiver<u64>,
    admission: Admission,
    stop: CancellationToken,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RuntimeApi {
    /// Listens on a free loopback port, for `function`'s environment. It
    /// answers nobody until [`Self::admit_session_of`] says whose it is.
    pub async fn start(function: &str) -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1);
        let (init_tx, init_rx) = tokio::sync::watch::channel(None);
        let (ready_tx, ready_rx) = oneshot::channel();
        let (asked_tx, asked_rx) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            invocations: tokio::sync::Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            init_error: init_tx,
            ready: Mutex::new(Some(ready_tx)),
            asked: asked_tx,
        });
        let base = "/2018-06-01/runtime";
        let app = Router::new()
            .route(&format!("{base}/invocation/next"), get(next))
            .route(
                &format!("{base}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{base}/invocation/{{id}}/error"), post(error))
            .route(&format!("{base}/init/error"), post(init_error))
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    Json(serde_json::json!({
                        "errorType": "InvalidRequest",
                        "errorMessage": "mqtrigger serves the Lambda Runtime API 2018-06-01 here"
                    })),
                )
            })
            .layer(axum::extract::DefaultBodyLimit::max(MAX_POST_BYTES))
            .with_state(shared);
        let stop = CancellationToken::new();
        let cancelled = stop.clone();
        let admission = Admission::default();
        let listener = Guarded::new(listener, admission.clone(), function);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(cancelled.cancelled_owned())
                .await;
        });
        Ok(RuntimeApi {
            addr,
            invocations: tx,
            init_error: init_rx,
            ready: Some(ready_rx),
            asked: asked_rx,
            admission,
            stop,
        })
    }

    /// Serves the processes of the session `pid` belongs to: the
    /// environment's, whose leader is the process it started.
    pub fn admit_session_of(&self, pid: u32) {
        self.admission.admit_session_of(pid);
    }
}

/// The long poll: waits for the next invocation (forever, as on Lambda).
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(ready) = shared.ready.locked().take() {
        let _ = ready.send(Instant::now());
    }
    shared.asked.send_modify(|n| *n += 1);
    let invocation = shared.invocations.lock().await.recv().await;
    let Some(invocation) = invocation else {
        // The environment is going away.
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set("Lambda-Runtime-Aws-Request-Id", &invocation.request_id);
    set(
        "Lambda-Runtime-Deadline-Ms",
        &invocation.deadline_ms.to_string(),
    );
    set(
        "Lambda-Runtime-Invoked-Function-Arn",
        &invocation.function_arn,
    );
    set("Lambda-Runtime-Trace-Id", &invocation.trace_id);
    set("Content-Type", "application/json");
    shared
        .pending
        .locked()
        .insert(invocation.request_id, invocation.reply);
    (StatusCode::OK, headers, invocation.event).into_response()
}

fn unknown_id(id: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({
            "errorType": "InvalidRequestID",
            "errorMessage": format!("Invalid request ID: {id} was not handed out, or was answered already"),
        })),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "OK" })),
    )
        .into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(reply) = shared.pending.locked().remove(&id) else {
        return unknown_id(&id);
    };
    if body.len() > MAX_RESPONSE_BYTES {
        let _ = reply.send(Reply::TooLarge(body.len()));
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(serde_json::json!({
                "errorType": "RequestEntityTooLarge",
                "errorMessage": format!(
                    "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                    body.len()
                ),
            })),
        )
            .into_response();
    }
    let _ = reply.send(Reply::Response(body));
    accepted()
}

/// The error type: the header, else the body's `errorType`, else Lambda's default.
fn error_type(headers: &HeaderMap, body: &[u8]) -> String {
    headers
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["errorType"].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "Unhandled".into())
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(reply) = shared.pending.locked().remove(&id) else {
        return unknown_id(&id);
    };
    let error_type = error_type(&headers, &body);
    let _ = reply.send(Reply::Error { error_type, body });
    accepted()
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = error_type(&headers, &body);
    shared
        .init_error
        .send_replace(Some(InitError { error_type, body }));
    accepted()
}
