//! mqtrigger's API for operating the flow of a mapping, under
//! [`PREFIX`](super::watch::PREFIX), beside what the console reads:
//!
//! - `POST /mqtrigger/v1/mappings/{uuid}/pause`: take no new batch
//! - `POST /mqtrigger/v1/mappings/{uuid}/resume`: take batches again
//! - `POST /mqtrigger/v1/mappings/{uuid}/step`: one batch, then paused
//!
//! Each answers the mapping as Lambda's GetEventSourceMapping does, with
//! `"Mqtrigger": {"Paused": …}`. Signed and checked as every request is;
//! `--readonly` refuses them with 403.

use super::ApiError;
use super::routes::EventSourceMappingConfiguration;
use super::watch::PREFIX;
use crate::engine::Control;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Json;
use axum::routing::post;
use uuid::Uuid;

pub fn router(control: Control) -> Router {
    let mapping = format!("{PREFIX}/mappings/{{uuid}}");
    Router::new()
        .route(&format!("{mapping}/pause"), post(pause))
        .route(&format!("{mapping}/resume"), post(resume))
        .route(&format!("{mapping}/step"), post(step))
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

fn parse_uuid(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::invalid(format!("{text} is not an event source mapping UUID")))
}
