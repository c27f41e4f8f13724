//! Lambda's tagging API, for event source mappings: TagResource,
//! UntagResource and ListTags on a mapping's EventSourceMappingArn
//! (`arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID`), as the AWS
//! CLI and the SDKs call them.
//!
//! - `GET    /2017-03-31/tags/{arn}`: `{"Tags": {…}}`
//! - `POST   /2017-03-31/tags/{arn}`: `{"Tags": {…}}` added, 204
//! - `DELETE /2017-03-31/tags/{arn}?tagKeys=K&tagKeys=…`: removed, 204

use super::ApiError;
use crate::engine::Control;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn router(control: Control) -> Router {
    Router::new()
        .route("/2017-03-31/tags/{arn}", get(list).post(tag).delete(untag))
        .with_state(control)
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tags {
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// The mapping an ARN names; only event source mappings are tagged here.
fn mapping_of(arn: &str) -> Result<Uuid, ApiError> {
    arn.split_once(":event-source-mapping:")
        .filter(|(head, _)| head.starts_with("arn:aws:lambda:"))
        .and_then(|(_, uuid)| Uuid::parse_str(uuid).ok())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{arn} is not an event source mapping's ARN (arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID); mqtrigger tags its mappings only"
            ))
        })
}

async fn list(
    State(control): State<Control>,
    Path(arn): Path<String>,
) -> Result<Json<Tags>, ApiError> {
    let m = control.get(mapping_of(&arn)?)?;
    Ok(Json(Tags {
        tags: m.spec.tags.unwrap_or_default(),
    }))
}

async fn tag(
    State(control): State<Control>,
    Path(arn): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let asked: Tags = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "the request body must be {{\"Tags\": {{\"key\": \"value\", …}}}}: {e}"
        ))
    })?;
    control.tag(mapping_of(&arn)?, asked.tags).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn untag(
    State(control): State<Control>,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let keys: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "tagKeys")
        .map(|(_, v)| v.into_owned())
        .collect();
    control.untag(mapping_of(&arn)?, keys).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
