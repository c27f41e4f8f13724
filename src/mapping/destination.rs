//! DestinationConfig, as Lambda's API shapes it (`{"OnFailure":
//! {"Destination": ARN}}`), and where such an ARN sends a mapping's dead
//! letters once it is resolved against the config (`validation::on_failure`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DestinationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// Accepted in the API's shape only to be refused by name: Lambda
    /// takes it for Kafka, and an MQ mapping has nothing to send there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<OnFailure>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct OnFailure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

impl DestinationConfig {
    /// The ARN dead letters go to, if one is given.
    pub fn on_failure(&self) -> Option<&str> {
        self.on_failure.as_ref()?.destination.as_deref()
    }
}

/// Where a mapping's dead letters go instead of the broker's dead-letter
/// queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A configured function, invoked with Lambda's on-failure record.
    Function { name: String, arn: String },
    /// A queue of a configured broker (`BROKER_ARN:queue:NAME`), given the
    /// on-failure record as a JSON message.
    Queue {
        broker_arn: String,
        queue: String,
        arn: String,
    },
}

impl Destination {
    /// The ARN it was named by (what the journal says a letter went to).
    pub fn arn(&self) -> &str {
        match self {
            Destination::Function { arn, .. } | Destination::Queue { arn, .. } => arn,
        }
    }
}
