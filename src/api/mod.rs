//! Lambda's event-source-mapping REST API over [`crate::engine::Control`].
//!
//! The paths, bodies and errors are Lambda's (API version 2015-03-31), so
//! the AWS CLI and SDKs work against it with `--endpoint-url`. Requests are
//! checked for an AWS Signature Version 4 by one of `[api] access_keys`;
//! without keys the API serves loopback only and trusts the tools of this
//! machine, but not the web pages its browsers show ([`guard`]).
//! Beside it, under `/mqtrigger/v1`, is what an attached console needs
//! ([`watch`]); [`remote`] is that console's side.

pub mod client;
mod error;
pub mod guard;
mod letters;
mod operate;
pub mod remote;
mod routes;
pub mod sigv4;
mod tags;
pub mod watch;

pub use error::ApiError;
pub use routes::{EventSourceMappingConfiguration, ListEventSourceMappings};

use crate::engine::Control;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use guard::Guard;
use sigv4::AccessKey;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Lambda refuses larger requests; so do we, before reading further.
const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// Why the API does not listen.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "refusing to serve the API on {0} without [api] access_keys: anyone who can reach it could change the mappings. Add access_keys, or listen on 127.0.0.1"
    )]
    Keyless(SocketAddr),
    #[error("cannot listen on {addr} for the API")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Refuses to expose an unauthenticated API beyond this machine. Every way
/// to listen (`serve --api`, `console --api`, `[api] listen`, a host name
/// resolved to the one address bound) goes through [`bind`], which checks
/// the very address it binds.
pub fn check_listen(addr: SocketAddr, keys: &[AccessKey]) -> Result<(), ListenError> {
    if !addr.ip().is_loopback() && keys.is_empty() {
        return Err(ListenError::Keyless(addr));
    }
    Ok(())
}

/// Binds `addr` (after [`check_listen`]); the caller then runs [`serve`].
pub async fn bind(
    addr: SocketAddr,
    keys: &[AccessKey],
) -> Result<tokio::net::TcpListener, ListenError> {
    check_listen(addr, keys)?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind { addr, source })
}

/// What every request passes before a route sees it.
struct Gate {
    keys: Vec<AccessKey>,
    /// `[api] region`: the region signatures must be scoped to, if any.
    region: Option<String>,
    guard: Guard,
}

/// Serves the API until `shutdown` is cancelled.
pub async fn serve(
    control: Control,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = &control.config().api;
    let gate = Arc::new(Gate {
        keys: settings.access_keys.clone(),
        region: settings.region.clone(),
        guard: Guard::new(settings, listener.local_addr()?),
    });
    if gate.keys.is_empty() {
        tracing::warn!(
            "the API checks no signatures: add [api] access_keys to require them (until then it takes requests from this machine's tools only, not from web pages)"
        );
    }
    let app = watch::router(control.clone(), shutdown.clone())
        .merge(operate::router(control.clone()))
        .merge(letters::router(control.clone()))
        .merge(tags::router(control.clone()))
        .merge(routes::router(control))
        .layer(middleware::from_fn_with_state(gate, admit));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await?;
    Ok(())
}

/// The guard's rules ([`guard`]), then the signature over the whole
/// request, body included.
async fn admit(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (parts, body) = request.into_parts();
    let refuse = |refused: guard::Refused| {
        gate.guard.log(&refused, peer, &parts);
        ApiError::from(refused).into_response()
    };
    // Before the body is read: a refused request is not worth 6 MB.
    if let Err(refused) = gate.guard.check_head(&parts) {
        return refuse(refused);
    }
    let Ok(body) = to_bytes(body, MAX_REQUEST_BYTES).await else {
        return ApiError::too_large(MAX_REQUEST_BYTES).into_response();
    };
    if let Err(refused) = gate.guard.check_body(&parts, body.is_empty()) {
        return refuse(refused);
    }
    if !gate.keys.is_empty() {
        let checked = sigv4::verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &body,
            &gate.keys,
            sigv4::Scope::lambda(gate.region.as_deref()),
            chrono::Utc::now(),
        );
        if let Err(e) = checked {
            let detail = e.detail().map(|d| format!(" ({d})")).unwrap_or_default();
            tracing::warn!(method = %parts.method, path = parts.uri.path(), "API request refused: {e}{detail}");
            return ApiError::forbidden(&e).into_response();
        }
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// A mapping's UUID from a path of mqtrigger's own API.
fn parse_uuid(text: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text)
        .map_err(|_| ApiError::invalid(format!("{text} is not an event source mapping UUID")))
}
