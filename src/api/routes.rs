//! The five event-source-mapping operations and their JSON shapes.

use super::ApiError;
use crate::engine::Control;
use crate::mapping::{Mapping, MappingSpec, MappingUpdate, SourceAccessConfiguration, State};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const COLLECTION: &str = "/2015-03-31/event-source-mappings/";
const DEFAULT_MAX_ITEMS: usize = 100;
const MAX_ITEMS: usize = 10_000;

pub fn router(control: Control) -> Router {
    let item = "/2015-03-31/event-source-mappings/{uuid}";
    Router::new()
        .route(COLLECTION, get(list).post(create))
        .route(COLLECTION.trim_end_matches('/'), get(list).post(create))
        .route(item, get(fetch).put(update).delete(delete))
        .fallback(|| async {
            ApiError::not_found(
                "mqtrigger serves Lambda's event-source-mappings API (/2015-03-31/event-source-mappings/) and its own under /mqtrigger/v1/",
            )
        })
        .with_state(control)
}

/// Lambda's EventSourceMappingConfiguration, as the SDKs read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSourceMappingConfiguration {
    #[serde(rename = "UUID")]
    pub uuid: Uuid,
    pub batch_size: u32,
    /// Absent while the window is Lambda's default for MQ, half a second,
    /// which this field (whole seconds) cannot say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_batching_window_in_seconds: Option<u32>,
    pub event_source_arn: String,
    pub function_arn: String,
    /// Epoch seconds.
    pub last_modified: f64,
    pub last_processing_result: String,
    pub state: State,
    pub state_transition_reason: String,
    pub queues: Vec<String>,
    pub source_access_configurations: Vec<SourceAccessConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_criteria: Option<crate::mapping::FilterCriteria>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_config: Option<crate::mapping::ScalingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response_types: Option<Vec<crate::mapping::FunctionResponseType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_config: Option<crate::mapping::DestinationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_config: Option<crate::mapping::MetricsConfig>,
    #[serde(default, rename = "KMSKeyArn", skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// `arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID`, in the
    /// function's region and account: what TagResource takes.
    #[serde(default)]
    pub event_source_mapping_arn: String,
    /// What mqtrigger adds beyond Lambda's fields, under one key of its
    /// own so that no later field of Lambda's can clash with it. The SDKs
    /// and the AWS CLI pass over keys they do not know.
    #[serde(default, rename = "Mqtrigger", skip_serializing_if = "Option::is_none")]
    pub mqtrigger: Option<Extra>,
}

/// mqtrigger's own fields of a mapping, in the API's answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Extra {
    /// An operator paused it: it takes no new batch (State stays Enabled).
    pub paused: bool,
}

impl From<&Mapping> for EventSourceMappingConfiguration {
    fn from(m: &Mapping) -> Self {
        // A stop code's sentence says what to fix; Lambda puts it here too.
        let reason = match &m.state_detail {
            Some(detail) => format!("{}: {detail}", m.state_transition_reason),
            None => m.state_transition_reason.to_string(),
        };
        EventSourceMappingConfiguration {
            uuid: m.uuid,
            batch_size: m.spec.batch_size(),
            maximum_batching_window_in_seconds: m.spec.maximum_batching_window_in_seconds,
            event_source_arn: m.spec.event_source_arn.clone(),
            function_arn: m.function_arn.clone(),
            last_modified: m.last_modified.timestamp_millis() as f64 / 1000.0,
            last_processing_result: m.last_processing_result.clone(),
            state: m.state,
            state_transition_reason: reason,
            queues: m.spec.queues.clone(),
            source_access_configurations: m.spec.source_access_configurations.clone(),
            filter_criteria: m.spec.filter_criteria.clone(),
            scaling_config: m.spec.scaling_config,
            function_response_types: m.spec.function_response_types.clone(),
            destination_config: m.spec.destination_config.clone(),
            metrics_config: m.spec.metrics_config.clone(),
            kms_key_arn: m.spec.kms_key_arn.clone(),
            event_source_mapping_arn: m.arn(),
            mqtrigger: Some(Extra { paused: m.paused }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListEventSourceMappings {
    pub event_source_mappings: Vec<EventSourceMappingConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListQuery {
    function_name: Option<String>,
    event_source_arn: Option<String>,
    marker: Option<String>,
    max_items: Option<String>,
}

/// What a CreateEventSourceMapping body must be.
const CREATE_FIELDS: &str = "a JSON object of CreateEventSourceMapping's fields (FunctionName, EventSourceArn, Queues, SourceAccessConfigurations, …)";
/// What an UpdateEventSourceMapping body must be.
const UPDATE_FIELDS: &str =
    "a JSON object of UpdateEventSourceMapping's fields (BatchSize, Enabled, FilterCriteria, …)";

/// CreateEventSourceMapping's and UpdateEventSourceMapping's fields that
/// Lambda takes for streams, Kafka or DocumentDB and refuses for Amazon MQ.
const NOT_FOR_MQ: &[&str] = &[
    "ParallelizationFactor",
    "StartingPosition",
    "StartingPositionTimestamp",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
    "Topics",
    "SelfManagedEventSource",
    "AmazonManagedKafkaEventSourceConfig",
    "SelfManagedKafkaEventSourceConfig",
    "DocumentDBEventSourceConfig",
    "ProvisionedPollerConfig",
];

/// A body as a filled `--generate-cli-skeleton` gives it: the fields Lambda
/// refuses for MQ are refused by name (Lambda's InvalidParameterValueException),
/// unless null (a skeleton's field left out); the rest as it came.
fn without_null_stream_fields(body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, ApiError> {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(body) else {
        // parse_body says what is wrong with it.
        return Ok(body.into());
    };
    let mut dropped = false;
    for name in NOT_FOR_MQ {
        match fields.get(*name) {
            None => {}
            Some(serde_json::Value::Null) => {
                fields.remove(*name);
                dropped = true;
            }
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "{name} is not supported for an Amazon MQ event source (Lambda takes it for streams, Kafka or DocumentDB)"
                )));
            }
        }
    }
    Ok(match dropped {
        true => serde_json::to_vec(&fields).unwrap_or_default().into(),
        false => body.into(),
    })
}

/// The body as `T`. Anything else is Lambda's InvalidParameterValueException
/// saying what was expected: serde's own sentence names types, not fields.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(format!(
            "The request body is not JSON ({e}); it must be {expected}"
        ))
    })?;
    let shape = match &value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("an array"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
    };
    if let Some(shape) = shape {
        return Err(ApiError::invalid(format!(
            "The request body must be {expected}; it is {shape}"
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        let field = match e.classify() {
            serde_json::error::Category::Data => field_before(body, e.line(), e.column()),
            _ => None,
        };
        let what = e.to_string();
        let named = what.starts_with("invalid type") || what.starts_with("invalid value");
        match field {
            Some(field) if named => ApiError::invalid(format!("{field}: {what}")),
            _ => ApiError::invalid(format!("The request body: {what}")),
        }
    })
}

/// The key of the JSON value that ends at `line`:`column` (serde_json's
/// position of a type error): the last `"Key":` before it.
fn field_before(body: &[u8], line: usize, column: usize) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let line_text = text.lines().nth(line.checked_sub(1)?)?;
    let before = line_text.get(..column.min(line_text.len()))?;
    let colon = before.rfind("\":")?;
    let key = &before[..colon];
    let start = key.rfind('"')? + 1;
    Some(key[start..].to_owned())
}

fn parse_uuid(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::not_found(format!("The event source mapping {text} does not exist")))
}

fn answer(status: StatusCode, m: &Mapping) -> Response {
    (status, Json(EventSourceMappingConfiguration::from(m))).into_response()
}

async fn create(Shared(control): Shared<Control>, body: Bytes) -> Result<Response, ApiError> {
    let spec: MappingSpec = parse_body(&without_null_stream_fields(&body)?, CREATE_FIELDS)?;
    let m = control.create(spec).await?;
    tracing::info!(uuid = %m.uuid, function = %m.spec.function_name, queue = m.spec.queue(), "mapping created through the API");
    Ok(answer(StatusCode::ACCEPTED, &m))
}

async fn fetch(
    Shared(control): Shared<Control>,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    let m = control.get(parse_uuid(&uuid)?)?;
    Ok(answer(StatusCode::OK, &m))
}

async fn update(
    Shared(control): Shared<Control>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    let change: MappingUpdate = parse_body(&without_null_stream_fields(&body)?, UPDATE_FIELDS)?;
    let m = control.update(uuid, change).await?;
    tracing::info!(%uuid, "mapping updated through the API");
    Ok(answer(StatusCode::ACCEPTED, &m))
}

async fn delete(
    Shared(control): Shared<Control>,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    let m = control.delete(uuid).await?;
    tracing::info!(%uuid, "mapping deleted through the API");
    Ok(answer(StatusCode::ACCEPTED, &m))
}

async fn list(
    Shared(control): Shared<Control>,
    Query(query): Query<ListQuery>,
) -> Result<Json<ListEventSourceMappings>, ApiError> {
    let max_items = match &query.max_items {
        None => DEFAULT_MAX_ITEMS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_ITEMS).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!("MaxItems {text} must be 1 to {MAX_ITEMS}"))
            })?,
    };
    let function = query
        .function_name
        .as_ref()
        .map(|f| control.resolve_function(f).unwrap_or_else(|| f.clone()));
    let mut mappings: Vec<Mapping> = control
        .list()?
        .into_iter()
        .filter(|m| function.as_ref().is_none_or(|f| &m.spec.function_name == f))
        .filter(|m| {
            query
                .event_source_arn
                .as_ref()
                .is_none_or(|a| &m.spec.event_source_arn == a)
        })
        .collect();
    // The marker is the last UUID of the previous page: stable while
    // mappings come and go between pages.
    mappings.sort_by_key(|m| m.uuid);
    let start = match &query.marker {
        None => 0,
        Some(marker) => {
            let after = Uuid::parse_str(marker)
                .map_err(|_| ApiError::invalid(format!("Marker {marker} is not valid")))?;
            mappings.partition_point(|m| m.uuid <= after)
        }
    };
    let page: Vec<&Mapping> = mappings.iter().skip(start).take(max_items).collect();
    let next_marker = match page.last() {
        Some(last) if start + page.len() < mappings.len() => Some(last.uuid.to_string()),
        _ => None,
    };
    Ok(Json(ListEventSourceMappings {
        event_source_mappings: page.into_iter().map(Into::into).collect(),
        next_marker,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &str) -> ApiError {
        parse_body::<MappingSpec>(body.as_bytes(), CREATE_FIELDS).unwrap_err()
    }

    #[test]
    fn a_body_of_the_wrong_shape_says_what_was_expected() {
        let e = refusal("[1,2,3]");
        assert_eq!(e.kind, "InvalidParameterValueException");
        assert_eq!(
            e.message,
            format!("The request body must be {CREATE_FIELDS}; it is an array")
        );
        assert!(
            refusal("{")
                .message
                .starts_with("The request body is not JSON (")
        );
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        let e = refusal(
            r#"{"FunctionName":"echo","EventSourceArn":"arn:x","Queues":["q"],"BatchSize":"ten"}"#,
        );
        assert!(
            e.message
                .starts_with(r#"BatchSize: invalid type: string "ten", expected u32"#),
            "{}",
            e.message
        );
        let e = refusal(r#"{"FunctionName":"echo","Bogus":1}"#);
        assert!(e.message.contains("unknown field `Bogus`"), "{}", e.message);
    }

    #[test]
    fn the_half_second_default_window_is_not_answered_as_zero() {
        let spec: MappingSpec = serde_json::from_str(
            r#"{"FunctionName":"echo","EventSourceArn":"arn:x","Queues":["q"],"SourceAccessConfigurations":[]}"#,
        )
        .unwrap();
        let mut m = Mapping::new(spec, "arn:f".into());
        let json = serde_json::to_value(EventSourceMappingConfiguration::from(&m)).unwrap();
        assert!(
            json.get("MaximumBatchingWindowInSeconds").is_none(),
            "{json}"
        );
        m.spec.maximum_batching_window_in_seconds = Some(0);
        let json = serde_json::to_value(EventSourceMappingConfiguration::from(&m)).unwrap();
        assert_eq!(
            json["MaximumBatchingWindowInSeconds"], 0,
            "a window set to 0 is 0"
        );
    }
}
