//! The one check of a mapping against the configuration.
//!
//! The config file, the REST API (through the engine's Control) and the
//! console's form and prompts all refuse a mapping through these functions,
//! so each rule is written once and every front door says the same words.
//! [`check_mapping`] runs every rule; the per-field functions are the same
//! rules for callers that check one field as it is typed.

use crate::config::{BrokerConfig, BrokerEngine, Config, is_secrets_manager_arn};
use crate::mapping::{
    MAX_BATCH_SIZE, MAX_BATCHING_WINDOW_SECS, MAX_CONCURRENCY, MIN_BATCH_SIZE, MappingSpec,
    ScalingConfig, SourceAccessConfiguration, SourceAccessType,
};

/// Longest queue name Lambda accepts in `Queues`.
pub const MAX_QUEUE_NAME_CHARS: usize = 1000;
/// `[engine] max_redeliveries` above this would outlast what RabbitMQ allows itself.
pub const MAX_MAX_REDELIVERIES: u32 = 20;

/// How Lambda's API answers a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// InvalidParameterValueException: the field's value is wrong.
    Invalid,
    /// ResourceNotFoundException: the field names something that does not
    /// exist where Lambda reports it so (an unknown FunctionName).
    NotFound,
}

/// A mapping that cannot be accepted: the field to fix and the sentence to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidMapping {
    /// Lambda's field a problem is in, e.g. "BatchSize", "SourceAccessConfigurations", "FunctionName".
    pub field: &'static str,
    pub message: String,
    pub refusal: Refusal,
}

impl InvalidMapping {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        InvalidMapping {
            field,
            message: message.into(),
            refusal: Refusal::Invalid,
        }
    }

    fn not_found(field: &'static str, message: impl Into<String>) -> Self {
        InvalidMapping {
            refusal: Refusal::NotFound,
            ..Self::new(field, message)
        }
    }
}

/// An `[engine]` setting out of its range: the key to fix and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidSetting {
    /// The key inside `[engine]`, e.g. "max_redeliveries".
    pub key: &'static str,
    pub message: String,
}

/// Every rule a mapping must pass, in the order of its fields.
pub fn check_mapping(spec: &MappingSpec, config: &Config) -> Result<(), InvalidMapping> {
    function_name(&spec.function_name, config)?;
    let broker = event_source_arn(&spec.event_source_arn, config)?;
    queues(&spec.queues)?;
    batch_size(spec.batch_size)?;
    batching_window(spec.maximum_batching_window_in_seconds)?;
    scaling_config(spec.scaling_config)?;
    basic_auth(&spec.source_access_configurations, config)?;
    virtual_host(&spec.source_access_configurations, Some(broker.engine))?;
    filter_criteria(spec)?;
    on_failure(spec, config)?;
    if let Some(all) = &spec.tags {
        tags(all)?;
    }
    Ok(())
}

/// Lambda's rules for tags: at most 50, keys of 1 to 128 characters not
/// starting with `aws:`, values of at most 256.
pub fn tags(all: &std::collections::BTreeMap<String, String>) -> Result<(), InvalidMapping> {
    if all.len() > 50 {
        return Err(InvalidMapping::new(
            "Tags",
            format!("{} tags: a resource takes at most 50", all.len()),
        ));
    }
    for (key, value) in all {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(InvalidMapping::new(
                "Tags",
                format!("tag key {key:?} must be 1 to 128 characters"),
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(InvalidMapping::new(
                "Tags",
                format!("tag key {key:?}: the aws: prefix is reserved for AWS"),
            ));
        }
        if value.chars().count() > 256 {
            return Err(InvalidMapping::new(
                "Tags",
                format!("the value of tag {key:?} is longer than 256 characters"),
            ));
        }
    }
    Ok(())
}

/// The configured function a FunctionName (or a destination) names: its
/// name, its ARN, or a partial ARN ending in `function:name`.
pub fn resolve_function(given: &str, config: &Config) -> Option<String> {
    let functions = &config.functions;
    if functions.contains_key(given) {
        return Some(given.to_owned());
    }
    functions
        .iter()
        .find(|(name, f)| {
            let arn = crate::mapping::function_arn(name, f);
            arn == given || arn.ends_with(&format!(":{given}"))
        })
        .map(|(name, _)| name.clone())
}

/// DestinationConfig: OnFailure names a configured function (its ARN or
/// name) or a queue of a configured broker (`BROKER_ARN:queue:NAME`);
/// OnSuccess is refused, as Lambda refuses it for MQ. Where the dead
/// letters go, if anywhere but the broker's dead-letter queue.
pub fn on_failure(
    spec: &MappingSpec,
    config: &Config,
) -> Result<Option<crate::mapping::Destination>, InvalidMapping> {
    use crate::mapping::Destination;
    let Some(destinations) = &spec.destination_config else {
        return Ok(None);
    };
    if destinations.on_success.is_some() {
        return Err(InvalidMapping::new(
            "DestinationConfig",
            "DestinationConfig.OnSuccess is not supported for an Amazon MQ event source; give OnFailure only",
        ));
    }
    let Some(arn) = destinations.on_failure() else {
        return Ok(None);
    };
    if let Some(broker) = config
        .brokers
        .iter()
        .find(|b| arn.starts_with(&format!("{}:queue:", b.arn)))
    {
        let queue = &arn[broker.arn.len() + ":queue:".len()..];
        if queue.is_empty() {
            return Err(InvalidMapping::new(
                "DestinationConfig",
                format!(
                    "DestinationConfig.OnFailure.Destination {arn} names no queue after `:queue:`"
                ),
            ));
        }
        return Ok(Some(Destination::Queue {
            broker_arn: broker.arn.clone(),
            queue: queue.to_owned(),
            arn: arn.to_owned(),
        }));
    }
    match resolve_function(arn, config) {
        Some(name) => Ok(Some(Destination::Function {
            name,
            arn: arn.to_owned(),
        })),
        None => Err(InvalidMapping::new(
            "DestinationConfig",
            format!(
                "DestinationConfig.OnFailure.Destination {arn} is neither a function of [functions] (its name or ARN) nor a queue of a [[brokers]] entry (BROKER_ARN:queue:NAME)"
            ),
        )),
    }
}

/// FunctionName names a function of `[functions]` (already resolved from an ARN).
pub fn function_name(name: &str, config: &Config) -> Result<(), InvalidMapping> {
    if name.trim().is_empty() {
        return Err(InvalidMapping::new(
            "FunctionName",
            "FunctionName is required",
        ));
    }
    if !config.functions.contains_key(name) {
        // Lambda's "Function not found: …", then where mqtrigger's functions come from.
        return Err(InvalidMapping::not_found(
            "FunctionName",
            format!(
                "Function not found: {name}. mqtrigger invokes the functions of the config file; add a [functions.{name}] section"
            ),
        ));
    }
    Ok(())
}

/// EventSourceArn names a `[[brokers]]` entry; that broker.
pub fn event_source_arn<'c>(
    arn: &str,
    config: &'c Config,
) -> Result<&'c BrokerConfig, InvalidMapping> {
    config.broker(arn).ok_or_else(|| {
        InvalidMapping::new(
            "EventSourceArn",
            format!(
                "EventSourceArn `{arn}` names no broker; add a [[brokers]] entry with this arn"
            ),
        )
    })
}

/// Queues holds exactly one queue name of 1 to 1000 characters.
pub fn queues(queues: &[String]) -> Result<(), InvalidMapping> {
    if queues.is_empty() || queues.len() > MAX_QUEUES {
        return Err(InvalidMapping::new(
            "Queues",
            format!(
                "Queues must hold 1 to {MAX_QUEUES} queue names (it holds {}); Lambda takes one, mqtrigger up to {MAX_QUEUES}",
                queues.len()
            ),
        ));
    }
    for (i, queue) in queues.iter().enumerate() {
        let chars = queue.chars().count();
        if chars == 0 || chars > MAX_QUEUE_NAME_CHARS {
            return Err(InvalidMapping::new(
                "Queues",
                format!("Queues: a queue name must be 1 to {MAX_QUEUE_NAME_CHARS} characters"),
            ));
        }
        if queues[..i].contains(queue) {
            return Err(InvalidMapping::new(
                "Queues",
                format!("Queues names {queue} twice"),
            ));
        }
    }
    Ok(())
}

/// How many queues one mapping may read (Lambda: exactly one).
pub const MAX_QUEUES: usize = 10;

/// BatchSize, when given, is 1 to 10000.
pub fn batch_size(batch_size: Option<u32>) -> Result<(), InvalidMapping> {
    match batch_size {
        Some(b) if !(MIN_BATCH_SIZE..=MAX_BATCH_SIZE).contains(&b) => Err(InvalidMapping::new(
            "BatchSize",
            format!(
                "BatchSize {b} is out of range: it must be {MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}"
            ),
        )),
        _ => Ok(()),
    }
}

/// A BatchSize typed as text (the console's prompts): a whole number, then [`batch_size`].
pub fn parse_batch_size(text: &str) -> Result<u32, InvalidMapping> {
    let n = text.trim().parse::<u32>().map_err(|_| {
        InvalidMapping::new(
            "BatchSize",
            format!("BatchSize must be a whole number from {MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}"),
        )
    })?;
    batch_size(Some(n))?;
    Ok(n)
}

/// MaximumBatchingWindowInSeconds, when given, is 0 to 300.
pub fn batching_window(window: Option<u32>) -> Result<(), InvalidMapping> {
    match window {
        Some(w) if w > MAX_BATCHING_WINDOW_SECS => Err(InvalidMapping::new(
            "MaximumBatchingWindowInSeconds",
            format!(
                "MaximumBatchingWindowInSeconds {w} is out of range: it must be 0 to {MAX_BATCHING_WINDOW_SECS}"
            ),
        )),
        _ => Ok(()),
    }
}

/// A window typed as text (the console's form): empty for Lambda's default,
/// else whole seconds, then [`batching_window`].
pub fn parse_batching_window(text: &str) -> Result<Option<u32>, InvalidMapping> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let w = text.parse::<u32>().map_err(|_| {
        InvalidMapping::new(
            "MaximumBatchingWindowInSeconds",
            format!(
                "MaximumBatchingWindowInSeconds must be whole seconds from 0 to {MAX_BATCHING_WINDOW_SECS} (empty for Lambda's default of 0.5 s)"
            ),
        )
    })?;
    batching_window(Some(w))?;
    Ok(Some(w))
}

/// ScalingConfig.MaximumConcurrency, when given, is 1 to 1000.
pub fn scaling_config(scaling: Option<ScalingConfig>) -> Result<(), InvalidMapping> {
    match scaling.and_then(|s| s.maximum_concurrency) {
        Some(c) if !(1..=MAX_CONCURRENCY).contains(&c) => Err(InvalidMapping::new(
            "ScalingConfig",
            format!(
                "ScalingConfig.MaximumConcurrency {c} is out of range: it must be 1 to {MAX_CONCURRENCY}"
            ),
        )),
        _ => Ok(()),
    }
}

fn count(access: &[SourceAccessConfiguration], kind: SourceAccessType) -> usize {
    access.iter().filter(|c| c.kind == kind).count()
}

/// Exactly one BASIC_AUTH, naming a secret of `[secrets]` or a Secrets Manager ARN.
pub fn basic_auth(
    access: &[SourceAccessConfiguration],
    config: &Config,
) -> Result<(), InvalidMapping> {
    const FIELD: &str = "SourceAccessConfigurations";
    if count(access, SourceAccessType::BasicAuth) != 1 {
        return Err(InvalidMapping::new(
            FIELD,
            "SourceAccessConfigurations needs exactly one BASIC_AUTH entry (the secret with the broker's username and password)",
        ));
    }
    let secret = access
        .iter()
        .find(|c| c.kind == SourceAccessType::BasicAuth)
        .map(|c| c.uri.as_str())
        .unwrap_or_default();
    if !config.secrets.contains_key(secret) && !is_secrets_manager_arn(secret) {
        return Err(InvalidMapping::new(
            FIELD,
            format!(
                "BASIC_AUTH secret `{secret}` is not in [secrets]; add it there, or give the ARN of an AWS Secrets Manager secret"
            ),
        ));
    }
    Ok(())
}

/// At most one VIRTUAL_HOST, and none for an ActiveMQ broker (`engine`,
/// when the broker is known).
pub fn virtual_host(
    access: &[SourceAccessConfiguration],
    engine: Option<BrokerEngine>,
) -> Result<(), InvalidMapping> {
    const FIELD: &str = "SourceAccessConfigurations";
    let hosts = count(access, SourceAccessType::VirtualHost);
    if hosts > 1 {
        return Err(InvalidMapping::new(
            FIELD,
            "SourceAccessConfigurations may hold at most one VIRTUAL_HOST",
        ));
    }
    if hosts == 1 && engine == Some(BrokerEngine::Activemq) {
        return Err(InvalidMapping::new(
            FIELD,
            "VIRTUAL_HOST is for RabbitMQ brokers only; remove it from the SourceAccessConfigurations of this ActiveMQ mapping",
        ));
    }
    Ok(())
}

/// FilterCriteria, when given, holds patterns Lambda would take (its shape
/// was checked when it was read).
pub fn filter_criteria(spec: &MappingSpec) -> Result<(), InvalidMapping> {
    spec.filters()
        .map(drop)
        .map_err(|m| InvalidMapping::new("FilterCriteria", m))
}

mod settings;

pub use settings::{
    check_admin, check_allowed_host, check_allowed_origin, check_api, check_engine,
    max_redeliveries, split_host,
};

#[cfg(test)]
mod tests;
