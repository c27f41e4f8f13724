//! Second chances for dead letters, from the journal: replay re-invokes the
//! function with the same record (the broker is not touched); republish puts
//! the message back on its source queue, to go through the mapping again.

use super::{Control, ControlError};
use crate::config::BrokerEngine;
use crate::event::original;
use crate::invoke;
use crate::mapping::SourceAccessType;
use crate::publish;
use crate::store::DeadLetter;
use anyhow::Context;

type Result<T, E = ControlError> = std::result::Result<T, E>;
use uuid::Uuid;

impl Control {
    /// A dead letter of this mapping's journal, and no other's.
    fn letter_of(&self, mapping: Uuid, dead_letter: i64) -> Result<DeadLetter> {
        self.store()
            .dead_letter(dead_letter)?
            .filter(|l| l.mapping == mapping)
            .ok_or(ControlError::NoSuchDeadLetter {
                mapping,
                dead_letter,
            })
    }

    /// Invokes the mapping's function with a one-record event made of the
    /// dead letter's record; returns the function's response.
    pub async fn replay(&self, mapping: Uuid, dead_letter: i64) -> Result<String> {
        self.check_writable()?;
        let letter = self.letter_of(mapping, dead_letter)?;
        let mapping = self.get(letter.mapping)?;
        let event =
            super::event_frame(self.config(), &mapping).assemble([letter.record.as_slice()]);
        self.replay_event(mapping.uuid, event.into()).await
    }

    /// Invokes the mapping's function again with a whole event it saw before.
    pub async fn replay_event(&self, mapping: Uuid, event: bytes::Bytes) -> Result<String> {
        self.check_writable()?;
        let mapping = self.get(mapping)?;
        let name = &mapping.spec.function_name;
        let function = self
            .config()
            .functions
            .get(name)
            .ok_or_else(|| ControlError::NoSuchFunction(name.clone()))?;
        let invoker = invoke::build(name, function).await?;
        let response = invoker.invoke(event).await?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    }

    /// Publishes the dead letter to the queue it came from: its body, with
    /// the properties and headers it had (`event::original`).
    pub async fn republish(&self, mapping: Uuid, dead_letter: i64) -> Result<()> {
        self.check_writable()?;
        let letter = self.letter_of(mapping, dead_letter)?;
        let mapping = self.get(letter.mapping)?;
        let spec = &mapping.spec;
        let broker = self
            .config()
            .broker(&spec.event_source_arn)
            .context("the mapping's broker is not configured")?;
        let secret_arn = spec.access(SourceAccessType::BasicAuth).unwrap_or_default();
        let secret = self.secrets().get(secret_arn).await?;
        let endpoint = broker
            .endpoints
            .first()
            .context("the broker has no endpoints")?;
        let (scheme, rest) = endpoint
            .split_once("://")
            .context("a broker endpoint is not a URL")?;
        let user = |s: &str| {
            s.replace('%', "%25")
                .replace('@', "%40")
                .replace(':', "%3A")
                .replace('/', "%2F")
        };
        let auth = format!("{}:{}", user(&secret.username), user(&secret.password));
        match broker.engine {
            BrokerEngine::Rabbitmq => {
                let vhost = spec.access(SourceAccessType::VirtualHost).unwrap_or("/");
                let url = format!(
                    "{scheme}://{auth}@{}/{}",
                    rest.trim_end_matches('/'),
                    user(vhost)
                );
                let message = original::from_rmq(
                    &letter.record,
                    letter.amqp_headers.as_deref(),
                    &letter.body,
                    &secret.username,
                );
                publish::publish(&url, spec.queue(), &message, 1, false).await?
            }
            BrokerEngine::Activemq => {
                let now = chrono::Utc::now().timestamp_millis();
                let (message, bytes) = original::from_mq(&letter.record, &letter.body, now);
                let url = format!("{scheme}://{auth}@{rest}");
                publish::publish(&url, spec.queue(), &message, 1, bytes).await?
            }
        }
        Ok(())
    }
}
