//! mqtrigger's API for operating the flow of a mapping, under
//! [`PREFIX`](super::watch::PREFIX), beside what the console reads:
//!
//! - `POST /mqtrigger/v1/mappings/{uuid}/pause`: take no new batch
//! - `POST /mqtrigger/v1/mappings/{uuid}/resume`: take batches again
//! - `POST /mqtrigger/v1/mappings/{uuid}/step`: one batch, then paused
//! - `GET  /mqtrigger/v1/mappings/{uuid}/messages?limit=N`: the ids of its
//!   newest messages, newest first (`{"Messages": [...]}`)
//! - `GET  /mqtrigger/v1/mappings/{uuid}/messages/{id}`: one message's
//!   history (`engine::history::Timeline`): arrivals, attempts, its end
//!
//! Each answers the mapping as Lambda's GetEventSourceMapping does, with
//! `"Mqtrigger": {"Paused": …}`. Signed and checked as every request is;
//! `--readonly` refuses them with 403.

use super::routes::EventSourceMappingConfiguration;
use super::watch::PREFIX;
use super::{ApiError, parse_uuid};
use crate::engine::Control;
use crate::engine::history::Timeline;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Json;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn router(control: Control) -> Router {
    let mapping = format!("{PREFIX}/mappings/{{uuid}}");
    Router::new()
        .route(&format!("{mapping}/pause"), post(pause))
        .route(&format!("{mapping}/resume"), post(resume))
        .route(&format!("{mapping}/step"), post(step))
        .route(&format!("{mapping}/messages"), get(messages))
        .route(&format!("{mapping}/messages/{{id}}"), get(message))
        .with_state(control)
}

type Answer = Result<Json<EventSourceMappingConfiguration>, ApiError>;

async fn pause(State(control): State<Control>, Path(uuid): Path<String>) -> Answer {
    let m = control.pause(parse_uuid(&uuid)?).await?;
    tracing::info!(uuid = %m.uuid, "mapping paused through the API");
    Ok(Json((&m).into()))
}

async fn resume(State(control): State<Control>, Path(uuid): Path<String>) -> Answer {
    let m = control.resume(parse_uuid(&uuid)?).await?;
    tracing::info!(uuid = %m.uuid, "mapping resumed through the API");
    Ok(Json((&m).into()))
}

async fn step(State(control): State<Control>, Path(uuid): Path<String>) -> Answer {
    let m = control.step(parse_uuid(&uuid)?).await?;
    tracing::info!(uuid = %m.uuid, "one batch let through a paused mapping through the API");
    Ok(Json((&m).into()))
}

/// The ids of a mapping's newest messages.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Messages {
    pub messages: Vec<String>,
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn messages(
    State(control): State<Control>,
    Path(uuid): Path<String>,
    Query(limit): Query<Limit>,
) -> Result<Json<Messages>, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    control.get(uuid)?;
    let limit = limit.limit.unwrap_or(100);
    Ok(Json(Messages {
        messages: control.recent_messages(uuid, limit),
    }))
}

async fn message(
    State(control): State<Control>,
    Path((uuid, id)): Path<(String, String)>,
) -> Result<Json<Timeline>, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    Ok(Json(control.message_history(uuid, &id)?))
}
