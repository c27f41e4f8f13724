//! Second chances for dead letters, from the journal: replay re-invokes the
//! function with the same record (the broker is not touched); republish puts
//! the message back on its source queue, to go through the mapping again.

use super::{Control, ControlError};
use crate::invoke;
use crate::store::DeadLetter;
use uuid::Uuid;

type Result<T, E = ControlError> = std::result::Result<T, E>;

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
    /// the properties and headers it had (`source::original`), over the
    /// broker connections the mappings share, confirmed by the broker.
    pub async fn republish(&self, mapping: Uuid, dead_letter: i64) -> Result<()> {
        self.check_writable()?;
        let letter = self.letter_of(mapping, dead_letter)?;
        let mapping = self.get(letter.mapping)?;
        let env = self.task_env();
        env.wiring
            .republish(env.wires(), &mapping, &letter)
            .await
            .map_err(|e| {
                ControlError::Failed(
                    anyhow::Error::new(e).context("cannot republish the dead letter"),
                )
            })
    }
}
