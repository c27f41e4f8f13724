//! Which instance runs which mapping, when several share a PostgreSQL store.
//!
//! Each instance registers in `mqtrigger_instances` and beats every
//! [`TICK`] on a session of its own. A mapping is run by the instance whose
//! session holds the mapping's advisory lock: a session-level lock, so an
//! instance that dies (its socket closes) lets go of its mappings at once.
//! Every tick, each instance counts the instances seen within the lease and
//! takes unowned mappings until it owns its share (the mappings over the
//! instances, rounded up), or gives back what it owns over that share;
//! so a mapping whose owner died is taken over once that owner has not been
//! seen for the lease. A mapping is given back (unlocked) only once the
//! engine says it stopped running it, so no mapping runs on two instances.
//!
//! Changes: every write of a mapping is announced (`NOTIFY
//! mqtrigger_mappings`, the UUID as payload); this session LISTENs and hands
//! each UUID to the engine, which reads the mapping again and applies it if
//! it runs it (`Control::refresh`). So a change made through any instance
//! reaches the owner within a tick.
//!
//! Counts: each tick, the owner writes the counts of the mappings it holds
//! to `mqtrigger_counts` on this same session (so an instance whose session
//! is gone writes nothing), and the last counts of a mapping it gives back
//! just before it unlocks it; then it reads who holds which lock
//! (`pg_locks`, by the sessions' names), the instances, and every mapping's
//! counts, and hands them to the engine with its share ([`Share`]). A
//! mapping's counts thus follow it from instance to instance; after a crash
//! they miss what its owner did in its last tick.
//!
//! Fencing: when this session fails (the database stopped, the network cut),
//! its locks may be another's soon, so the instance owns nothing at once and
//! the engine stops every mapping. Sessions of instances not seen for the
//! lease are ended by the others (`pg_terminate_backend`), so a cut-off
//! instance's locks do not outlive the lease.
//!
//! This file holds what the engine and the store see of it ([`Share`],
//! [`Ownership`]) and the thread that ticks; the session's life (made,
//! listening, lost, left) is in `ownership/session.rs`, and what one tick
//! does on it (the share taken or given back, the counts written and read)
//! in `ownership/share.rs`.

mod session;
mod share;

use anyhow::{Result, anyhow};
use chrono::{DateTime, Utc};
use postgres::Client;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// How often an instance beats, and looks at its share.
pub const TICK: Duration = Duration::from_secs(1);

/// The advisory lock of a mapping: its UUID folded to 64 bits.
pub fn lock_key(mapping: Uuid) -> i64 {
    let bits = mapping.as_u128();
    ((bits >> 64) as u64 ^ bits as u64) as i64
}

/// This instance's name in `pg_stat_activity`, which ties its sessions to
/// its row in `mqtrigger_instances`.
pub fn session_name(instance: Uuid) -> String {
    format!("mqtrigger {instance}")
}

/// The channel the writes of mappings are announced on.
pub const CHANGES: &str = "mqtrigger_mappings";

/// One instance sharing the store, as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: Uuid,
    pub host: String,
    pub pid: u32,
    pub started: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The mappings whose locks it holds now.
    pub owns: Vec<Uuid>,
}

/// What one tick saw: the mappings this instance may run, and everything
/// about the others the engine shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Share {
    /// The mappings this instance may run.
    pub owned: BTreeSet<Uuid>,
    /// Every instance seen within the lease, the oldest first.
    pub instances: Vec<Instance>,
    /// Each mapping's owner; a mapping missing here is run by nobody now.
    pub owners: BTreeMap<Uuid, Uuid>,
    /// Each mapping's counts as the instance that ran it last wrote them:
    /// that instance, and the engine's `MappingStats` as JSON (the store
    /// does not read them).
    pub counts: BTreeMap<Uuid, (Uuid, String)>,
}

/// The engine's counts of the mappings given, as JSON, for the store.
pub type Counting = Box<dyn Fn(&BTreeSet<Uuid>) -> BTreeMap<Uuid, String> + Send>;

/// The engine's side: which mappings it may run, which it still runs, and
/// which were changed (by any instance).
pub struct Ownership {
    pub instance: Uuid,
    pub share: watch::Receiver<Share>,
    /// How the owner reads the engine's counts (set by the engine).
    pub counting: Arc<Mutex<Option<Counting>>>,
    pub running: watch::Sender<BTreeSet<Uuid>>,
    pub changes: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Uuid>>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ownership {
    /// Unregisters and lets go of every lock before the store is gone, so
    /// the others take over at their next tick.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The ownership thread's side: its session, the locks it holds, and its
/// ends of the channels to the engine. Its methods are in `session.rs`
/// and `share.rs`.
struct Owner {
    config: postgres::Config,
    place: String,
    instance: Uuid,
    lease: Duration,
    client: Option<Client>,
    /// The locks this session holds.
    held: BTreeSet<Uuid>,
    /// The counts last written for each mapping held, as written.
    written: BTreeMap<Uuid, String>,
    counting: Arc<Mutex<Option<Counting>>>,
    share: watch::Sender<Share>,
    running: watch::Receiver<BTreeSet<Uuid>>,
    changes: tokio::sync::mpsc::UnboundedSender<Uuid>,
}

/// Starts this instance's share of the work on its own thread.
pub fn start(config: &postgres::Config, place: &str, lease: Duration) -> Result<Ownership> {
    let instance = Uuid::new_v4();
    let mut config = config.clone();
    config.application_name(&session_name(instance));
    let (share_tx, share) = watch::channel(Share::default());
    let counting = Arc::new(Mutex::new(None));
    let (running, running_rx) = watch::channel(BTreeSet::new());
    let (changes_tx, changes) = tokio::sync::mpsc::unbounded_channel();
    let mut owner = Owner {
        config,
        place: place.to_owned(),
        instance,
        lease,
        client: None,
        held: BTreeSet::new(),
        written: BTreeMap::new(),
        counting: counting.clone(),
        share: share_tx,
        running: running_rx,
        changes: changes_tx,
    };
    // The first session now, so a wrong URL is an error at start.
    owner.session()?;
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("mqtrigger-ownership".into())
        .spawn(move || {
            loop {
                if let Err(e) = owner.tick() {
                    owner.lost(&e);
                }
                if let Err(e) = owner.listen(TICK) {
                    owner.lost(&e);
                }
                match stopped.recv_timeout(if owner.client.is_some() {
                    Duration::ZERO
                } else {
                    TICK
                }) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            owner.leave();
        })
        .map_err(|e| anyhow!("cannot start the ownership thread: {e}"))?;
    Ok(Ownership {
        instance,
        share,
        counting,
        running,
        changes: std::sync::Mutex::new(Some(changes)),
        stop: Some(stop),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_for_mappings_that_differ_in_either_half() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(1 << 64);
        let c = Uuid::from_u128(2);
        assert_ne!(lock_key(a), lock_key(c));
        assert_ne!(lock_key(b), lock_key(Uuid::from_u128(2 << 64)));
        assert_eq!(lock_key(a), lock_key(a));
    }
}
