//! A mapping's dead letters in bulk, under [`PREFIX`](super::watch::PREFIX):
//!
//! - `GET    /mqtrigger/v1/mappings/{uuid}/dead-letters?text=&reason=&since=&until=`:
//!   the letters the filter selects, newest first, with their records
//! - `GET    …/dead-letters/export?…`: the same as JSON Lines
//!   (`application/x-ndjson`), a letter a line (`engine::bulk::export_line`)
//! - `POST   …/dead-letters/bulk`: `{"Action": "Replay"|"Republish"|"Delete",
//!   "Filter": {"Text", "Reason", "Since", "Until", "Ids"}}`, answered with
//!   what was done and what failed (`engine::bulk::BulkSummary`)
//! - `DELETE …/dead-letters/{id}`: one letter out of the journal
//!
//! `reason` is a word: retries, expired, too large; times are RFC 3339.
//! The changes are refused by `--readonly` as every change is.

use super::watch::PREFIX;
use super::{ApiError, parse_uuid};
use crate::engine::Control;
use crate::engine::bulk::{BulkAction, BulkSummary, LetterFilter, export_line};
use crate::store::DeadLetter;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub fn router(control: Control) -> Router {
    let letters = format!("{PREFIX}/mappings/{{uuid}}/dead-letters");
    Router::new()
        .route(&letters, get(list))
        .route(&format!("{letters}/export"), get(export))
        .route(&format!("{letters}/bulk"), post(bulk))
        .route(&format!("{letters}/{{id}}"), delete(remove))
        .with_state(control)
}

/// The filter as a query string gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Selected {
    text: Option<String>,
    reason: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl From<Selected> for LetterFilter {
    fn from(s: Selected) -> Self {
        LetterFilter {
            text: s.text.filter(|t| !t.is_empty()),
            reason: s.reason.filter(|r| !r.is_empty()),
            since: s.since,
            until: s.until,
            ids: None,
        }
    }
}

/// The bulk request's body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BulkRequest {
    pub action: BulkAction,
    #[serde(default)]
    pub filter: LetterFilter,
}

async fn list(
    State(control): State<Control>,
    Path(uuid): Path<String>,
    Query(selected): Query<Selected>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    Ok(Json(control.dead_letters_matching(uuid, &selected.into())?))
}

async fn export(
    State(control): State<Control>,
    Path(uuid): Path<String>,
    Query(selected): Query<Selected>,
) -> Result<Response, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    let letters = control.dead_letters_matching(uuid, &selected.into())?;
    let mut body = String::new();
    // Oldest first, as they died.
    for letter in letters.iter().rev() {
        body.push_str(&export_line(letter));
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

async fn bulk(
    State(control): State<Control>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Json<BulkSummary>, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    let asked: BulkRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "the request body must be {{\"Action\": \"Replay\"|\"Republish\"|\"Delete\", \"Filter\": {{\"Text\", \"Reason\", \"Since\", \"Until\", \"Ids\"}}}}: {e}"
        ))
    })?;
    let summary = control
        .bulk(uuid, &asked.filter, asked.action, |_, _| {})
        .await?;
    tracing::info!(%uuid, "dead letters in bulk through the API: {}", summary.sentence(asked.action));
    Ok(Json(summary))
}

async fn remove(
    State(control): State<Control>,
    Path((uuid, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    control.delete_dead_letter(uuid, id)?;
    tracing::info!(%uuid, id, "dead letter deleted from the journal through the API");
    Ok(Json(serde_json::json!({ "deleted": id })).into_response())
}
