//! Why the engine refused a request, or could not carry it out. Each error
//! keeps what it is about (a mapping's id, the field to fix, the failure
//! underneath as its source); [`ControlError::kind`] is the one place that
//! says which of Lambda's error types it is.

use crate::invoke::InvokeError;
use crate::secrets::SecretError;
use crate::validation::{InvalidMapping, Refusal};
use uuid::Uuid;

/// Which of Lambda's error types an error is (the API answers with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ResourceNotFoundException.
    NotFound,
    /// InvalidParameterValueException.
    Invalid,
    /// ResourceConflictException.
    Conflict,
    /// AccessDeniedException: `--readonly`.
    ReadOnly,
    /// ServiceException: the request was right, something underneath failed.
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("The event source mapping {0} does not exist")]
    NoSuchMapping(Uuid),
    #[error("mapping {mapping} has no dead letter {dead_letter}")]
    NoSuchDeadLetter { mapping: Uuid, dead_letter: i64 },
    /// A message not among the mapping's newest kept ones.
    #[error(
        "mapping {mapping} kept no history of message {message}: it keeps its newest [engine] history_messages, on the instance that ran them"
    )]
    NoSuchMessage { mapping: Uuid, message: String },
    /// A field is wrong, or names a function that is not configured; the
    /// error names the field and says what to fix.
    #[error(transparent)]
    Invalid(#[from] InvalidMapping),
    /// Lambda allows one mapping per function and queue.
    #[error(
        "An event source mapping with {event_source_arn} and function {function} already exists. Please update or delete the existing mapping with UUID {existing}"
    )]
    Conflict {
        event_source_arn: String,
        function: String,
        existing: Uuid,
    },
    /// The mapping is being deleted: nothing more can be changed on it.
    #[error("The event source mapping {0} is being deleted")]
    BeingDeleted(Uuid),
    #[error(
        "mqtrigger runs --readonly: mappings cannot be changed, replayed or republished; restart it without --readonly"
    )]
    ReadOnly,
    /// A dead letter is replayed to a function that is not configured.
    #[error("function `{0}` is not configured")]
    NoSuchFunction(String),
    /// The function could not be invoked, or it failed.
    #[error(transparent)]
    Function(#[from] InvokeError),
    /// The mapping's secret could not be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The store, or the broker, failed; the error and its causes say how.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
    /// A service this console is attached to refused or failed: its words,
    /// and the type of its answer.
    #[error("{message}")]
    Remote { kind: Kind, message: String },
}

impl ControlError {
    pub fn kind(&self) -> Kind {
        match self {
            ControlError::NoSuchMapping(_)
            | ControlError::NoSuchDeadLetter { .. }
            | ControlError::NoSuchMessage { .. } => Kind::NotFound,
            ControlError::Invalid(e) => match e.refusal {
                Refusal::NotFound => Kind::NotFound,
                Refusal::Invalid => Kind::Invalid,
            },
            ControlError::Conflict { .. } | ControlError::BeingDeleted(_) => Kind::Conflict,
            ControlError::ReadOnly => Kind::ReadOnly,
            ControlError::NoSuchFunction(_)
            | ControlError::Function(_)
            | ControlError::Secret(_)
            | ControlError::Failed(_) => Kind::Failed,
            ControlError::Remote { kind, .. } => *kind,
        }
    }

    /// A failure said in a sentence (an attached console's, a local file's).
    pub fn failed(message: impl Into<String>) -> ControlError {
        ControlError::Remote {
            kind: Kind::Failed,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_function_is_not_found_and_a_bad_field_invalid() {
        let mut e = InvalidMapping::new("FunctionName", "Function not found: nowhere.");
        assert_eq!(ControlError::from(e.clone()).kind(), Kind::Invalid);
        e.refusal = Refusal::NotFound;
        assert_eq!(ControlError::from(e).kind(), Kind::NotFound);
        let store = anyhow::anyhow!("disk full").context("cannot write mapping 1");
        let failed = ControlError::from(store);
        assert_eq!(failed.kind(), Kind::Failed);
        assert_eq!(format!("{failed:#}"), "cannot write mapping 1: disk full");
        assert!(
            std::error::Error::source(&failed).is_some(),
            "the cause is kept"
        );
    }
}
