//! The one handle through which the console, `serve` and the API drive the
//! engine: changes to mappings (store first, then the running task), the
//! engine's counts as snapshots, and its event stream.

use super::RunSettings;
use super::events::{BatchId, EngineEvent};
use super::journal::Journal;
use super::stats::{EngineStats, MappingStats};
use super::supervisor::supervise;
use super::wiring::{Configured, Wiring};
use crate::config::Config;
use crate::mapping::{self, Mapping, State, StateTransitionReason};
use crate::store::{Instance, Share, Store};
use chrono::Utc;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

mod changes;

type Result<T, E = ControlError> = std::result::Result<T, E>;

/// Why Control refused a request; the API maps each to Lambda's error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No such mapping, or no such function.
    #[error("{0}")]
    NotFound(String),
    /// A field is wrong; the error names it.
    #[error("{0}")]
    Invalid(crate::validation::InvalidMapping),
    /// The function is already mapped to the queue.
    #[error("{0}")]
    Conflict(String),
    /// This mqtrigger was started `--readonly`.
    #[error("{0}")]
    ReadOnly(String),
    /// The request was right but could not be carried out (the store, the
    /// broker or the function failed); the sentence says what failed.
    #[error("{0}")]
    Failed(String),
}

impl From<anyhow::Error> for ControlError {
    fn from(e: anyhow::Error) -> Self {
        ControlError::Failed(format!("{e:#}"))
    }
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
    /// The counts every event makes; emitting holds this lock, so a
    /// snapshot and the events sent after it never overlap.
    stats: Arc<Mutex<EngineStats>>,
    next_batch: AtomicU64,
    wiring: Arc<dyn Wiring>,
    /// The halves of updates and deletes that finish in the background; a
    /// shutdown waits for them.
    background: TaskTracker,
    runners: Mutex<HashMap<Uuid, Runner>>,
    /// Serializes read-modify-write of a mapping between Control and pollers.
    mapping_lock: Mutex<()>,
    secrets: crate::secrets::Secrets,
    /// Batch outcomes go to the store from a thread of their own, so a
    /// disk write never sits between two invocations.
    journal: Mutex<Option<Journal>>,
    /// `--readonly`: the mappings run, but nothing may change them.
    readonly: AtomicBool,
    /// Serializes the stop-and-start halves of changes that finish in the background.
    restart_lock: tokio::sync::Mutex<()>,
    /// With a store shared by several instances: the mappings this one may
    /// run (`store::ownership`). None: all of them.
    owned: Mutex<Option<BTreeSet<Uuid>>>,
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
        let (events, _) = broadcast::channel(4096);
        let store = Arc::new(store);
        let store_share = store.share();
        let stats = Arc::new(Mutex::new(EngineStats::default()));
        // The owner writes the counts of what it runs to a shared store;
        // this reads them (and holds only the counts, not the engine).
        let counted = stats.clone();
        store.count_with(Box::new(move |mappings| {
            let stats = counted.lock().unwrap_or_else(|p| p.into_inner());
            mappings
                .iter()
                .filter_map(|u| Some((*u, serde_json::to_string(stats.mappings.get(u)?).ok()?)))
                .collect()
        }));
        let journal = Journal::start(store.clone());
        let control = Control {
            inner: Arc::new(Inner {
                store,
                journal: Mutex::new(Some(journal)),
                events,
                stats,
                next_batch: AtomicU64::new(1),
                wiring,
                background: TaskTracker::new(),
                runners: Mutex::new(HashMap::new()),
                mapping_lock: Mutex::new(()),
                restart_lock: tokio::sync::Mutex::new(()),
                readonly: AtomicBool::new(false),
                owned: Mutex::new(store_share.as_ref().map(|_| BTreeSet::new())),
                secrets: crate::secrets::Secrets::new(&config),
                config,
            }),
        };
        // Instances starting together on one database make them once.
        control
            .inner
            .store
            .exclusive(|| control.import_config_mappings())??;
        for mapping in control.list()? {
            let Some(mapping) = control.finish_interrupted_change(mapping)? else {
                continue;
            };
            if mapping.runs_at_start() {
                control.spawn(&mapping);
            } else if mapping.stopped_by_a_stop_code() {
                tracing::warn!(
                    uuid = %mapping.uuid,
                    "mapping stays stopped ({}: {}); enable it once that is fixed",
                    mapping.state_transition_reason,
                    mapping.state_detail.as_deref().unwrap_or_default()
                );
            }
        }
        if let Some(share) = store_share {
            tokio::spawn(follow_the_ownership(Arc::downgrade(&control.inner), share));
        }
        if let Some(changes) = control.inner.store.take_changes() {
            tokio::spawn(follow_the_changes(Arc::downgrade(&control.inner), changes));
        }
        Ok(control)
    }

    /// A change that a crash cut short (the store says Creating, Updating,
    /// Enabling, Disabling or Deleting) is finished now: the spec in the
    /// store is the intent. None when the mapping was being deleted.
    fn finish_interrupted_change(&self, m: Mapping) -> Result<Option<Mapping>> {
        match m.state {
            State::Enabled | State::Disabled => Ok(Some(m)),
            State::Deleting => {
                tracing::info!(uuid = %m.uuid, "finishing a deletion a stop cut short");
                self.inner.store.delete_mapping(m.uuid)?;
                Ok(None)
            }
            interrupted => {
                tracing::info!(uuid = %m.uuid, state = %interrupted, "finishing a change a stop cut short");
                self.finish_transition(m.uuid).map(Some)
            }
        }
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

    /// The configured function a FunctionName names: its name, its ARN, or
    /// `name:qualifier`-free partial ARNs ending in `function:name`.
    pub fn resolve_function(&self, given: &str) -> Option<String> {
        let functions = &self.inner.config.functions;
        if functions.contains_key(given) {
            return Some(given.to_owned());
        }
        functions
            .iter()
            .find(|(name, f)| {
                let arn = mapping::function_arn(name, f);
                arn == given || arn.ends_with(&format!(":{given}"))
            })
            .map(|(name, _)| name.clone())
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

    /// From now on, refuse every change (enable, disable, batch size,
    /// filters, create, update, delete, replay, republish) to every caller:
    /// console, API and CLI alike.
    pub fn make_readonly(&self) {
        self.inner.readonly.store(true, Ordering::SeqCst);
    }

    pub fn is_readonly(&self) -> bool {
        self.inner.readonly.load(Ordering::SeqCst)
    }

    pub(super) fn check_writable(&self) -> Result<()> {
        if self.is_readonly() {
            return Err(ControlError::ReadOnly(
                "mqtrigger runs --readonly: mappings cannot be changed, replayed or republished; restart it without --readonly"
                    .into(),
            ));
        }
        Ok(())
    }

    pub fn secrets(&self) -> &crate::secrets::Secrets {
        &self.inner.secrets
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// The events from now on. To count them, start from [`Self::watch`].
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events.subscribe()
    }

    /// The counts as they are, and the events after them: apply each event
    /// to the snapshot ([`EngineStats::apply`]) and the numbers stay exact.
    /// A receiver that lags (`RecvError::Lagged`) calls this again.
    pub fn watch(&self) -> (EngineStats, broadcast::Receiver<EngineEvent>) {
        let stats = self.lock_stats();
        (stats.clone(), self.inner.events.subscribe())
    }

    /// One mapping's counts now.
    pub fn stats(&self, mapping: Uuid) -> MappingStats {
        self.lock_stats().of(mapping)
    }

    /// Every mapping's counts now.
    pub fn all_stats(&self) -> EngineStats {
        self.lock_stats().clone()
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, EngineStats> {
        self.inner.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn wiring(&self) -> &Arc<dyn Wiring> {
        &self.inner.wiring
    }

    /// A new batch's id.
    pub(super) fn next_batch_id(&self) -> BatchId {
        BatchId(self.inner.next_batch.fetch_add(1, Ordering::Relaxed))
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
        self.inner.store.mapping(uuid)?.ok_or_else(|| {
            ControlError::NotFound(format!("The event source mapping {uuid} does not exist"))
        })
    }

    /// Queues a batch outcome for the store (the batch history is for
    /// people; a crash may lose its last entries, never a message).
    pub(super) fn journal(&self, record: crate::store::BatchRecord) {
        let journal = self.inner.journal.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = journal.as_ref() {
            j.record(record);
        }
    }

    /// Counts the event, then tells the watchers, under one lock: see [`Self::watch`].
    pub(super) fn emit(&self, event: EngineEvent) {
        let mut stats = self.lock_stats();
        stats.apply(&event);
        // Nobody listening is fine.
        let _ = self.inner.events.send(event);
    }

    fn push_settings(&self, m: &Mapping) {
        if let Some(runner) = self
            .inner
            .runners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&m.uuid)
        {
            // Only a change is one: telling the session restarts it.
            let settings = RunSettings::of(m);
            runner.settings.send_if_modified(|now| {
                let changed = *now != settings;
                *now = settings;
                changed
            });
        }
    }

    /// A mapping was written, maybe by another instance sharing the store:
    /// run it as it is now, if it is this instance's to run, and tell the
    /// watchers.
    async fn refresh(&self, uuid: Uuid) {
        let mapping = match self.inner.store.mapping(uuid) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(mapping = %uuid, "cannot read a changed mapping: {e:#}");
                return;
            }
        };
        let running = self.runs(uuid);
        match mapping {
            None => {
                self.stop_runner(uuid).await;
                self.emit(EngineEvent::MappingDeleted(uuid));
            }
            Some(m) => {
                if running && !m.runs_at_start() {
                    self.stop_runner(uuid).await;
                } else if running {
                    self.push_settings(&m);
                } else if m.runs_at_start() && m.state == State::Enabled {
                    self.spawn(&m);
                }
                self.emit(EngineEvent::MappingChanged(Box::new(m)));
            }
        }
    }

    fn spawn(&self, m: &Mapping) {
        if !self.owns(m.uuid) {
            // Another instance runs it; `own` starts it if it becomes ours.
            return;
        }
        let cancel = CancellationToken::new();
        let (settings, settings_rx) = watch::channel(RunSettings::of(m));
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
        self.report_running();
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
        self.report_running();
    }

    /// Stops every running mapping, as a shutdown does.
    async fn stop_all(&self) {
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
        self.report_running();
    }

    /// A task runs the mapping here now.
    fn runs(&self, uuid: Uuid) -> bool {
        self.inner
            .runners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&uuid)
    }

    fn owns(&self, uuid: Uuid) -> bool {
        let owned = self.inner.owned.lock().unwrap_or_else(|p| p.into_inner());
        owned.as_ref().is_none_or(|o| o.contains(&uuid))
    }

    /// Tells the ownership what runs now (see `Store::report_running`).
    fn report_running(&self) {
        let running: BTreeSet<Uuid> = self
            .inner
            .runners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        self.inner.store.report_running(running);
    }

    /// With a shared store: this instance's id, and the instances on the store.
    pub fn instance(&self) -> Option<Uuid> {
        self.inner.store.instance()
    }

    pub fn instances(&self) -> Vec<Instance> {
        let share = self.inner.store.share();
        share
            .map(|s| s.borrow().instances.clone())
            .unwrap_or_default()
    }

    /// Shows what the others run (a shared store's tick): who runs each
    /// mapping, and the counts their owners wrote, for every mapping this
    /// instance did not run at the last tick (`ran`); the counts of one it
    /// takes over now are where it counts on from. `shown` is what was
    /// shown before, so only changes are emitted.
    fn place(
        &self,
        share: &Share,
        ran: Option<&BTreeSet<Uuid>>,
        shown: &mut BTreeMap<Uuid, (Option<Uuid>, String)>,
    ) {
        let before = self.lock_stats().owners.clone();
        let placed: BTreeSet<Uuid> = before.keys().chain(share.owners.keys()).copied().collect();
        for mapping in placed {
            let instance = share.owners.get(&mapping).copied();
            if before.get(&mapping).copied() != instance {
                self.emit(EngineEvent::Placed { mapping, instance });
            }
        }
        let me = self.instance();
        shown.retain(|mapping, _| share.counts.contains_key(mapping));
        for (mapping, (writer, text)) in &share.counts {
            let owner = share.owners.get(mapping).copied();
            if ran.is_some_and(|r| r.contains(mapping))
                || self.runs(*mapping)
                || Some(*writer) == me
            {
                // Its counts here are the truth: what this instance wrote
                // of them is never newer (say, from before an outage).
                continue;
            }
            let key = (owner, text.clone());
            if shown.get(mapping) == Some(&key) {
                continue;
            }
            let stats: MappingStats = match serde_json::from_str(text) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%mapping, "the counts in the store are unreadable ({e}); a newer mqtrigger may have written them");
                    continue;
                }
            };
            // Nothing of a mapping nobody runs, or that comes to this
            // instance now, is still with the function.
            let stats = if owner.is_none() || owner == me {
                stats.abandoned()
            } else {
                stats
            };
            self.emit(EngineEvent::Counts {
                mapping: *mapping,
                stats: Box::new(stats),
            });
            shown.insert(*mapping, key);
        }
    }

    /// This instance's share changed: stop what is no longer its own (all
    /// of it at once when its database session was lost), start what became
    /// its own. Stored states stay as they are.
    /// False when the mappings could not be read (the database just came
    /// back, say): try again.
    async fn own(&self, owned: BTreeSet<Uuid>) -> bool {
        *self.inner.owned.lock().unwrap_or_else(|p| p.into_inner()) = Some(owned.clone());
        let given_back: Vec<Uuid> = self
            .inner
            .runners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|u| !owned.contains(u))
            .copied()
            .collect();
        for uuid in given_back {
            self.stop_runner(uuid).await;
        }
        if !owned.is_empty() {
            match self.list() {
                Ok(mappings) => {
                    for m in mappings.iter().filter(|m| owned.contains(&m.uuid)) {
                        if m.runs_at_start() && !self.runs(m.uuid) {
                            self.spawn(m);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot read the mappings this instance owns, trying again: {e}"
                    );
                    self.report_running();
                    return false;
                }
            }
        }
        self.report_running();
        true
    }

    /// Stops every mapping: invocations under way finish and are settled,
    /// everything else goes back to the broker. Updates and deletes still
    /// finishing in the background are waited for first.
    pub async fn shutdown(&self) {
        self.inner.background.close();
        self.inner.background.wait().await;
        self.stop_all().await;
        // The history written and the store let go, before the caller goes on.
        let journal = self
            .inner
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(j) = journal {
            j.finish().await;
        }
    }
}

/// Runs what this instance owns of a shared store, and shows what the
/// others run, as each tick of the ownership sees it. Ends with the engine.
async fn follow_the_ownership(engine: std::sync::Weak<Inner>, mut share: watch::Receiver<Share>) {
    // What `own` last made this instance run, and the counts last shown
    // for the others' mappings (with the owner they were shown under).
    let mut ran: Option<BTreeSet<Uuid>> = None;
    let mut shown = BTreeMap::new();
    while share.changed().await.is_ok() {
        let now = share.borrow_and_update().clone();
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let control = Control { inner };
        // The counts of a mapping taken over first, so it counts on from them.
        control.place(&now, ran.as_ref(), &mut shown);
        // A failed `own` (the database just came back) is tried again at
        // the next tick, which always brings a new share (the beats).
        if ran.as_ref() != Some(&now.owned) && control.own(now.owned.clone()).await {
            ran = Some(now.owned);
        }
    }
}

/// Applies the mappings other instances (or this one) write. Ends with the
/// engine.
async fn follow_the_changes(
    engine: std::sync::Weak<Inner>,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<Uuid>,
) {
    while let Some(uuid) = changes.recv().await {
        let Some(inner) = engine.upgrade() else {
            return;
        };
        Control { inner }.refresh(uuid).await;
    }
}
