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

use super::{Control, ControlError, Result};
use crate::engine::events::EngineEvent;
use crate::mapping::{self, Mapping, MappingSpec, MappingUpdate, State, StateTransitionReason};
use chrono::Utc;
use std::time::Duration;
use uuid::Uuid;

impl Control {
    /// Changes a mapping in the store and tells the watchers. The change
    /// is made to what is stored at the write (an instance sharing the
    /// store may have written it since), so it may run more than once; an
    /// `Err` from it refuses the change and nothing is written.
    pub(in crate::engine) fn modify(
        &self,
        uuid: Uuid,
        mut change: impl FnMut(&mut Mapping) -> Result<()>,
    ) -> Result<Mapping> {
        let _guard = self
            .inner
            .mapping_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let m = self
            .inner
            .store
            .modify_mapping(uuid, |m| {
                change(m)?;
                m.last_modified = Utc::now();
                Ok::<_, ControlError>(())
            })?
            .ok_or_else(|| {
                ControlError::NotFound(format!("The event source mapping {uuid} does not exist"))
            })?;
        self.emit(EngineEvent::MappingChanged(Box::new(m.clone())));
        Ok(m)
    }

    /// Ends the change under way (`Mapping::finish_transition`), on what
    /// is stored now.
    pub(super) fn finish_transition(&self, uuid: Uuid) -> Result<Mapping> {
        self.modify(uuid, |m| {
            m.finish_transition();
            Ok(())
        })
    }

    pub async fn enable(&self, uuid: Uuid) -> Result<Mapping> {
        self.check_writable()?;
        let m = self.modify(uuid, |m| {
            m.spec.enabled = Some(true);
            m.state = State::Enabled;
            m.state_transition_reason = StateTransitionReason::UserInitiated;
            m.state_detail = None;
            Ok(())
        })?;
        self.stop_runner(uuid).await;
        self.spawn(&m);
        Ok(m)
    }

    pub async fn disable(&self, uuid: Uuid) -> Result<Mapping> {
        self.check_writable()?;
        self.modify(uuid, |m| {
            m.spec.enabled = Some(false);
            m.state = State::Disabling;
            m.state_transition_reason = StateTransitionReason::UserInitiated;
            Ok(())
        })?;
        self.stop_runner(uuid).await;
        // Disabled, unless another instance enabled it in the meantime.
        self.finish_transition(uuid)
    }

    pub async fn set_batch_size(&self, uuid: Uuid, batch_size: u32) -> Result<Mapping> {
        self.check_writable()?;
        let change = MappingUpdate {
            batch_size: Some(batch_size),
            ..MappingUpdate::default()
        };
        let m = self.modify(uuid, |m| {
            change.apply(&mut m.spec);
            self.check_mapping(&m.spec)
        })?;
        self.push_settings(&m);
        Ok(m)
    }

    /// Replaces the mapping's FilterCriteria (None removes it). The pattern is
    /// checked first; the running consumer picks it up at once (State goes
    /// Updating, then Enabled).
    pub async fn set_filter_criteria(
        &self,
        uuid: Uuid,
        criteria: Option<serde_json::Value>,
    ) -> Result<Mapping> {
        self.check_writable()?;
        // As UpdateEventSourceMapping takes it: an empty FilterCriteria
        // removes the filter.
        let change = MappingUpdate {
            filter_criteria: Some(criteria.unwrap_or_else(|| serde_json::json!({}))),
            ..MappingUpdate::default()
        };
        let m = self.modify(uuid, |m| {
            change.apply(&mut m.spec);
            self.check_mapping(&m.spec)?;
            if m.state == State::Enabled {
                m.state = State::Updating;
            }
            Ok(())
        })?;
        self.push_settings(&m);
        if m.state == State::Updating {
            return self.finish_transition(uuid);
        }
        Ok(m)
    }

    /// Creates a mapping at run time (console, API). As on Lambda the answer
    /// is the mapping in state `Creating`; a later get shows `Enabled` or
    /// `Disabled`.
    pub async fn create(&self, mut spec: MappingSpec) -> Result<Mapping> {
        self.check_writable()?;
        spec.function_name = self.known_function(&spec.function_name);
        spec.filter_criteria = spec
            .filter_criteria
            .take()
            .and_then(mapping::normalize_filter_criteria);
        self.check_mapping(&spec)?;
        self.check_conflict(&spec, None)?;
        let mut m = Mapping::new(spec.clone(), self.function_arn(&spec.function_name));
        m.state = State::Creating;
        self.inner.store.put_mapping(&m, None)?;
        self.emit(EngineEvent::MappingChanged(Box::new(m.clone())));
        let running = self.finish_transition(m.uuid)?;
        if running.is_running() {
            self.spawn(&running);
        }
        Ok(m)
    }

    /// UpdateEventSourceMapping: changes any of the fields a user may change.
    /// Answers the mapping in state `Updating`; the consumer restarts with
    /// the new settings in the background, and then the state is `Enabled`
    /// or `Disabled`.
    pub async fn update(&self, uuid: Uuid, mut update: MappingUpdate) -> Result<Mapping> {
        self.check_writable()?;
        if let Some(name) = &update.function_name {
            update.function_name = Some(self.known_function(name));
        }
        let answer = self.modify(uuid, |m| {
            update.apply(&mut m.spec);
            self.check_mapping(&m.spec)?;
            self.check_conflict(&m.spec, Some(uuid))?;
            m.function_arn = self.function_arn(&m.spec.function_name);
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
            control.stop_runner(uuid).await;
            match control.finish_transition(uuid) {
                Ok(m) if m.is_running() => control.spawn(&m),
                Ok(_) => {}
                Err(e) => tracing::warn!(mapping = %uuid, "update did not finish: {e:#}"),
            }
        });
        Ok(answer)
    }

    /// The configured function's name for a FunctionName (a name or an
    /// ARN); one that names no function is kept for the check to refuse.
    fn known_function(&self, given: &str) -> String {
        self.resolve_function(given)
            .unwrap_or_else(|| given.to_owned())
    }

    /// The one check of a mapping (`crate::validation`), as Control's error.
    fn check_mapping(&self, spec: &MappingSpec) -> Result<()> {
        crate::validation::check_mapping(spec, &self.inner.config).map_err(ControlError::from)
    }

    /// Lambda allows one mapping per function and queue.
    fn check_conflict(&self, spec: &MappingSpec, except: Option<Uuid>) -> Result<()> {
        let clash = self
            .list()?
            .into_iter()
            .find(|m| Some(m.uuid) != except && m.spec.conflicts_with(spec));
        if let Some(other) = clash {
            return Err(ControlError::Conflict(format!(
                "An event source mapping with {} and function {} already exists. Please update or delete the existing mapping with UUID {}",
                spec.event_source_arn, spec.function_name, other.uuid
            )));
        }
        Ok(())
    }

    /// Answers the mapping in state `Deleting`; it is gone once the
    /// invocation under way (if any) has finished and been settled.
    pub async fn delete(&self, uuid: Uuid) -> Result<Mapping> {
        self.check_writable()?;
        let answer = self.modify(uuid, |m| {
            m.state = State::Deleting;
            Ok(())
        })?;
        let control = self.clone();
        let finish = self.inner.background.spawn(async move {
            let _restarting = control.inner.restart_lock.lock().await;
            control.stop_runner(uuid).await;
            match control.inner.store.delete_mapping(uuid) {
                Ok(_) => control.emit(EngineEvent::MappingDeleted(uuid)),
                Err(e) => tracing::error!(mapping = %uuid, "cannot delete the mapping: {e:#}"),
            }
        });
        // A quick finish is the common case; a slow function must not hold the caller.
        let _ = tokio::time::timeout(Duration::from_millis(200), finish).await;
        Ok(answer)
    }
}
