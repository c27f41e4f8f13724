//! mqtrigger's own API, under [`PREFIX`] beside Lambda's: what a console
//! attached to this service needs (`console --endpoint`).
//!
//! - `GET  /mqtrigger/v1/service`: what runs here ([`ServiceInfo`])
//! - `GET  /mqtrigger/v1/snapshot`: every mapping, its counts, the dead letters
//! - `GET  /mqtrigger/v1/stats`: every mapping's counts, and with a shared
//!   store its owner ([`EngineStats`]; `mqtrigger mappings list` reads it)
//! - `GET  /mqtrigger/v1/instances`: the instances on a shared store, what
//!   each runs, when each was last seen ([`Instances`])
//! - `GET  /mqtrigger/v1/events`: server-sent events, each a [`FeedItem`]
//!   as JSON: a snapshot first, then the engine's events (with batch ids),
//!   a new snapshot whenever the watcher fell behind
//! - `GET  /mqtrigger/v1/mappings/{uuid}/batches`: its recent batches
//! - `GET  /mqtrigger/v1/dead-letters?mapping=UUID&limit=N`, with their records
//! - `POST /mqtrigger/v1/mappings/{uuid}/replay`: invoke with this event
//! - `POST /mqtrigger/v1/mappings/{uuid}/dead-letters/{id}/replay` and `…/republish`
//! - `POST /mqtrigger/v1/mappings/{uuid}/filter-dry-run`: which of the
//!   mapping's dead letters (and the bodies given) a FilterCriteria passes
//!
//! Requests are signed as Lambda's are (the same middleware), errors are
//! Lambda's shape, and `--readonly` refuses the POSTs with 403.

use super::{ApiError, parse_uuid};
use crate::config::{BrokerConfig, BrokerEngine, Config};
use crate::engine::stats::BatchRow;
use crate::engine::{Control, EngineStats, FeedItem, Snapshot};
use crate::store::{DeadLetter, Instance};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const PREFIX: &str = "/mqtrigger/v1";
/// Changes whenever a shape here changes: a console speaks only its own.
pub const PROTOCOL: u32 = 2;
/// A comment on an idle event stream this often, so a watcher can tell a
/// quiet service from a vanished one.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
const MAX_DEAD_LETTERS: usize = 10_000;

/// What runs here, and what the console's add-mapping form may pick from:
/// names only, never a secret's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// "mqtrigger": anything else at this URL is not one.
    pub service: String,
    pub version: String,
    pub protocol: u32,
    pub readonly: bool,
    /// With a store shared by several instances: this one's id.
    pub instance: Option<Uuid>,
    pub max_redeliveries: u32,
    pub brokers: Vec<BrokerInfo>,
    pub functions: Vec<String>,
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub name: String,
    pub engine: BrokerEngine,
    pub arn: String,
}

impl ServiceInfo {
    pub fn of(control: &Control) -> ServiceInfo {
        let config = control.config();
        ServiceInfo {
            service: "mqtrigger".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL,
            readonly: control.is_readonly(),
            instance: control.instance(),
            max_redeliveries: config.engine.max_redeliveries,
            brokers: config
                .brokers
                .iter()
                .map(|b| BrokerInfo {
                    name: b.name.clone(),
                    engine: b.engine,
                    arn: b.arn.clone(),
                })
                .collect(),
            functions: config.functions.keys().cloned().collect(),
            secrets: config.secrets.keys().cloned().collect(),
        }
    }

    /// The service's config as far as a console may know it: the names
    /// the mapping rules check against (`validation`), with empty values.
    pub fn config(&self) -> Config {
        let mut config = Config {
            brokers: self
                .brokers
                .iter()
                .map(|b| BrokerConfig {
                    name: b.name.clone(),
                    engine: b.engine,
                    arn: b.arn.clone(),
                    endpoints: Vec::new(),
                    ca_file: None,
                    admin_url: None,
                    admin_secret: None,
                })
                .collect(),
            ..Config::default()
        };
        config.engine.max_redeliveries = self.max_redeliveries;
        for name in &self.functions {
            config.functions.insert(name.clone(), Default::default());
        }
        for name in &self.secrets {
            config
                .secrets
                .insert(name.clone(), crate::config::Secret::unknown());
        }
        config
    }
}

#[derive(Clone)]
struct Watch {
    control: Control,
    /// Cancelled when the service stops: event streams end, so stopping
    /// does not wait for the watchers to hang up.
    shutdown: CancellationToken,
}

/// The routes under [`PREFIX`] (no fallback: Lambda's router has it).
pub fn router(control: Control, shutdown: CancellationToken) -> Router {
    let mapping = format!("{PREFIX}/mappings/{{uuid}}");
    Router::new()
        .route(&format!("{PREFIX}/service"), get(service))
        .route(&format!("{PREFIX}/snapshot"), get(snapshot))
        .route(&format!("{PREFIX}/stats"), get(stats))
        .route(&format!("{PREFIX}/instances"), get(instances))
        .route(&format!("{PREFIX}/events"), get(events))
        .route(&format!("{PREFIX}/dead-letters"), get(dead_letters))
        .route(&format!("{mapping}/batches"), get(batches))
        .route(&format!("{mapping}/replay"), post(replay_event))
        .route(
            &format!("{mapping}/dead-letters/{{id}}/replay"),
            post(replay),
        )
        .route(
            &format!("{mapping}/dead-letters/{{id}}/republish"),
            post(republish),
        )
        .route(&format!("{mapping}/filter-dry-run"), post(dry_run))
        .with_state(Watch { control, shutdown })
}

async fn service(State(w): State<Watch>) -> Json<ServiceInfo> {
    Json(ServiceInfo::of(&w.control))
}

async fn snapshot(State(w): State<Watch>) -> Result<Json<Snapshot>, ApiError> {
    let (snapshot, _) = w
        .control
        .snapshot()
        .map_err(crate::engine::ControlError::from)?;
    Ok(Json(snapshot))
}

async fn stats(State(w): State<Watch>) -> Json<EngineStats> {
    Json(w.control.all_stats())
}

/// The instances sharing this service's store (none with its own store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instances {
    /// The instance that answered.
    pub this: Option<Uuid>,
    pub instances: Vec<Instance>,
}

async fn instances(State(w): State<Watch>) -> Json<Instances> {
    Json(Instances {
        this: w.control.instance(),
        instances: w.control.instances(),
    })
}

async fn events(State(w): State<Watch>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let items = crate::engine::follow(&w.control);
    let stream = futures::stream::unfold(items, |mut items| async move {
        items.recv().await.map(|item| (item, items))
    })
    .map(|item| Ok(sse_event(&item)))
    .take_until(w.shutdown.cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// One item as one server-sent event, named for its kind.
fn sse_event(item: &FeedItem) -> Event {
    let name = match item {
        FeedItem::Synced(_) => "synced",
        FeedItem::Event(_) => "event",
        FeedItem::DeadLetters(_) => "dead-letters",
        FeedItem::Lost(_) => "lost",
    };
    match serde_json::to_string(item) {
        Ok(json) => Event::default().event(name).data(json),
        // Nothing the engine holds fails to serialize; say so if it did.
        Err(e) => Event::default().event("lost").data(
            serde_json::to_string(&FeedItem::Lost(format!("the service could not send: {e}")))
                .unwrap_or_default(),
        ),
    }
}

async fn batches(
    State(w): State<Watch>,
    Path(uuid): Path<String>,
) -> Result<Json<Vec<BatchRow>>, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    w.control.get(uuid)?;
    Ok(Json(w.control.stats(uuid).recent.into_iter().collect()))
}

#[derive(Deserialize)]
struct LetterQuery {
    mapping: Option<String>,
    limit: Option<usize>,
}

async fn dead_letters(
    State(w): State<Watch>,
    Query(q): Query<LetterQuery>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let mapping = q.mapping.as_deref().map(parse_uuid).transpose()?;
    let limit = q.limit.unwrap_or(crate::engine::follow::DEAD_LETTERS_SHOWN);
    if !(1..=MAX_DEAD_LETTERS).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit {limit} must be 1 to {MAX_DEAD_LETTERS}"
        )));
    }
    let letters = w
        .control
        .store()
        .dead_letters(mapping, limit)
        .map_err(crate::engine::ControlError::from)?;
    Ok(Json(letters))
}

/// What a replay got back from the function.
#[derive(Debug, Serialize, Deserialize)]
pub struct Replayed {
    pub response: String,
}

async fn replay_event(
    State(w): State<Watch>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Json<Replayed>, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return Err(ApiError::invalid(
            "the request body must be the event to invoke the function with, as JSON",
        ));
    }
    let response = w.control.replay_event(uuid, body).await?;
    tracing::info!(%uuid, "batch replayed through the API");
    Ok(Json(Replayed { response }))
}

async fn replay(
    State(w): State<Watch>,
    Path((uuid, id)): Path<(String, i64)>,
) -> Result<Json<Replayed>, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    let response = w.control.replay(uuid, id).await?;
    tracing::info!(%uuid, id, "dead letter replayed through the API");
    Ok(Json(Replayed { response }))
}

async fn republish(
    State(w): State<Watch>,
    Path((uuid, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    w.control.republish(uuid, id).await?;
    tracing::info!(%uuid, id, "dead letter republished through the API");
    Ok(Json(serde_json::json!({ "republished": id })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DryRun {
    filter_criteria: crate::mapping::FilterCriteria,
    /// More bodies to try, base64.
    #[serde(default)]
    bodies: Vec<String>,
}

/// One body tried: which filter passed it (1-based), or none.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tried {
    pub source: String,
    pub passed_by: Option<usize>,
}

async fn dry_run(
    State(w): State<Watch>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Json<Vec<Tried>>, ApiError> {
    use base64::Engine;
    let uuid = parse_uuid(&uuid)?;
    w.control.get(uuid)?;
    let asked: DryRun = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "the request body must be {{\"FilterCriteria\": {{\"Filters\": [...]}}, \"Bodies\": [base64...]}}: {e}"
        ))
    })?;
    // With no filter every body would pass, which tries nothing.
    let filters = asked
        .filter_criteria
        .compile()
        .map_err(ApiError::invalid)?
        .ok_or_else(|| ApiError::invalid("FilterCriteria must hold at least one filter to try"))?;
    let mut tried = Vec::new();
    for (i, text) in asked.bodies.iter().enumerate() {
        let body = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| ApiError::invalid(format!("Bodies[{i}] is not base64: {e}")))?;
        tried.push(Tried {
            source: format!("body {}", i + 1),
            passed_by: filters.matching(&body).map(|n| n + 1),
        });
    }
    let letters = w
        .control
        .store()
        .dead_letters(Some(uuid), crate::engine::follow::DEAD_LETTERS_SHOWN)
        .map_err(crate::engine::ControlError::from)?;
    for letter in letters {
        tried.push(Tried {
            source: format!("dead letter {}", letter.id),
            passed_by: filters.matching(&letter.body).map(|n| n + 1),
        });
    }
    Ok(Json(tried))
}
