//! `mqtrigger mappings …`: a client of a running mqtrigger's API.
//!
//! It is aws-sdk-lambda pointed at the endpoint, so the CLI exercises the
//! same path as any SDK user. A loopback endpoint needs no AWS setup.

use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::Region;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::types::{
    EventSourceMappingConfiguration as Remote, Filter, FilterCriteria, SourceAccessConfiguration,
    SourceAccessType,
};
use serde_json::{Value, json};

/// The SDK gives each operation's output its own type with the same
/// accessors: one mapping's JSON from any of them.
macro_rules! mapping_json {
    ($m:expr) => {
        to_json_fields(
            $m.uuid(),
            $m.batch_size(),
            $m.maximum_batching_window_in_seconds(),
            $m.event_source_arn(),
            $m.function_arn(),
            $m.last_modified(),
            $m.last_processing_result(),
            $m.state(),
            $m.state_transition_reason(),
            $m.queues(),
            $m.source_access_configurations(),
            $m.filter_criteria(),
            $m.function_response_types(),
        )
    };
}

/// What the user asked the API for, as typed.
#[derive(Debug, Clone)]
pub enum Request {
    List {
        function_name: Option<String>,
        event_source_arn: Option<String>,
        max_items: Option<i32>,
    },
    Get(String),
    Create(Box<Change>),
    Update(String, Box<Change>),
    Delete(String),
    Enable(String),
    Disable(String),
}

/// The fields of a create or update; what is None is left out.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub function_name: Option<String>,
    pub event_source_arn: Option<String>,
    pub queue: Option<String>,
    pub secret: Option<String>,
    pub virtual_host: Option<String>,
    pub batch_size: Option<i32>,
    pub batching_window: Option<i32>,
    /// `Some(vec![])` removes the filters.
    pub filter_patterns: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// FunctionResponseTypes: `Some(true)` ReportBatchItemFailures, `Some(false)` none.
    pub report_item_failures: Option<bool>,
}

/// FunctionResponseTypes as the SDK takes them.
fn response_types(on: bool) -> Vec<aws_sdk_lambda::types::FunctionResponseType> {
    match on {
        true => vec![aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures],
        false => Vec::new(),
    }
}

/// Lambda's error, as the API gave it: the CLI prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RemoteError {
    pub code: String,
    pub message: String,
}

fn remote_error<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
>(
    endpoint: &str,
    e: SdkError<E, R>,
) -> RemoteError {
    match &e {
        SdkError::ServiceError(_) => RemoteError {
            code: e.code().unwrap_or("Error").to_owned(),
            message: e.message().unwrap_or_default().to_owned(),
        },
        _ => RemoteError {
            code: "ConnectionError".into(),
            message: format!(
                "cannot reach the mqtrigger API at {endpoint} (is `mqtrigger serve --api` running?): {}",
                crate::error_text::causes(&e)
            ),
        },
    }
}

/// The region a client of a loopback endpoint signs for: the
/// environment's (`AWS_REGION`, then `AWS_DEFAULT_REGION`), else
/// us-east-1. Not the SDK's whole chain: with no region set, it would ask
/// the instance metadata service for one, and warn when there is none.
/// A service with `[api] region` takes only signatures for its region.
pub fn loopback_region() -> Region {
    crate::aws::environment_region()
}

pub async fn client(endpoint: &str) -> aws_sdk_lambda::Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if crate::aws::is_loopback(endpoint) {
        loader = loader
            .credentials_provider(crate::aws::local_credentials(None).await)
            .region(loopback_region());
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_lambda::config::Builder::from(&shared).endpoint_url(endpoint);
    if shared.region().is_none() {
        config = config.region(Region::new(crate::aws::DEFAULT_REGION));
    }
    aws_sdk_lambda::Client::from_conf(config.build())
}

/// Runs one request; the answer is JSON in Lambda's shapes: one mapping,
/// or `{"EventSourceMappings": [...]}` for a list (every page).
pub async fn run(endpoint: &str, request: Request) -> Result<Value, RemoteError> {
    let lambda = client(endpoint).await;
    let err = |e| remote_error(endpoint, e);
    let one = match request {
        Request::List {
            function_name,
            event_source_arn,
            max_items,
        } => {
            let mut pages = lambda
                .list_event_source_mappings()
                .set_function_name(function_name)
                .set_event_source_arn(event_source_arn)
                .set_max_items(max_items)
                .into_paginator()
                .send();
            let mut all = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| remote_error(endpoint, e))?;
                all.extend(page.event_source_mappings().iter().map(to_json));
            }
            return Ok(json!({ "EventSourceMappings": all }));
        }
        Request::Get(uuid) => {
            let out = lambda.get_event_source_mapping().uuid(uuid).send();
            let out = out.await.map_err(err)?;
            mapping_json!(out)
        }
        Request::Create(change) => {
            let out = lambda
                .create_event_source_mapping()
                .set_function_name(change.function_name)
                .set_event_source_arn(change.event_source_arn)
                .set_queues(change.queue.map(|q| vec![q]))
                .set_source_access_configurations(access(&change.secret, &change.virtual_host))
                .set_batch_size(change.batch_size)
                .set_maximum_batching_window_in_seconds(change.batching_window)
                .set_filter_criteria(change.filter_patterns.map(criteria))
                .set_function_response_types(change.report_item_failures.map(response_types))
                .set_enabled(change.enabled)
                .send()
                .await
                .map_err(|e| remote_error(endpoint, e))?;
            mapping_json!(out)
        }
        Request::Update(uuid, change) => update(&lambda, endpoint, uuid, *change).await?,
        Request::Enable(uuid) => {
            let change = Change {
                enabled: Some(true),
                ..Change::default()
            };
            update(&lambda, endpoint, uuid, change).await?
        }
        Request::Disable(uuid) => {
            let change = Change {
                enabled: Some(false),
                ..Change::default()
            };
            update(&lambda, endpoint, uuid, change).await?
        }
        Request::Delete(uuid) => {
            let out = lambda.delete_event_source_mapping().uuid(uuid).send();
            let out = out.await.map_err(|e| remote_error(endpoint, e))?;
            mapping_json!(out)
        }
    };
    Ok(one)
}

async fn update(
    lambda: &aws_sdk_lambda::Client,
    endpoint: &str,
    uuid: String,
    change: Change,
) -> Result<Value, RemoteError> {
    let access = access(&change.secret, &change.virtual_host);
    let out = lambda
        .update_event_source_mapping()
        .uuid(uuid)
        .set_function_name(change.function_name)
        .set_batch_size(change.batch_size)
        .set_maximum_batching_window_in_seconds(change.batching_window)
        .set_filter_criteria(change.filter_patterns.map(criteria))
        .set_function_response_types(change.report_item_failures.map(response_types))
        .set_source_access_configurations(access)
        .set_enabled(change.enabled)
        .send()
        .await
        .map_err(|e| remote_error(endpoint, e))?;
    Ok(mapping_json!(out))
}

fn access(
    secret: &Option<String>,
    vhost: &Option<String>,
) -> Option<Vec<SourceAccessConfiguration>> {
    let entry = |kind, uri: &String| {
        SourceAccessConfiguration::builder()
            .r#type(kind)
            .uri(uri)
            .build()
    };
    let mut all = Vec::new();
    if let Some(s) = secret {
        all.push(entry(SourceAccessType::BasicAuth, s));
    }
    if let Some(v) = vhost {
        all.push(entry(SourceAccessType::VirtualHost, v));
    }
    (!all.is_empty()).then_some(all)
}

fn criteria(patterns: Vec<String>) -> FilterCriteria {
    FilterCriteria::builder()
        .set_filters(Some(
            patterns
                .into_iter()
                .map(|p| Filter::builder().pattern(p).build())
                .collect(),
        ))
        .build()
}

fn to_json(m: &Remote) -> Value {
    mapping_json!(m)
}

#[allow(clippy::too_many_arguments)]
fn to_json_fields(
    uuid: Option<&str>,
    batch_size: Option<i32>,
    window: Option<i32>,
    event_source_arn: Option<&str>,
    function_arn: Option<&str>,
    last_modified: Option<&aws_sdk_lambda::primitives::DateTime>,
    last_processing_result: Option<&str>,
    state: Option<&str>,
    reason: Option<&str>,
    queues: &[String],
    access: &[SourceAccessConfiguration],
    filters: Option<&FilterCriteria>,
    response_types: &[aws_sdk_lambda::types::FunctionResponseType],
) -> Value {
    let mut v = json!({
        "UUID": uuid,
        "BatchSize": batch_size,
        "MaximumBatchingWindowInSeconds": window,
        "EventSourceArn": event_source_arn,
        "FunctionArn": function_arn,
        "LastModified": last_modified.map(|t| t.secs()),
        "LastProcessingResult": last_processing_result,
        "State": state,
        "StateTransitionReason": reason,
        "Queues": queues,
        "SourceAccessConfigurations": access.iter().map(|a| json!({
            "Type": a.r#type().map(|t| t.as_str()),
            "URI": a.uri(),
        })).collect::<Vec<_>>(),
    });
    if !response_types.is_empty() {
        let types: Vec<&str> = response_types.iter().map(|t| t.as_str()).collect();
        v["FunctionResponseTypes"] = json!(types);
    }
    if let Some(f) = filters {
        let ours = crate::mapping::FilterCriteria::of_patterns(
            f.filters().iter().map(|f| f.pattern().unwrap_or_default()),
        );
        v["FilterCriteria"] = json!(ours);
    }
    v
}

pub use crate::store::short_id;

/// Adds what mqtrigger knows beyond Lambda's fields to each mapping, under
/// `"Mqtrigger"`: its counts, and with a shared store the instance running
/// it (`"Owner"`, null while none does).
pub fn add_counts(mappings: &mut [Value], stats: &crate::engine::EngineStats) {
    let shared = !stats.owners.is_empty();
    for m in mappings {
        let Some(uuid) = m["UUID"].as_str().and_then(|u| u.parse().ok()) else {
            continue;
        };
        let counts = stats.of(uuid);
        let mut extra = json!({
            "Received": counts.received,
            "Succeeded": counts.succeeded,
            "Failed": counts.failed,
            "DeadLettered": counts.dead_lettered,
            "Filtered": counts.filtered,
            "InFlight": counts.in_flight_messages,
        });
        if shared {
            extra["Owner"] = json!(stats.owners.get(&uuid));
        }
        // Beside what the answer already says of mqtrigger (Paused).
        match m["Mqtrigger"].as_object_mut() {
            Some(known) => known.extend(extra.as_object().cloned().unwrap_or_default()),
            None => m["Mqtrigger"] = extra,
        }
    }
}

/// Marks the mappings an operator paused (`"Mqtrigger": {"Paused": true}`).
pub fn add_paused(mappings: &mut [Value], paused: &std::collections::BTreeSet<uuid::Uuid>) {
    for m in mappings {
        let Some(uuid) = m["UUID"].as_str().and_then(|u| u.parse().ok()) else {
            continue;
        };
        if !m["Mqtrigger"].is_object() {
            m["Mqtrigger"] = json!({});
        }
        m["Mqtrigger"]["Paused"] = json!(paused.contains(&uuid));
    }
}

/// The table people read: one row per mapping; with the counts when
/// [`add_counts`] added them, and the owner when the store is shared.
pub fn table(mappings: &[Value]) -> String {
    let counted = mappings.iter().any(|m| m["Mqtrigger"].is_object());
    let owned = mappings
        .iter()
        .any(|m| m["Mqtrigger"].get("Owner").is_some());
    let mut header = vec!["UUID", "STATE", "FUNCTION", "QUEUE", "BATCH"];
    if owned {
        header.push("OWNER");
    }
    if counted {
        header.extend(["RECEIVED", "SUCCEEDED", "FAILED", "DEAD"]);
    }
    header.push("LAST RESULT");
    let rows: Vec<Vec<String>> = mappings
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or("").to_owned();
            let function = s("FunctionArn")
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            // An operator's pause shows where Lambda's State is.
            let state = match m["Mqtrigger"]["Paused"].as_bool() {
                Some(true) if s("State") == "Enabled" => "Paused".to_owned(),
                _ => s("State"),
            };
            let mut row = vec![
                s("UUID"),
                state,
                function,
                m["Queues"][0].as_str().unwrap_or("").to_owned(),
                m["BatchSize"].to_string(),
            ];
            let extra = &m["Mqtrigger"];
            if owned {
                row.push(match extra["Owner"].as_str().and_then(|o| o.parse().ok()) {
                    Some(owner) => short_id(owner),
                    None => "none".into(),
                });
            }
            if counted {
                for k in ["Received", "Succeeded", "Failed", "DeadLettered"] {
                    row.push(extra[k].as_u64().map(|n| n.to_string()).unwrap_or_default());
                }
            }
            row.push(s("LastProcessingResult"));
            row
        })
        .collect();
    columns(&header, &rows)
}

/// `mqtrigger instances`: one row per instance on the shared store, the
/// one that answered marked `*`.
pub fn instances_table(
    answer: &crate::api::watch::Instances,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    if answer.this.is_none() {
        return "this service keeps its own store (SQLite): it is the only instance; \
                several instances share one with --store postgres://… (README)\n"
            .into();
    }
    let header = [
        "ID",
        "HOST",
        "PID",
        "STARTED",
        "LAST SEEN",
        "OWNS",
        "MAPPINGS",
    ];
    let rows: Vec<Vec<String>> = answer
        .instances
        .iter()
        .map(|i| {
            let seen = (now - i.last_seen).num_milliseconds().max(0) as f64 / 1000.0;
            let mark = if answer.this == Some(i.id) { " *" } else { "" };
            vec![
                format!("{}{mark}", short_id(i.id)),
                i.host.clone(),
                i.pid.to_string(),
                i.started.format("%Y-%m-%d %H:%M:%S").to_string(),
                format!("{seen:.1} s ago"),
                i.owns.len().to_string(),
                i.owns
                    .iter()
                    .map(|m| short_id(*m))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    columns(&header, &rows)
}

/// Left-aligned columns two spaces apart; the last one free text.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let last = header.len() - 1;
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}
