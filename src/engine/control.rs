//! The one handle through which the console, `serve` and the API drive the
//! engine. It holds the engine's parts and puts them together; each does
//! one thing:
//!
//! - the hub (`hub.rs`): events, the counts they make, batch ids, the journal;
//! - the mapping service (`mappings.rs`): every read and write of a mapping,
//!   checked, stored, announced;
//! - the runtime (`runtime.rs`): the tasks of the mappings this instance runs;
//! - the cluster (`cluster.rs`): with a shared store, what this instance runs
//!   and what the others do.
//!
//! A change (`control/changes.rs`) is written by the mapping service, then
//! the runtime is told.

use super::cluster::Cluster;
use super::context::TaskEnv;
pub use super::error::{ControlError, Kind};
use super::events::EngineEvent;
use super::hub::Hub;
use super::mappings::MappingService;
use super::runtime::Runtime;
use super::stats::{EngineStats, MappingStats};
use super::wiring::{Configured, Wiring};
use crate::config::Config;
use crate::mapping::Mapping;
use crate::store::{Instance, Store};
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

mod changes;

type Result<T, E = ControlError> = std::result::Result<T, E>;

struct Inner {
    /// What the mappings' tasks are given; replay and republish use its
    /// wiring too, so they go over the sources' connections.
    env: Arc<TaskEnv>,
    hub: Arc<Hub>,
    mappings: Arc<MappingService>,
    runtime: Arc<Runtime>,
    /// Kept so that the cluster's tasks live as long as the engine.
    _cluster: Arc<Cluster>,
    secrets: Arc<crate::secrets::Secrets>,
    /// The halves of updates and deletes that finish in the background; a
    /// shutdown waits for them.
    background: TaskTracker,
    /// Serializes the stop-and-start halves of changes that finish in the background.
    restart_lock: tokio::sync::Mutex<()>,
}

/// The one handle through which everything drives the engine.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

impl Control {
    /// Loads the mappings (creating those of the config file that are new)
    /// and starts every enabled one.
    pub async fn start(config: Config, store: Store) -> anyhow::Result<Control> {
        Self::start_wired(config, store, Arc::new(Configured::default())).await
    }

    /// [`Self::start`] with sources and functions from `wiring` (tests run
    /// the engine on an in-memory broker this way).
    pub async fn start_wired(
        config: Config,
        store: Store,
        wiring: Arc<dyn Wiring>,
    ) -> anyhow::Result<Control> {
        let store = Arc::new(store);
        let shared = store.share().is_some();
        let secrets = Arc::new(crate::secrets::Secrets::new(&config));
        let hub = Arc::new(Hub::new(&store, config.engine.history_messages));
        let mappings = Arc::new(MappingService::new(
            Arc::new(config),
            store.clone(),
            hub.clone(),
        ));
        let env = Arc::new(TaskEnv {
            hub: hub.clone(),
            mappings: mappings.clone(),
            wiring,
            secrets: secrets.clone(),
        });
        let runtime = Arc::new(Runtime::new(env.clone(), shared));
        let cluster = Arc::new(Cluster {
            hub: hub.clone(),
            mappings: mappings.clone(),
            runtime: runtime.clone(),
        });
        // Instances starting together on one database make them once.
        store.exclusive(|| mappings.import_config_mappings())??;
        for mapping in mappings.list()? {
            let Some(mapping) = mappings.finish_interrupted_change(mapping)? else {
                continue;
            };
            if mapping.runs_at_start() {
                runtime.spawn(&mapping);
            } else if mapping.stopped_by_a_stop_code() {
                tracing::warn!(
                    uuid = %mapping.uuid,
                    "mapping stays stopped ({}: {}); enable it once that is fixed",
                    mapping.state_transition_reason,
                    mapping.state_detail.as_deref().unwrap_or_default()
                );
            }
        }
        cluster.follow();
        Ok(Control {
            inner: Arc::new(Inner {
                env,
                hub,
                mappings,
                runtime,
                _cluster: cluster,
                secrets,
                background: TaskTracker::new(),
                restart_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The configured function a FunctionName names: its name, its ARN, or
    /// a partial ARN ending in `function:name`.
    pub fn resolve_function(&self, given: &str) -> Option<String> {
        self.inner.mappings.resolve_function(given)
    }

    pub fn config(&self) -> &Config {
        self.inner.mappings.config()
    }

    /// From now on, refuse every change (enable, disable, batch size,
    /// filters, create, update, delete, replay, republish) to every caller:
    /// console, API and CLI alike.
    pub fn make_readonly(&self) {
        self.inner.mappings.make_readonly();
    }

    pub fn is_readonly(&self) -> bool {
        self.inner.mappings.is_readonly()
    }

    pub(super) fn task_env(&self) -> &TaskEnv {
        &self.inner.env
    }

    /// Refuses a change, replay or republish under `--readonly`.
    pub(super) fn check_writable(&self) -> Result<()> {
        self.inner.mappings.check_writable()
    }

    pub fn secrets(&self) -> &crate::secrets::Secrets {
        &self.inner.secrets
    }

    pub fn store(&self) -> &Arc<Store> {
        self.inner.mappings.store()
    }

    /// The events from now on. To count them, start from [`Self::watch`].
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.hub.subscribe()
    }

    /// The counts as they are, and the events after them: apply each event
    /// to the snapshot ([`EngineStats::apply`]) and the numbers stay exact.
    /// A receiver that lags (`RecvError::Lagged`) calls this again.
    pub fn watch(&self) -> (EngineStats, broadcast::Receiver<EngineEvent>) {
        self.inner.hub.watch()
    }

    /// One mapping's counts now.
    pub fn stats(&self, mapping: Uuid) -> MappingStats {
        self.inner.hub.stats(mapping)
    }

    /// What happened to message `id` of a mapping: its arrivals, attempts
    /// and end, while it is among the mapping's newest `[engine]
    /// history_messages`. Kept by the instance that ran it.
    pub fn message_history(&self, mapping: Uuid, id: &str) -> Result<super::history::Timeline> {
        self.get(mapping)?;
        self.inner
            .hub
            .timeline(mapping, id)
            .ok_or_else(|| ControlError::NoSuchMessage {
                mapping,
                message: id.to_owned(),
            })
    }

    /// The ids of a mapping's newest messages, newest first.
    pub fn recent_messages(&self, mapping: Uuid, limit: usize) -> Vec<String> {
        self.inner.hub.recent_messages(mapping, limit)
    }

    /// Every mapping's counts now.
    pub fn all_stats(&self) -> EngineStats {
        self.inner.hub.all_stats()
    }

    pub fn list(&self) -> Result<Vec<Mapping>> {
        self.inner.mappings.list()
    }

    pub fn get(&self, uuid: Uuid) -> Result<Mapping> {
        self.inner.mappings.get(uuid)
    }

    /// With a shared store: this instance's id, and the instances on the store.
    pub fn instance(&self) -> Option<Uuid> {
        self.store().instance()
    }

    pub fn instances(&self) -> Vec<Instance> {
        self.store()
            .share()
            .map(|s| s.borrow().instances.clone())
            .unwrap_or_default()
    }

    /// Stops every mapping: invocations under way finish and are settled,
    /// everything else goes back to the broker. Updates and deletes still
    /// finishing in the background are waited for first.
    pub async fn shutdown(&self) {
        self.inner.background.close();
        self.inner.background.wait().await;
        self.inner.runtime.stop_all().await;
        // The history written and the store let go, before the caller goes on.
        self.inner.hub.finish_journal().await;
    }
}
