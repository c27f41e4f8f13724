//! A minimal Lambda Invoke API server, for tests, `mqtrigger bench` and
//! `mqtrigger lambda-server` (trying the `lambda` runtime without AWS).
//!
//! It answers `POST /2015-03-31/functions/{name}/invocations` as Lambda does:
//! the function's result with 200, a function error with 200 and
//! `X-Amz-Function-Error`, an API error with its status, `x-amzn-ErrorType`
//! and a JSON body, so aws-sdk-lambda raises the same typed errors. `{name}`
//! reaches the handler decoded and as the caller wrote it: a name,
//! `name:qualifier`, or an ARN. An event over Lambda's 6 MB request limit is
//! refused with 413 `RequestTooLargeException` without calling the handler.
//! Signatures are not checked.

use crate::sync::Unpoisoned;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Lambda's limit on a synchronous invocation's request payload.
pub const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// How the server answers one invocation.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The function returned this payload.
    Ok(Bytes),
    /// The function failed (`X-Amz-Function-Error: kind`) with this payload.
    FunctionError { kind: String, payload: Bytes },
    /// The Invoke API failed: status, error type, message.
    Status(u16, String, String),
    /// Answers after a delay, like a slow function.
    Delay(Duration, Box<Reply>),
}

impl Reply {
    /// Lambda's answer for a function that does not exist.
    pub fn not_found(name: &str) -> Reply {
        let arn = if name.starts_with("arn:") {
            name.to_owned()
        } else {
            crate::aws::local_function_arn(crate::aws::DEFAULT_REGION, name)
        };
        Reply::Status(
            404,
            "ResourceNotFoundException".into(),
            format!("Function not found: {arn}"),
        )
    }
}

type Handler = dyn Fn(&str, Bytes) -> Reply + Send + Sync;
/// Told each request's arrival and answer times (ns since the epoch).
pub type SpanHook = dyn Fn(u128, u128) + Send + Sync;

#[derive(Clone)]
struct Shared {
    handler: Arc<Handler>,
    invocations: Arc<Mutex<Vec<(String, Bytes)>>>,
}

/// A running server; it stops when dropped.
pub struct LambdaServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub url: String,
    invocations: Arc<Mutex<Vec<(String, Bytes)>>>,
    stop: CancellationToken,
}

impl LambdaServer {
    /// Serves on a free port of 127.0.0.1 until dropped;
    /// `handler(function_name, payload)` decides each answer.
    pub async fn start(
        handler: impl Fn(&str, Bytes) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<LambdaServer> {
        Self::start_on("127.0.0.1:0".parse().expect("an address"), handler).await
    }

    /// Serves on `addr` (port 0: any free port) until dropped.
    pub async fn start_on(
        addr: SocketAddr,
        handler: impl Fn(&str, Bytes) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<LambdaServer> {
        Self::start_timed(addr, handler, None).await
    }

    /// [`Self::start_on`], and `on_span(arrived_ns, answered_ns)` after each
    /// request: from its headers' arrival to its answer (delays included),
    /// for `bench`'s function-busy share and invoke gap.
    pub async fn start_timed(
        addr: SocketAddr,
        handler: impl Fn(&str, Bytes) -> Reply + Send + Sync + 'static,
        on_span: Option<Arc<SpanHook>>,
    ) -> std::io::Result<LambdaServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            handler: Arc::new(handler),
            invocations: Arc::default(),
        };
        let invocations = shared.invocations.clone();
        let app = Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .with_state(shared)
            // Larger than Lambda's limit, so the server can answer as Lambda does.
            .layer(axum::extract::DefaultBodyLimit::max(4 * MAX_REQUEST_BYTES));
        let app = match on_span {
            None => app,
            Some(hook) => app.layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let hook = hook.clone();
                    async move {
                        let arrived = now_ns();
                        let response = next.run(request).await;
                        hook(arrived, now_ns());
                        response
                    }
                },
            )),
        };
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!("lambda server stopped: {e}");
            }
        });
        Ok(LambdaServer {
            addr,
            url: format!("http://{addr}"),
            invocations,
            stop,
        })
    }

    /// Every invocation the handler was asked about so far, in order:
    /// (function name, payload). Events refused for their size are not here.
    pub fn invocations(&self) -> Vec<(String, Bytes)> {
        self.invocations.locked().clone()
    }

    /// Waits until the server is stopped from elsewhere (never, for the CLI).
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }
}

impl Drop for LambdaServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn invoke(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    payload: Bytes,
) -> Response {
    if payload.len() > MAX_REQUEST_BYTES {
        return respond(Reply::Status(
            413,
            "RequestTooLargeException".into(),
            format!(
                "Request must be smaller than {MAX_REQUEST_BYTES} bytes for the InvokeFunction operation"
            ),
        ));
    }
    shared
        .invocations
        .locked()
        .push((name.clone(), payload.clone()));
    let mut reply = (shared.handler)(&name, payload);
    while let Reply::Delay(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    respond(reply)
}

fn respond(reply: Reply) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-RequestId",
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("ascii"),
    );
    headers.insert(
        "X-Amz-Executed-Version",
        HeaderValue::from_static("$LATEST"),
    );
    match reply {
        Reply::Ok(body) => {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            (StatusCode::OK, headers, body).into_response()
        }
        Reply::FunctionError { kind, payload } => {
            if let Ok(v) = HeaderValue::from_str(&kind) {
                headers.insert("X-Amz-Function-Error", v);
            }
            (StatusCode::OK, headers, payload).into_response()
        }
        Reply::Status(status, kind, message) => {
            if let Ok(v) = HeaderValue::from_str(&kind) {
                headers.insert("x-amzn-ErrorType", v);
            }
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            let origin = if status >= 500 { "Service" } else { "User" };
            let body = serde_json::json!({ "Type": origin, "Message": message }).to_string();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, headers, body).into_response()
        }
        Reply::Delay(..) => unreachable!("delays are waited out above"),
    }
}

/// The wall clock in nanoseconds since the epoch, as the spans of a hook
/// record it (the bench compares them with its own stamps).
pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}
