//! Traces of what mqtrigger does with a batch, exported over OTLP/HTTP
//! when `[telemetry] otlp_endpoint` is set: a span for gathering the batch,
//! one for each attempt of the function, and one for settling it. Each
//! span is a child of the trace of the batch's first message that carried
//! one (`trace::TraceParent`), and links to the trace of every message of
//! the batch, as OpenTelemetry's messaging conventions describe a batch
//! receive. The function of an attempt is given that attempt's span as its
//! parent, so its own spans hang under it.
//!
//! Without an endpoint nothing is installed: the global tracer is
//! OpenTelemetry's no-op, and a function is given its message's own trace.

use crate::trace::TraceParent;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue, global};
use std::str::FromStr;
use std::time::SystemTime;
use uuid::Uuid;

/// `[telemetry]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// An OTLP/HTTP collector (`http://127.0.0.1:4318`): spans go to its
    /// `/v1/traces` as protobuf.
    #[serde(default)]
    pub otlp_endpoint: Option<url::Url>,
    /// The `service.name` of the spans; `mqtrigger` when absent.
    #[serde(default)]
    pub service_name: Option<String>,
}

/// The exporter installed; dropping it sends what is still buffered.
pub struct Exporting(opentelemetry_sdk::trace::SdkTracerProvider);

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            tracing::warn!("the last spans may not have reached the OTLP collector: {e}");
        }
    }
}

/// [`init`] off the async threads: the exporter's HTTP client is a
/// blocking one, made on a thread of its own.
pub async fn start(settings: &TelemetrySettings) -> anyhow::Result<Option<Exporting>> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || init(&settings)).await?
}

/// Installs the OTLP exporter when the settings name an endpoint.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<Option<Exporting>> {
    use opentelemetry_otlp::WithExportConfig;
    let Some(endpoint) = &settings.otlp_endpoint else {
        return Ok(None);
    };
    let traces = if endpoint.path().trim_matches('/').is_empty() {
        endpoint.join("v1/traces")?
    } else {
        endpoint.clone()
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces.as_str())
        .build()
        .map_err(|e| anyhow::anyhow!("[telemetry] otlp_endpoint {endpoint}: {e}"))?;
    let name = settings
        .service_name
        .clone()
        .unwrap_or_else(|| "mqtrigger".into());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name)
                .build(),
        )
        .build();
    global::set_tracer_provider(provider.clone());
    tracing::info!(%traces, "exporting spans over OTLP/HTTP");
    Ok(Some(Exporting(provider)))
}

fn span_context(t: &TraceParent) -> SpanContext {
    let flags = if t.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let state = t
        .state
        .as_deref()
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    SpanContext::new(
        TraceId::from_bytes(t.trace_id),
        SpanId::from_bytes(t.span_id),
        flags,
        true,
        state,
    )
}

/// The traces of a batch's messages, each once, in the batch's order.
pub fn distinct<'a>(traces: impl IntoIterator<Item = &'a TraceParent>) -> Vec<TraceParent> {
    let mut out: Vec<TraceParent> = Vec::new();
    for t in traces {
        if !out.iter().any(|o| o.trace_id == t.trace_id) {
            out.push(t.clone());
        }
    }
    out
}

/// What a span is about.
pub struct About<'a> {
    pub mapping: Uuid,
    pub queue: &'a str,
    pub batch: u64,
    pub messages: usize,
    /// The messages' traces ([`distinct`]); the first is the parent.
    pub traces: &'a [TraceParent],
}

fn builder(
    name: &'static str,
    about: &About<'_>,
    start: SystemTime,
) -> (opentelemetry::trace::SpanBuilder, Context) {
    let parent = match about.traces.first() {
        Some(t) => Context::new().with_remote_span_context(span_context(t)),
        None => Context::new(),
    };
    let links = about
        .traces
        .iter()
        .map(|t| Link::with_context(span_context(t)))
        .collect();
    let builder = global::tracer("mqtrigger")
        .span_builder(name)
        .with_kind(SpanKind::Consumer)
        .with_start_time(start)
        .with_links(links)
        .with_attributes([
            KeyValue::new("messaging.system", "mqtrigger"),
            KeyValue::new("messaging.destination.name", about.queue.to_owned()),
            KeyValue::new("messaging.batch.message_count", about.messages as i64),
            KeyValue::new("mqtrigger.mapping", about.mapping.to_string()),
            KeyValue::new("mqtrigger.batch", about.batch as i64),
        ]);
    (builder, parent)
}

/// A span that ended already (gathering, settling), `error` when it failed.
pub fn record(
    name: &'static str,
    about: &About<'_>,
    start: SystemTime,
    end: SystemTime,
    error: Option<&str>,
) {
    let (builder, parent) = builder(name, about, start);
    let mut span = builder.start_with_context(&global::tracer("mqtrigger"), &parent);
    if let Some(e) = error {
        span.set_status(Status::error(e.to_owned()));
    }
    span.end_with_timestamp(end);
}

/// One attempt of the function under way.
pub struct Attempt(global::BoxedSpan);

impl Attempt {
    /// Starts the attempt's span; with it, the trace the function is given:
    /// this span as its parent (its message's own span when nothing is
    /// exported).
    pub fn start(about: &About<'_>, attempt: u32) -> (Attempt, Option<TraceParent>) {
        let (builder, parent) = builder("invoke", about, SystemTime::now());
        let builder = builder.with_attributes([KeyValue::new("mqtrigger.attempt", attempt as i64)]);
        let span = builder.start_with_context(&global::tracer("mqtrigger"), &parent);
        let context = span.span_context();
        let given = about.traces.first().map(|t| match context.is_valid() {
            true => t.child(context.span_id().to_bytes()),
            false => t.clone(),
        });
        (Attempt(span), given)
    }

    /// Ends it, with the function's error when it failed.
    pub fn end(mut self, error: Option<&str>) {
        if let Some(e) = error {
            self.0.set_status(Status::error(e.to_owned()));
        }
        self.0.end();
    }
}
