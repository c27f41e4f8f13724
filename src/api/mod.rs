//! Lambda's event-source-mapping REST API over [`crate::engine::Control`].
//!
//! The paths, bodies and errors are Lambda's (API version 2015-03-31), so
//! the AWS CLI and SDKs work against it with `--endpoint-url`. Requests are
//! checked for an AWS Signature Version 4 by one of `[api] access_keys`;
//! without keys the API serves loopback only and trusts its callers.
//! Beside it, under `/mqtrigger/v1`, is what an attached console needs
//! ([`watch`]); [`remote`] is that console's side.

pub mod client;
mod error;
pub mod remote;
mod routes;
pub mod sigv4;
pub mod watch;

pub use error::ApiError;
pub use routes::{EventSourceMappingConfiguration, ListEventSourceMappings};

use crate::engine::Control;
use anyhow::{Result, bail};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use sigv4::AccessKey;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Lambda refuses larger requests; so do we, before reading further.
const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// Refuses to expose an unauthenticated API beyond this machine.
pub fn check_listen(addr: SocketAddr, keys: &[AccessKey]) -> Result<()> {
    if !addr.ip().is_loopback() && keys.is_empty() {
        bail!(
            "refusing to serve the API on {addr} without [api] access_keys: anyone who can reach it could change the mappings. Add access_keys, or listen on 127.0.0.1"
        );
    }
    Ok(())
}

/// Binds `addr` (after [`check_listen`]); the caller then runs [`serve`].
pub async fn bind(addr: SocketAddr, keys: &[AccessKey]) -> Result<tokio::net::TcpListener> {
    check_listen(addr, keys)?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the API: {e}"))
}

/// Serves the API until `shutdown` is cancelled.
pub async fn serve(
    control: Control,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let keys = Arc::new(control.config().api.access_keys.clone());
    if keys.is_empty() {
        tracing::warn!("the API checks no signatures: add [api] access_keys to require them");
    }
    let app = watch::router(control.clone(), shutdown.clone())
        .merge(routes::router(control))
        .layer(middleware::from_fn_with_state(keys, authenticate));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// Checks the signature over the whole request, body included.
async fn authenticate(
    State(keys): State<Arc<Vec<AccessKey>>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_REQUEST_BYTES).await else {
        return ApiError::too_large(MAX_REQUEST_BYTES).into_response();
    };
    if !keys.is_empty() {
        let checked = sigv4::verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &body,
            &keys,
            sigv4::Scope::lambda(None),
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
