//! Changes to mappings: enable, disable, BatchSize, FilterCriteria, create,
//! update, delete; each written to the store first, then to the running task.
//!
//! Several instances may share the store, and each write of a mapping is a
//! compare-and-set ([`Store::modify_mapping`](crate::store::Store::modify_mapping)):
//! when another instance wrote the mapping in between, the change is made
//! again on what it wrote. So every change here is a function of the
//! mapping as stored at the write: it sets only the fields its request
//! names ([`MappingUpdate::apply`]), and the checks run on the result, on
//! each try. A change built from an earlier read would put that read's
//! other fields back, and lose the other instance's change.

use super::{Control, Result};
use crate::mapping::{
    FilterCriteria, Mapping, MappingSpec, MappingUpdate, State, StateTransitionReason,
};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

impl Control {
    pub async fn enable(&self, uuid: Uuid) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        let m = self.inner.mappings.modify(uuid, |m| {
            m.spec.enabled = Some(true);
            m.state = State::Enabled;
            m.state_transition_reason = StateTransitionReason::UserInitiated;
            m.state_detail = None;
            Ok(())
        })?;
        self.inner.runtime.stop(uuid).await;
        self.inner.runtime.spawn(&m);
        Ok(m)
    }

    pub async fn disable(&self, uuid: Uuid) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        self.inner.mappings.modify(uuid, |m| {
            m.spec.enabled = Some(false);
            m.state = State::Disabling;
            m.state_transition_reason = StateTransitionReason::UserInitiated;
            Ok(())
        })?;
        self.inner.runtime.stop(uuid).await;
        // Disabled, unless another instance enabled it in the meantime.
        self.inner.mappings.finish_transition(uuid)
    }

    pub async fn set_batch_size(&self, uuid: Uuid, batch_size: u32) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        let change = MappingUpdate {
            batch_size: Some(batch_size),
            ..MappingUpdate::default()
        };
        let m = self.inner.mappings.modify(uuid, |m| {
            change.apply(&mut m.spec);
            self.inner.mappings.check_mapping(&m.spec)
        })?;
        self.inner.runtime.push_settings(&m);
        Ok(m)
    }

    /// Pauses the mapping: it takes no new batch from the broker. Its
    /// consumer's session ends as after any change of settings: the batches
    /// with the function finish and are settled, and what the broker had
    /// pushed ahead goes back to the queue (the consumer is cancelled, so
    /// another consumer of the queue may take it). Kept in the store, so a
    /// restart, or another instance taking the mapping over, keeps it paused.
    pub async fn pause(&self, uuid: Uuid) -> Result<Mapping> {
        self.set_paused(uuid, true, false)
    }

    /// Takes new batches again, from where the queue is.
    pub async fn resume(&self, uuid: Uuid) -> Result<Mapping> {
        self.set_paused(uuid, false, false)
    }

    /// Lets exactly one batch through, then the mapping is paused again.
    /// On a mapping that is not paused, it pauses it after one more batch.
    pub async fn step(&self, uuid: Uuid) -> Result<Mapping> {
        self.set_paused(uuid, true, true)
    }

    fn set_paused(&self, uuid: Uuid, paused: bool, step: bool) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        let m = self.inner.mappings.modify(uuid, |m| {
            if m.state == State::Deleting {
                return Err(super::ControlError::BeingDeleted(uuid));
            }
            m.paused = paused;
            if step {
                m.steps += 1;
            }
            Ok(())
        })?;
        self.inner.runtime.push_settings(&m);
        Ok(m)
    }

    /// TagResource: adds or replaces these tags.
    pub async fn tag(&self, uuid: Uuid, tags: BTreeMap<String, String>) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        self.inner.mappings.modify(uuid, |m| {
            let mut all = m.spec.tags.clone().unwrap_or_default();
            all.extend(tags.clone());
            crate::validation::tags(&all)?;
            m.spec.tags = Some(all);
            Ok(())
        })
    }

    /// UntagResource: removes the tags of these keys (a key it does not
    /// have is no error, as on Lambda).
    pub async fn untag(&self, uuid: Uuid, keys: Vec<String>) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        self.inner.mappings.modify(uuid, |m| {
            let mut all = m.spec.tags.clone().unwrap_or_default();
            all.retain(|k, _| !keys.contains(k));
            m.spec.tags = (!all.is_empty()).then_some(all);
            Ok(())
        })
    }

    /// Replaces the mapping's FilterCriteria (None removes it). The pattern is
    /// checked first; the running consumer picks it up at once (State goes
    /// Updating, then Enabled).
    pub async fn set_filter_criteria(
        &self,
        uuid: Uuid,
        criteria: Option<FilterCriteria>,
    ) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        // As UpdateEventSourceMapping takes it: an empty FilterCriteria
        // removes the filter.
        let change = MappingUpdate {
            filter_criteria: Some(criteria.unwrap_or_default()),
            ..MappingUpdate::default()
        };
        let m = self.inner.mappings.modify(uuid, |m| {
            change.apply(&mut m.spec);
            self.inner.mappings.check_mapping(&m.spec)?;
            if m.state == State::Enabled {
                m.state = State::Updating;
            }
            Ok(())
        })?;
        self.inner.runtime.push_settings(&m);
        if m.state == State::Updating {
            return self.inner.mappings.finish_transition(uuid);
        }
        Ok(m)
    }

    /// Creates a mapping at run time (console, API). As on Lambda the answer
    /// is the mapping in state `Creating`; a later get shows `Enabled` or
    /// `Disabled`.
    pub async fn create(&self, mut spec: MappingSpec) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        spec.function_name = self.inner.mappings.known_function(&spec.function_name);
        // A spec built in code (the console's form) may carry empty
        // criteria, which mean no filter, as the API's do.
        spec.filter_criteria = spec
            .filter_criteria
            .take()
            .and_then(FilterCriteria::non_empty);
        self.inner.mappings.check_mapping(&spec)?;
        self.inner.mappings.check_conflict(&spec, None)?;
        let mut m = Mapping::new(
            spec.clone(),
            self.inner.mappings.function_arn(&spec.function_name),
        );
        m.state = State::Creating;
        self.inner.mappings.put(&m)?;
        let running = self.inner.mappings.finish_transition(m.uuid)?;
        if running.is_running() {
            self.inner.runtime.spawn(&running);
        }
        Ok(m)
    }

    /// UpdateEventSourceMapping: changes any of the fields a user may change.
    /// Answers the mapping in state `Updating`; the consumer restarts with
    /// the new settings in the background, and then the state is `Enabled`
    /// or `Disabled`.
    pub async fn update(&self, uuid: Uuid, mut update: MappingUpdate) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        if let Some(name) = &update.function_name {
            update.function_name = Some(self.inner.mappings.known_function(name));
        }
        let answer = self.inner.mappings.modify(uuid, |m| {
            update.apply(&mut m.spec);
            self.inner.mappings.check_mapping(&m.spec)?;
            self.inner.mappings.check_conflict(&m.spec, Some(uuid))?;
            m.function_arn = self.inner.mappings.function_arn(&m.spec.function_name);
            // As on Lambda: turning a mapping off or on answers Disabling or
            // Enabling; any other change, Updating.
            m.state = match update.enabled {
                Some(false) if m.state != State::Disabled => State::Disabling,
                Some(true) if m.state != State::Enabled => State::Enabling,
                _ => State::Updating,
            };
            m.state_transition_reason = StateTransitionReason::UserInitiated;
            m.state_detail = None;
            Ok(())
        })?;
        let control = self.clone();
        self.inner.background.spawn(async move {
            let _restarting = control.inner.restart_lock.lock().await;
            control.inner.runtime.stop(uuid).await;
            match control.inner.mappings.finish_transition(uuid) {
                Ok(m) if m.is_running() => control.inner.runtime.spawn(&m),
                Ok(_) => {}
                Err(e) => tracing::warn!(mapping = %uuid, "update did not finish: {e:#}"),
            }
        });
        Ok(answer)
    }

    /// Answers the mapping in state `Deleting`; it is gone once the
    /// invocation under way (if any) has finished and been settled.
    pub async fn delete(&self, uuid: Uuid) -> Result<Mapping> {
        self.inner.mappings.check_writable()?;
        let answer = self.inner.mappings.modify(uuid, |m| {
            m.state = State::Deleting;
            Ok(())
        })?;
        let control = self.clone();
        let finish = self.inner.background.spawn(async move {
            let _restarting = control.inner.restart_lock.lock().await;
            control.inner.runtime.stop(uuid).await;
            if let Err(e) = control.inner.mappings.remove(uuid) {
                tracing::error!(mapping = %uuid, "cannot delete the mapping: {e:#}");
            }
        });
        // A quick finish is the common case; a slow function must not hold the caller.
        let _ = tokio::time::timeout(Duration::from_millis(200), finish).await;
        Ok(answer)
    }
}
