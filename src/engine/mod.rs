//! The engine: one supervised task per mapping, driven through [`Control`].
//!
//! The console, `serve` and the REST API all hold a `Control`. It changes
//! mappings (in the store first, then in the running task) and hands out a
//! stream of [`EngineEvent`]s. A poller never knows who is watching.

mod batch;
mod poller;
mod replay;
pub mod retry;

pub use batch::{Batch, Batcher, Gathered};

use crate::config::Config;
use crate::mapping::{self, Mapping, MappingSpec, State, StateTransitionReason};
use crate::store::Store;
use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What happened in the engine, for whoever watches.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    MappingChanged(Box<Mapping>),
    MappingDeleted(Uuid),
    /// Messages came from the broker (each counted once, when first gathered).
    Received {
        mapping: Uuid,
        messages: usize,
        /// How many of them the broker marked redelivered.
        redelivered: usize,
    },
    BatchStarted {
        mapping: Uuid,
        messages: usize,
        bytes: usize,
        attempt: u32,
        /// The event the function is given (shared, not copied).
        event: bytes::Bytes,
    },
    BatchSucceeded {
        mapping: Uuid,
        messages: usize,
        attempts: u32,
        latency: Duration,
    },
    BatchFailed {
        mapping: Uuid,
        messages: usize,
        attempt: u32,
        error: String,
    },
    DeadLettered {
        mapping: Uuid,
        messages: usize,
        reason: String,
    },
    /// Messages matched no filter: acked without invoking the function.
    Filtered {
        mapping: Uuid,
        messages: usize,
    },
    /// Messages were invoked but could not be acked; the broker delivers them again.
    SettleFailed {
        mapping: Uuid,
        messages: usize,
        reason: String,
    },
}

/// The settings a running mapping picks up without restarting.
#[derive(Debug, Clone, PartialEq)]
struct RunSettings {
    batch_size: u32,
    window: Duration,
}

struct Runner {
    cancel: CancellationToken,
    settings: watch::Sender<RunSettings>,
    task: JoinHandle<()>,
}

struct Inner {
    config: Config,
    store: Arc<Store>,
    events: broadcast::Sender<EngineEvent>,
    runners: Mutex<HashMap<Uuid, Runner>>,
    /// Serializes read-modify-write of a mapping between Control and pollers.
    mapping_lock: Mutex<()>,
}

/// The one handle through which everything drives the engine.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

impl Control {
    /// Loads the mappings (creating those of the config file that are new)
    /// and starts every enabled one.
    pub async fn start(config: Config, store: Store) -> Result<Control> {
        let (events, _) = broadcast::channel(4096);
        let control = Control {
            inner: Arc::new(Inner {
                config,
                store: Arc::new(store),
                events,
                runners: Mutex::new(HashMap::new()),
                mapping_lock: Mutex::new(()),
            }),
        };
        control.import_config_mappings()?;
        for mapping in control.list()? {
            if mapping.wants_to_run() {
                control.spawn(&mapping);
            }
        }
        Ok(control)
    }

    /// Config-file mappings are created on first start. A run-time change
    /// (enable, batch size) survives restarts until the file's entry itself
    /// changes; then the file wins, because that is the newer intent.
    fn import_config_mappings(&self) -> Result<()> {
        let stored = self.inner.store.mappings()?;
        for spec in &self.inner.config.mappings {
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
                    self.inner.store.put_mapping(&m, Some(spec))?;
                }
                None => {
                    let m = Mapping::new(spec.clone(), self.function_arn(&spec.function_name));
                    tracing::info!(uuid = %m.uuid, queue = m.spec.queue(), function = %spec.function_name, "mapping created from the config file");
                    self.inner.store.put_mapping(&m, Some(spec))?;
                }
            }
        }
        // A mapping that came from the file and left it is deleted with it.
        for (m, file_spec) in &stored {
            if file_spec.is_some()
                && !self
                    .inner
                    .config
                    .mappings
                    .iter()
                    .any(|s| s.conflicts_with(&m.spec))
            {
                tracing::info!(uuid = %m.uuid, "mapping removed from the config file; deleting it");
                self.inner.store.delete_mapping(m.uuid)?;
            }
        }
        Ok(())
    }

    fn function_arn(&self, name: &str) -> String {
        match self.inner.config.functions.get(name) {
            Some(f) => mapping::function_arn(name, f),
            None => format!("arn:aws:lambda:local:000000000000:function:{name}"),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events.subscribe()
    }

    pub fn list(&self) -> Result<Vec<Mapping>> {
        Ok(self
            .inner
            .store
            .mappings()?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    pub fn get(&self, uuid: Uuid) -> Result<Mapping> {
        self.inner
            .store
            .mapping(uuid)?
            .ok_or_else(|| anyhow!("no mapping {uuid}"))
    }

    /// Changes a mapping in the store and tells the watchers.
    fn modify(&self, uuid: Uuid, change: impl FnOnce(&mut Mapping)) -> Result<Mapping> {
        let _guard = self
            .inner
            .mapping_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut m = self.get(uuid)?;
        change(&mut m);
        m.last_modified = Utc::now();
        self.inner.store.put_mapping(&m, None)?;
        self.emit(EngineEvent::MappingChanged(Box::new(m.clone())));
        Ok(m)
    }

    fn emit(&self, event: EngineEvent) {
        // Nobody listening is fine.
        let _ = self.inner.events.send(event);
    }

    pub async fn enable(&self, uuid: Uuid) -> Result<Mapping> {
        let m = self.modify(uuid, |m| {
            m.spec.enabled = Some(true);
            m.state = State::Enabled;
            m.state_transition_reason = StateTransitionReason::UserInitiated;
            m.state_detail = None;
        })?;
        self.stop_runner(uuid).await;
        self.spawn(&m);
        Ok(m)
    }

    pub async fn disable(&self, uuid: Uuid) -> Result<Mapping> {
        self.modify(uuid, |m| {
            m.spec.enabled = Some(false);
            m.state = State::Disabling;
            m.state_transition_reason = StateTransitionReason::UserInitiated;
        })?;
        self.stop_runner(uuid).await;
        self.modify(uuid, |m| m.state = State::Disabled)
    }

    pub async fn set_batch_size(&self, uuid: Uuid, batch_size: u32) -> Result<Mapping> {
        let mut spec = self.get(uuid)?.spec;
        spec.batch_size = Some(batch_size);
        spec.validate().map_err(|e| anyhow!(e))?;
        let m = self.modify(uuid, |m| m.spec.batch_size = Some(batch_size))?;
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
        let mut spec = self.get(uuid)?.spec;
        spec.filter_criteria = criteria.clone();
        spec.validate().map_err(|e| anyhow!(e))?;
        let m = self.modify(uuid, |m| {
            m.spec.filter_criteria = criteria;
            if m.state == State::Enabled {
                m.state = State::Updating;
            }
        })?;
        self.push_settings(&m);
        if m.state == State::Updating {
            return self.modify(uuid, |m| m.state = State::Enabled);
        }
        Ok(m)
    }

    /// Creates a mapping at run time (console, API).
    pub async fn create(&self, spec: MappingSpec) -> Result<Mapping> {
        spec.validate().map_err(|e| anyhow!(e))?;
        self.check_references(&spec)?;
        if self.list()?.iter().any(|m| m.spec.conflicts_with(&spec)) {
            bail!(
                "the function {} is already mapped to queue {}",
                spec.function_name,
                spec.queue()
            );
        }
        let m = Mapping::new(spec.clone(), self.function_arn(&spec.function_name));
        self.inner.store.put_mapping(&m, None)?;
        self.emit(EngineEvent::MappingChanged(Box::new(m.clone())));
        if m.wants_to_run() {
            self.spawn(&m);
        }
        Ok(m)
    }

    fn check_references(&self, spec: &MappingSpec) -> Result<()> {
        let config = &self.inner.config;
        config.broker(&spec.event_source_arn).with_context(|| {
            format!(
                "EventSourceArn {} names no configured broker",
                spec.event_source_arn
            )
        })?;
        if !config.functions.contains_key(&spec.function_name) {
            bail!(
                "FunctionName {} is not a configured function",
                spec.function_name
            );
        }
        Ok(())
    }

    pub async fn delete(&self, uuid: Uuid) -> Result<()> {
        self.modify(uuid, |m| m.state = State::Deleting)?;
        self.stop_runner(uuid).await;
        self.inner.store.delete_mapping(uuid)?;
        self.emit(EngineEvent::MappingDeleted(uuid));
        Ok(())
    }

    fn push_settings(&self, m: &Mapping) {
        if let Some(runner) = self
            .inner
            .runners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&m.uuid)
        {
            runner.settings.send_replace(RunSettings {
                batch_size: m.spec.batch_size(),
                window: m.spec.batching_window(),
            });
        }
    }

    fn spawn(&self, m: &Mapping) {
        let cancel = CancellationToken::new();
        let (settings, settings_rx) = watch::channel(RunSettings {
            batch_size: m.spec.batch_size(),
            window: m.spec.batching_window(),
        });
        let task = tokio::spawn(supervise(self.clone(), m.uuid, cancel.clone(), settings_rx));
        let old = self
            .inner
            .runners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                m.uuid,
                Runner {
                    cancel,
                    settings,
                    task,
                },
            );
        if let Some(old) = old {
            old.cancel.cancel();
        }
    }

    async fn stop_runner(&self, uuid: Uuid) {
        let runner = self
            .inner
            .runners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&uuid);
        if let Some(runner) = runner {
            runner.cancel.cancel();
            let _ = runner.task.await;
        }
    }

    /// Stops every mapping: invocations under way finish and are settled,
    /// everything else goes back to the broker.
    pub async fn shutdown(&self) {
        let runners: Vec<Runner> = self
            .inner
            .runners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &runners {
            r.cancel.cancel();
        }
        for r in runners {
            let _ = r.task.await;
        }
    }
}

/// Runs a mapping's poller and starts it again if it panics: a bug in one
/// mapping must neither take the others down nor leave this one dead.
async fn supervise(
    control: Control,
    uuid: Uuid,
    cancel: CancellationToken,
    settings: watch::Receiver<RunSettings>,
) {
    let mut backoff = retry::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let poller = tokio::spawn(poller::run(
            control.clone(),
            uuid,
            cancel.clone(),
            settings.clone(),
        ));
        match poller.await {
            Err(e) if e.is_panic() => {
                tracing::error!(mapping = %uuid, "mapping task panicked; restarting it: {e}");
                let _ = control.modify(uuid, |m| {
                    m.last_processing_result =
                        "PROBLEM: internal error in mqtrigger; the mapping restarts".into()
                });
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
            _ => return,
        }
    }
}

/// The event around a mapping's records: `aws:mq` for ActiveMQ, `aws:rmq` for RabbitMQ.
pub fn event_frame(config: &Config, mapping: &Mapping) -> crate::event::EventFrame {
    use crate::config::BrokerEngine;
    use crate::mapping::SourceAccessType;
    let arn = &mapping.spec.event_source_arn;
    if config.broker(arn).map(|b| b.engine) == Some(BrokerEngine::Activemq) {
        return crate::event::mq::frame(arn);
    }
    let vhost = mapping
        .spec
        .access(SourceAccessType::VirtualHost)
        .unwrap_or("/");
    crate::event::rmq::frame(arn, mapping.spec.queue(), vhost)
}
