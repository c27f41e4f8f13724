//! The mapping service: every read and write of a mapping, each write
//! checked (`crate::validation`), stored, then announced to the watchers.
//! It runs nothing; the runtime runs what it says.

use super::error::ControlError;
use super::events::EngineEvent;
use super::hub::Hub;
use crate::config::Config;
use crate::mapping::{self, Mapping, MappingSpec, State, StateTransitionReason};
use crate::store::Store;
use crate::sync::Unpoisoned;
use chrono::Utc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

type Result<T, E = ControlError> = std::result::Result<T, E>;

pub(crate) struct MappingService {
    config: Arc<Config>,
    store: Arc<Store>,
    hub: Arc<Hub>,
    /// Serializes this instance's read-modify-writes of a mapping (another
    /// instance's are met by the store's compare-and-set).
    lock: Mutex<()>,
    /// `--readonly`: the mappings run, but nothing may change them.
    readonly: AtomicBool,
}

impl MappingService {
    pub(crate) fn new(config: Arc<Config>, store: Arc<Store>, hub: Arc<Hub>) -> MappingService {
        MappingService {
            config,
            store,
            hub,
            lock: Mutex::new(()),
            readonly: AtomicBool::new(false),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub(crate) fn list(&self) -> Result<Vec<Mapping>> {
        Ok(self.store.mappings()?.into_iter().map(|(m, _)| m).collect())
    }

    pub(crate) fn get(&self, uuid: Uuid) -> Result<Mapping> {
        self.store
            .mapping(uuid)?
            .ok_or(ControlError::NoSuchMapping(uuid))
    }

    /// Changes a mapping in the store and tells the watchers. The change
    /// is made to what is stored at the write (an instance sharing the
    /// store may have written it since), so it may run more than once; an
    /// `Err` from it refuses the change and nothing is written.
    pub(crate) fn modify(
        &self,
        uuid: Uuid,
        mut change: impl FnMut(&mut Mapping) -> Result<()>,
    ) -> Result<Mapping> {
        let _guard = self.lock.locked();
        let m = self
            .store
            .modify_mapping(uuid, |m| {
                change(m)?;
                m.last_modified = Utc::now();
                Ok::<_, ControlError>(())
            })?
            .ok_or(ControlError::NoSuchMapping(uuid))?;
        self.hub
            .emit(EngineEvent::MappingChanged(Box::new(m.clone())));
        Ok(m)
    }

    /// Stores a new mapping and tells the watchers.
    pub(crate) fn put(&self, m: &Mapping) -> Result<()> {
        self.store.put_mapping(m, None)?;
        self.hub
            .emit(EngineEvent::MappingChanged(Box::new(m.clone())));
        Ok(())
    }

    /// Removes a mapping from the store and tells the watchers.
    pub(crate) fn remove(&self, uuid: Uuid) -> Result<()> {
        self.store.delete_mapping(uuid)?;
        self.hub.emit(EngineEvent::MappingDeleted(uuid));
        Ok(())
    }

    /// Ends the change under way (`Mapping::finish_transition`), on what
    /// is stored now.
    pub(crate) fn finish_transition(&self, uuid: Uuid) -> Result<Mapping> {
        self.modify(uuid, |m| {
            m.finish_transition();
            Ok(())
        })
    }

    /// From now on, refuse every change (enable, disable, batch size,
    /// filters, create, update, delete, replay, republish) to every caller:
    /// console, API and CLI alike.
    pub(crate) fn make_readonly(&self) {
        self.readonly.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_readonly(&self) -> bool {
        self.readonly.load(Ordering::SeqCst)
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.is_readonly() {
            return Err(ControlError::ReadOnly);
        }
        Ok(())
    }

    /// The configured function a FunctionName names: its name, its ARN, or
    /// a partial ARN ending in `function:name`.
    pub(crate) fn resolve_function(&self, given: &str) -> Option<String> {
        crate::validation::resolve_function(given, &self.config)
    }

    /// The configured function's name for a FunctionName (a name or an
    /// ARN); one that names no function is kept for the check to refuse.
    pub(crate) fn known_function(&self, given: &str) -> String {
        self.resolve_function(given)
            .unwrap_or_else(|| given.to_owned())
    }

    pub(crate) fn function_arn(&self, name: &str) -> String {
        match self.config.functions.get(name) {
            Some(f) => mapping::function_arn(name, f),
            None => mapping::unknown_function_arn(name),
        }
    }

    /// The one check of a mapping (`crate::validation`).
    pub(crate) fn check_mapping(&self, spec: &MappingSpec) -> Result<()> {
        crate::validation::check_mapping(spec, &self.config).map_err(ControlError::from)
    }

    /// Lambda allows one mapping per function and queue.
    pub(crate) fn check_conflict(&self, spec: &MappingSpec, except: Option<Uuid>) -> Result<()> {
        let clash = self
            .list()?
            .into_iter()
            .find(|m| Some(m.uuid) != except && m.spec.conflicts_with(spec));
        match clash {
            Some(other) => Err(ControlError::Conflict {
                event_source_arn: spec.event_source_arn.clone(),
                function: spec.function_name.clone(),
                existing: other.uuid,
            }),
            None => Ok(()),
        }
    }

    /// Config-file mappings are created on first start. A run-time change
    /// (enable, batch size) survives restarts until the file's entry itself
    /// changes; then the file wins, because that is the newer intent.
    pub(crate) fn import_config_mappings(&self) -> Result<()> {
        let stored = self.store.mappings()?;
        for spec in &self.config.mappings {
            let existing = stored.iter().find(|(m, _)| m.spec.conflicts_with(spec));
            match existing {
                Some((_, Some(file_spec))) if file_spec == spec => {}
                Some((m, _)) => {
                    let mut m = m.clone();
                    m.spec = spec.clone();
                    m.state = if m.wants_to_run() {
                        State::Enabled
                    } else {
                        State::Disabled
                    };
                    m.state_transition_reason = StateTransitionReason::UserInitiated;
                    m.state_detail = None;
                    m.last_modified = Utc::now();
                    tracing::info!(uuid = %m.uuid, queue = m.spec.queue(), "mapping updated from the config file");
                    self.store.put_mapping(&m, Some(spec))?;
                }
                None => {
                    let m = Mapping::new(spec.clone(), self.function_arn(&spec.function_name));
                    tracing::info!(uuid = %m.uuid, queue = m.spec.queue(), function = %spec.function_name, "mapping created from the config file");
                    self.store.put_mapping(&m, Some(spec))?;
                }
            }
        }
        // A mapping that came from the file and left it is deleted with it.
        for (m, file_spec) in &stored {
            let in_the_file = self
                .config
                .mappings
                .iter()
                .any(|s| s.conflicts_with(&m.spec));
            if file_spec.is_some() && !in_the_file {
                tracing::info!(uuid = %m.uuid, "mapping removed from the config file; deleting it");
                self.store.delete_mapping(m.uuid)?;
            }
        }
        Ok(())
    }

    /// A change that a crash cut short (the store says Creating, Updating,
    /// Enabling, Disabling or Deleting) is finished now: the spec in the
    /// store is the intent. None when the mapping was being deleted.
    pub(crate) fn finish_interrupted_change(&self, m: Mapping) -> Result<Option<Mapping>> {
        match m.state {
            State::Enabled | State::Disabled => Ok(Some(m)),
            State::Deleting => {
                tracing::info!(uuid = %m.uuid, "finishing a deletion a stop cut short");
                self.store.delete_mapping(m.uuid)?;
                Ok(None)
            }
            interrupted => {
                tracing::info!(uuid = %m.uuid, state = %interrupted, "finishing a change a stop cut short");
                self.finish_transition(m.uuid).map(Some)
            }
        }
    }
}
