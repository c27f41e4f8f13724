//! The event source mapping: Lambda's fields, states and reasons.

mod destination;
mod filter_criteria;

pub use destination::{Destination, DestinationConfig, OnFailure};
pub use filter_criteria::{Filter, FilterCriteria};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

pub const MIN_BATCH_SIZE: u32 = 1;
pub const MAX_BATCH_SIZE: u32 = 10_000;
pub const DEFAULT_BATCH_SIZE: u32 = 100;
pub const MAX_BATCHING_WINDOW_SECS: u32 = 300;
/// Lambda's default window for MQ sources. Once a window is set it is whole
/// seconds; this half second cannot be set back (as on Lambda).
pub const DEFAULT_BATCHING_WINDOW: Duration = Duration::from_millis(500);
/// Lambda's maximumRedeliveries for Amazon MQ, as its MQ guide long said
/// (its docs now say 6 for ActiveMQ): the default of `[engine] max_redeliveries`.
pub const MAX_REDELIVERIES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceAccessType {
    #[serde(rename = "BASIC_AUTH")]
    BasicAuth,
    #[serde(rename = "VIRTUAL_HOST")]
    VirtualHost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceAccessConfiguration {
    #[serde(rename = "Type")]
    pub kind: SourceAccessType,
    #[serde(rename = "URI")]
    pub uri: String,
}

/// What a user asks for: the fields of CreateEventSourceMapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MappingSpec {
    pub function_name: String,
    pub event_source_arn: String,
    pub queues: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_batching_window_in_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// None when it filters nothing (`{}` and `{"Filters": []}` read so).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "filter_criteria::non_empty"
    )]
    pub filter_criteria: Option<FilterCriteria>,
    #[serde(default)]
    pub source_access_configurations: Vec<SourceAccessConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_config: Option<ScalingConfig>,
    /// `["ReportBatchItemFailures"]`: the function may name the messages
    /// that failed, and only those are retried (Lambda offers it for SQS,
    /// Kinesis and DynamoDB; mqtrigger for MQ too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response_types: Option<Vec<FunctionResponseType>>,
    /// `{"OnFailure": {"Destination": ARN}}`: where dead letters go instead
    /// of the broker's dead-letter queue (a function, or a queue of ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_config: Option<DestinationConfig>,
    /// Tags of the mapping (CreateEventSourceMapping's `Tags`, then
    /// TagResource and UntagResource on its EventSourceMappingArn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<std::collections::BTreeMap<String, String>>,
    /// `{"Metrics": ["EventCount"]}`: the mapping's counts also under
    /// Lambda's ESM metric names in `/metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_config: Option<MetricsConfig>,
    /// Kept and answered as Lambda does (it names the key that encrypts
    /// the filter criteria); mqtrigger's store holds them as they are.
    #[serde(default, rename = "KMSKeyArn", skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}

/// Which of Lambda's ESM metrics a mapping has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MetricsConfig {
    #[serde(default)]
    pub metrics: Vec<EventSourceMappingMetric>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventSourceMappingMetric {
    EventCount,
}

/// What a function's answer may say beyond success or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionResponseType {
    /// `{"batchItemFailures": [{"itemIdentifier": "…"}]}` names the
    /// messages that failed; the others are acked.
    ReportBatchItemFailures,
}

/// How many batches of one mapping may be with the function at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ScalingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_concurrency: Option<u32>,
}

pub const MAX_CONCURRENCY: u32 = 1000;

impl MappingSpec {
    /// Batches with the function at once: 1 (the default) keeps the queue's
    /// order; more let a slow function work on several batches, unordered.
    pub fn concurrency(&self) -> u32 {
        self.scaling_config
            .and_then(|s| s.maximum_concurrency)
            .unwrap_or(1)
    }

    pub fn batch_size(&self) -> u32 {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    /// Lambda's ESM metrics are asked for (MetricsConfig EventCount).
    pub fn counts_events(&self) -> bool {
        self.metrics_config
            .as_ref()
            .is_some_and(|m| m.metrics.contains(&EventSourceMappingMetric::EventCount))
    }

    /// The function names the messages that failed (ReportBatchItemFailures).
    pub fn reports_item_failures(&self) -> bool {
        self.function_response_types
            .as_ref()
            .is_some_and(|t| t.contains(&FunctionResponseType::ReportBatchItemFailures))
    }

    pub fn batching_window(&self) -> Duration {
        self.maximum_batching_window_in_seconds
            .map(|s| Duration::from_secs(s.into()))
            .unwrap_or(DEFAULT_BATCHING_WINDOW)
    }

    pub fn queue(&self) -> &str {
        self.queues.first().map(String::as_str).unwrap_or_default()
    }

    /// The queues as a table shows them: the first, and how many more.
    pub fn queue_label(&self) -> String {
        match self.queues.len() {
            0 | 1 => self.queue().to_owned(),
            n => format!("{} +{}", self.queue(), n - 1),
        }
    }

    pub fn access(&self, kind: SourceAccessType) -> Option<&str> {
        self.source_access_configurations
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.uri.as_str())
    }

    /// The RabbitMQ virtual host the mapping consumes on: its VIRTUAL_HOST,
    /// else RabbitMQ's default `/`.
    pub fn virtual_host(&self) -> &str {
        self.access(SourceAccessType::VirtualHost).unwrap_or("/")
    }

    /// Lambda allows one mapping per function and queue.
    pub fn conflicts_with(&self, other: &MappingSpec) -> bool {
        self.function_name == other.function_name
            && self.event_source_arn == other.event_source_arn
            && self.queues == other.queues
    }

    /// The matcher of the mapping's FilterCriteria, if it has any; the
    /// error says which pattern Lambda would refuse.
    pub fn filters(&self) -> Result<Option<crate::filter::Filters>, String> {
        self.filter_criteria
            .as_ref()
            .map_or(Ok(None), FilterCriteria::compile)
    }
}

/// The fields of UpdateEventSourceMapping; what is absent stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MappingUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_batching_window_in_seconds: Option<u32>,
    /// Empty criteria remove the filter, as on Lambda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_criteria: Option<FilterCriteria>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_access_configurations: Option<Vec<SourceAccessConfiguration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_config: Option<ScalingConfig>,
    /// An empty list turns ReportBatchItemFailures off, as on Lambda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response_types: Option<Vec<FunctionResponseType>>,
    /// An empty DestinationConfig (or an OnFailure without a Destination)
    /// removes the destination, as on Lambda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_config: Option<DestinationConfig>,
    /// `{"Metrics": []}` turns Lambda's ESM metrics off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_config: Option<MetricsConfig>,
    #[serde(default, rename = "KMSKeyArn", skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}

impl MappingUpdate {
    /// Makes the fields this update names what they say, and leaves the
    /// others as `spec` has them: the one rule of what an update changes.
    /// It is applied to the spec as stored at the write (another instance
    /// may have changed other fields since the request came), never to an
    /// earlier read. A FunctionName is taken as given: the caller resolves
    /// it to a configured function first.
    pub fn apply(&self, spec: &mut MappingSpec) {
        if let Some(name) = &self.function_name {
            spec.function_name = name.clone();
        }
        if let Some(b) = self.batch_size {
            spec.batch_size = Some(b);
        }
        if let Some(w) = self.maximum_batching_window_in_seconds {
            spec.maximum_batching_window_in_seconds = Some(w);
        }
        if let Some(f) = &self.filter_criteria {
            spec.filter_criteria = f.clone().non_empty();
        }
        if let Some(access) = &self.source_access_configurations {
            spec.source_access_configurations = access.clone();
        }
        if let Some(e) = self.enabled {
            spec.enabled = Some(e);
        }
        if let Some(scaling) = self.scaling_config {
            spec.scaling_config = Some(scaling);
        }
        if let Some(types) = &self.function_response_types {
            spec.function_response_types = (!types.is_empty()).then(|| types.clone());
        }
        if let Some(config) = &self.destination_config {
            // Kept when it says anything, so the check can refuse OnSuccess.
            let says = config.on_failure().is_some() || config.on_success.is_some();
            spec.destination_config = says.then(|| config.clone());
        }
        if let Some(metrics) = &self.metrics_config {
            spec.metrics_config = (!metrics.metrics.is_empty()).then(|| metrics.clone());
        }
        if let Some(key) = &self.kms_key_arn {
            spec.kms_key_arn = (!key.is_empty()).then(|| key.clone());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Creating,
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    Updating,
    Deleting,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why the mapping is in its state: the user, or a stop code that says what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateTransitionReason {
    UserInitiated,
    EsmConfigNotValid,
    EventSourceAuthnError,
    EventSourceAuthzError,
    FunctionConfigNotValid,
}

impl fmt::Display for StateTransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UserInitiated => "USER_INITIATED",
            Self::EsmConfigNotValid => "ESM_CONFIG_NOT_VALID",
            Self::EventSourceAuthnError => "EVENT_SOURCE_AUTHN_ERROR",
            Self::EventSourceAuthzError => "EVENT_SOURCE_AUTHZ_ERROR",
            Self::FunctionConfigNotValid => "FUNCTION_CONFIG_NOT_VALID",
        })
    }
}

/// A mapping as the store keeps it and the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mapping {
    #[serde(rename = "UUID")]
    pub uuid: Uuid,
    #[serde(flatten)]
    pub spec: MappingSpec,
    pub function_arn: String,
    pub state: State,
    pub state_transition_reason: StateTransitionReason,
    /// The sentence behind a stop code: what went wrong and what to fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_detail: Option<String>,
    pub last_processing_result: String,
    #[serde(with = "chrono::serde::ts_seconds")]
    pub last_modified: DateTime<Utc>,
    /// mqtrigger's own, not Lambda's: an operator paused the mapping. It
    /// takes no new batch from the broker while State stays what Lambda
    /// would say (a paused mapping is still Enabled); it is kept with the
    /// mapping, so it holds across restarts and on every instance.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// mqtrigger's own: how many steps were asked for since the mapping was
    /// made. Each step lets one batch through a paused mapping; the task
    /// that runs it counts the steps it took, and a number larger than that
    /// is a step to take.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub steps: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub const NO_RECORDS_PROCESSED: &str = "No records processed";

impl Mapping {
    pub fn new(spec: MappingSpec, function_arn: String) -> Self {
        let enabled = spec.enabled.unwrap_or(true);
        Mapping {
            uuid: Uuid::new_v4(),
            spec,
            function_arn,
            state: if enabled {
                State::Enabled
            } else {
                State::Disabled
            },
            state_transition_reason: StateTransitionReason::UserInitiated,
            state_detail: None,
            last_processing_result: NO_RECORDS_PROCESSED.into(),
            last_modified: Utc::now(),
            paused: false,
            steps: 0,
        }
    }

    /// The user wants it running (whatever stopped it since).
    pub fn wants_to_run(&self) -> bool {
        self.spec.enabled.unwrap_or(true)
    }

    /// Stopped by a stop code (refused credentials, a missing queue, a
    /// function that cannot be invoked): as on Lambda, it stays stopped,
    /// across restarts too, until a user enables it (or its entry in the
    /// config file changes), so that State always says what it does.
    pub fn stopped_by_a_stop_code(&self) -> bool {
        self.state == State::Disabled
            && self.state_transition_reason != StateTransitionReason::UserInitiated
    }

    /// Whether the engine starts it when it starts.
    pub fn runs_at_start(&self) -> bool {
        self.wants_to_run() && !self.stopped_by_a_stop_code()
    }

    /// Ends a change under way (Creating, Updating, Enabling, Disabling):
    /// the state becomes what the spec asks for, as stored now. Any other
    /// state is left as it is, because something newer set it: a delete
    /// (which finishes itself), a stop code the running task met since (State
    /// says what the mapping does), or an enable that came in between.
    pub fn finish_transition(&mut self) {
        if matches!(
            self.state,
            State::Creating | State::Updating | State::Enabling | State::Disabling
        ) {
            self.state = if self.wants_to_run() {
                State::Enabled
            } else {
                State::Disabled
            };
        }
    }

    /// Whether the mapping consumes now: its state is Enabled. A mapping
    /// that a user disabled, or that stopped itself with a stop code, is
    /// Disabled and does not run.
    pub fn is_running(&self) -> bool {
        self.state == State::Enabled
    }

    /// `arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID`: Lambda's
    /// EventSourceMappingArn, in the region and account of the mapping's
    /// function ARN.
    pub fn arn(&self) -> String {
        let parts: Vec<&str> = self.function_arn.split(':').collect();
        let (region, account) = match parts.as_slice() {
            ["arn", _, "lambda", region, account, ..] => (*region, *account),
            _ => (crate::aws::DEFAULT_REGION, "000000000000"),
        };
        format!(
            "arn:aws:lambda:{region}:{account}:event-source-mapping:{}",
            self.uuid
        )
    }

    /// The state as an operator reads it: Lambda's State, except that an
    /// Enabled mapping an operator paused says `Paused`.
    pub fn shown_state(&self) -> String {
        match self.state {
            State::Enabled if self.paused => "Paused".to_owned(),
            state => state.to_string(),
        }
    }
}

/// The ARN the console and the API show for a function of the config file:
/// a Lambda function's own ARN, or one in its region (the config's, else
/// the environment's, as the Invoke path picks it); a local function's in
/// the environment's region, which is also the ARN its handler is given.
pub fn function_arn(name: &str, function: &crate::invoke::FunctionConfig) -> String {
    match &function.lambda {
        Some(l) if l.starts_with("arn:") => l.clone(),
        Some(l) => {
            let region = function
                .region
                .clone()
                .unwrap_or_else(|| crate::aws::environment_region().to_string());
            crate::aws::local_function_arn(&region, l)
        }
        None => unknown_function_arn(name),
    }
}

/// The ARN of a function that runs here, or that the config does not
/// define (the check refuses a mapping to such a function; this is the ARN
/// it is refused with).
pub fn unknown_function_arn(name: &str) -> String {
    crate::aws::local_function_arn(crate::aws::environment_region().as_ref(), name)
}
