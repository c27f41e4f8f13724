//! The runtime: the task of each mapping this instance runs, started,
//! told of new settings, and stopped. It decides nothing about mappings;
//! it runs what it is told to, and gives each task only its
//! [`TaskEnv`](super::context::TaskEnv).

use super::RunSettings;
use super::context::TaskEnv;
use super::supervisor::supervise;
use crate::mapping::Mapping;
use crate::sync::Unpoisoned;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Runner {
    cancel: CancellationToken,
    settings: watch::Sender<RunSettings>,
    task: JoinHandle<()>,
}

pub(crate) struct Runtime {
    env: Arc<TaskEnv>,
    runners: Mutex<HashMap<Uuid, Runner>>,
    /// With a store shared by several instances: the mappings this one may
    /// run (`store::ownership`). None: all of them.
    owned: Mutex<Option<BTreeSet<Uuid>>>,
}

impl Runtime {
    pub(crate) fn new(env: Arc<TaskEnv>, shared: bool) -> Runtime {
        Runtime {
            env,
            runners: Mutex::new(HashMap::new()),
            owned: Mutex::new(shared.then(BTreeSet::new)),
        }
    }

    /// Runs the mapping, if it is this instance's to run (another
    /// instance's runs there; it is started here if it becomes this one's).
    pub(crate) fn spawn(&self, m: &Mapping) {
        if !self.owns(m.uuid) {
            return;
        }
        let cancel = CancellationToken::new();
        let (settings, settings_rx) = watch::channel(RunSettings::of(m));
        // The steps asked for until now were taken (or were never for this
        // task): read here, not when the task first runs, so that a step
        // asked for in between is not lost.
        let task = tokio::spawn(supervise(
            self.env.clone(),
            m.uuid,
            cancel.clone(),
            settings_rx,
            m.steps,
        ));
        let old = self.runners.locked().insert(
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

    /// Stops the mapping's task and waits for it: the batches with the
    /// function finish and are settled.
    pub(crate) async fn stop(&self, uuid: Uuid) {
        let runner = self.runners.locked().remove(&uuid);
        if let Some(runner) = runner {
            runner.cancel.cancel();
            let _ = runner.task.await;
        }
        self.report_running();
    }

    /// Stops every task, as a shutdown does.
    pub(crate) async fn stop_all(&self) {
        let runners: Vec<Runner> = self.runners.locked().drain().map(|(_, r)| r).collect();
        for r in &runners {
            r.cancel.cancel();
        }
        for r in runners {
            let _ = r.task.await;
        }
        self.report_running();
    }

    /// Tells a running task the mapping's settings. Only a change is sent:
    /// the session starts again for each change it is told of.
    pub(crate) fn push_settings(&self, m: &Mapping) {
        if let Some(runner) = self.runners.locked().get(&m.uuid) {
            let settings = RunSettings::of(m);
            runner.settings.send_if_modified(|now| {
                let changed = *now != settings;
                *now = settings;
                changed
            });
        }
    }

    /// A task runs the mapping here now.
    pub(crate) fn runs(&self, uuid: Uuid) -> bool {
        self.runners.locked().contains_key(&uuid)
    }

    pub(crate) fn owns(&self, uuid: Uuid) -> bool {
        self.owned
            .locked()
            .as_ref()
            .is_none_or(|o| o.contains(&uuid))
    }

    /// The mappings this instance may run from now on. Those it runs and
    /// no longer owns are the caller's to stop.
    pub(crate) fn set_owned(&self, owned: BTreeSet<Uuid>) {
        *self.owned.locked() = Some(owned);
    }

    /// The mappings running here now.
    pub(crate) fn running(&self) -> BTreeSet<Uuid> {
        self.runners.locked().keys().copied().collect()
    }

    /// Tells the ownership what runs now (see `Store::report_running`).
    pub(crate) fn report_running(&self) {
        self.env.mappings.store().report_running(self.running());
    }
}
