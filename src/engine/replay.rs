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
        let invoker = self.function_of(mapping).await?;
        self.replay_with(&*invoker, mapping, dead_letter).await
    }

    /// [`Self::replay`] with a function already built: a bulk replay
    /// starts a `bootstrap` function's process once, not once a letter.
    pub(super) async fn replay_with(
        &self,
        invoker: &dyn invoke::Invoker,
        mapping: Uuid,
        dead_letter: i64,
    ) -> Result<String> {
        let letter = self.letter_of(mapping, dead_letter)?;
        let mapping = self.get(letter.mapping)?;
        let event = super::event_frame(self.config(), &mapping)
            .assemble_by_queue([(Some(letter.queue.as_str()), letter.record.as_slice())]);
        let response = invoker.invoke(event.into()).await?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    }

    /// The mapping's function, built for replays (not the running task's)
    /// where the running task's comes from: the engine's wiring.
    pub(super) async fn function_of(
        &self,
        mapping: Uuid,
    ) -> Result<std::sync::Arc<dyn invoke::Invoker>> {
        let mapping = self.get(mapping)?;
        let name = &mapping.spec.function_name;
        if !self.config().functions.contains_key(name) {
            return Err(ControlError::NoSuchFunction(name.clone()));
        }
        let env = self.task_env();
        Ok(env.wiring.invoker(env.wires(), &mapping).await?)
    }

    /// Invokes the mapping's function again with a whole event it saw before.
    pub async fn replay_event(&self, mapping: Uuid, event: bytes::Bytes) -> Result<String> {
        self.check_writable()?;
        let invoker = self.function_of(mapping).await?;
        let response = invoker.invoke(event).await?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    }

    /// Removes a dead letter from the journal. The broker's dead-letter
    /// queue, which has its own copy once it was moved, is not touched.
    pub fn delete_dead_letter(&self, mapping: Uuid, dead_letter: i64) -> Result<()> {
        self.check_writable()?;
        self.letter_of(mapping, dead_letter)?;
        self.store().delete_dead_letters(mapping, &[dead_letter])?;
        Ok(())
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
