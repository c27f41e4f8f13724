//! Several instances on one store: which mappings this instance runs (its
//! share, from `store::ownership`), what the others run and their counts,
//! and the changes the others write. It tells the runtime what to run and
//! the hub what to show; a mapping task never sees any of it.

use super::events::EngineEvent;
use super::hub::Hub;
use super::mappings::MappingService;
use super::runtime::Runtime;
use super::stats::MappingStats;
use crate::mapping::State;
use crate::store::Share;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use tokio::sync::watch;
use uuid::Uuid;

pub(crate) struct Cluster {
    pub hub: Arc<Hub>,
    pub mappings: Arc<MappingService>,
    pub runtime: Arc<Runtime>,
}

impl Cluster {
    /// Follows the store's share and its announcements of changes, until
    /// the engine is dropped.
    pub(crate) fn follow(self: &Arc<Self>) {
        let store = self.mappings.store();
        if let Some(share) = store.share() {
            tokio::spawn(follow_the_ownership(Arc::downgrade(self), share));
        }
        if let Some(changes) = store.take_changes() {
            tokio::spawn(follow_the_changes(Arc::downgrade(self), changes));
        }
    }

    /// A mapping was written, maybe by another instance sharing the store:
    /// run it as it is now, if it is this instance's to run, and tell the
    /// watchers.
    async fn refresh(&self, uuid: Uuid) {
        let mapping = match self.mappings.store().mapping(uuid) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(mapping = %uuid, "cannot read a changed mapping: {e:#}");
                return;
            }
        };
        let running = self.runtime.runs(uuid);
        match mapping {
            None => {
                self.runtime.stop(uuid).await;
                self.hub.emit(EngineEvent::MappingDeleted(uuid));
            }
            Some(m) => {
                if running && !m.runs_at_start() {
                    self.runtime.stop(uuid).await;
                } else if running {
                    self.runtime.push_settings(&m);
                } else if m.runs_at_start() && m.state == State::Enabled {
                    self.runtime.spawn(&m);
                }
                self.hub.emit(EngineEvent::MappingChanged(Box::new(m)));
            }
        }
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
        let before = self.hub.owners();
        let placed: BTreeSet<Uuid> = before.keys().chain(share.owners.keys()).copied().collect();
        for mapping in placed {
            let instance = share.owners.get(&mapping).copied();
            if before.get(&mapping).copied() != instance {
                self.hub.emit(EngineEvent::Placed { mapping, instance });
            }
        }
        let me = self.mappings.store().instance();
        shown.retain(|mapping, _| share.counts.contains_key(mapping));
        for (mapping, (writer, text)) in &share.counts {
            let owner = share.owners.get(mapping).copied();
            if ran.is_some_and(|r| r.contains(mapping))
                || self.runtime.runs(*mapping)
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
            self.hub.emit(EngineEvent::Counts {
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
        self.runtime.set_owned(owned.clone());
        let given_back: Vec<Uuid> = self
            .runtime
            .running()
            .into_iter()
            .filter(|u| !owned.contains(u))
            .collect();
        for uuid in given_back {
            self.runtime.stop(uuid).await;
        }
        if !owned.is_empty() {
            match self.mappings.list() {
                Ok(mappings) => {
                    for m in mappings.iter().filter(|m| owned.contains(&m.uuid)) {
                        if m.runs_at_start() && !self.runtime.runs(m.uuid) {
                            self.runtime.spawn(m);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot read the mappings this instance owns, trying again: {e}"
                    );
                    self.runtime.report_running();
                    return false;
                }
            }
        }
        self.runtime.report_running();
        true
    }
}

/// Runs what this instance owns of a shared store, and shows what the
/// others run, as each tick of the ownership sees it. Ends with the engine.
async fn follow_the_ownership(cluster: Weak<Cluster>, mut share: watch::Receiver<Share>) {
    // What `own` last made this instance run, and the counts last shown
    // for the others' mappings (with the owner they were shown under).
    let mut ran: Option<BTreeSet<Uuid>> = None;
    let mut shown = BTreeMap::new();
    while share.changed().await.is_ok() {
        let now = share.borrow_and_update().clone();
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        // The counts of a mapping taken over first, so it counts on from them.
        cluster.place(&now, ran.as_ref(), &mut shown);
        // A failed `own` (the database just came back) is tried again at
        // the next tick, which always brings a new share (the beats).
        if ran.as_ref() != Some(&now.owned) && cluster.own(now.owned.clone()).await {
            ran = Some(now.owned);
        }
    }
}

/// Applies the mappings other instances (or this one) write. Ends with the
/// engine.
async fn follow_the_changes(
    cluster: Weak<Cluster>,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<Uuid>,
) {
    while let Some(uuid) = changes.recv().await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        cluster.refresh(uuid).await;
    }
}
