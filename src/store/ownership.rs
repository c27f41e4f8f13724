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

use super::pg::{connect, describe};
use crate::sync::Unpoisoned;
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

impl Owner {
    /// This instance's session, made (and registered) when there is none.
    fn session(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let mut client = connect(&self.config, &self.place)?;
            let me = self.instance;
            let name = session_name(me);
            let host = super::pg::hostname();
            let pid = std::process::id() as i32;
            client
                .execute(
                    "INSERT INTO mqtrigger_instances(id, host, pid, started, last_seen)
                     VALUES ($1, $2, $3, now(), now())
                     ON CONFLICT(id) DO UPDATE SET last_seen = now()",
                    &[&me, &host, &pid],
                )
                .map_err(|e| anyhow!("cannot register in {}: {}", self.place, describe(&e)))?;
            // A session of ours from before a cut may still hold locks: we
            // own nothing now, so end it.
            client
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .map_err(|e| anyhow!("{}: {}", self.place, describe(&e)))?;
            client
                .batch_execute(&format!("LISTEN {CHANGES}"))
                .map_err(|e| anyhow!("{}: {}", self.place, describe(&e)))?;
            self.held.clear();
            self.written.clear();
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("made above"))
    }

    /// Waits up to `wait` for announced changes, and hands them over.
    fn listen(&mut self, wait: Duration) -> Result<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let Some(client) = self.client.as_mut() else {
            return Ok(());
        };
        let until = std::time::Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let next = client.notifications().timeout_iter(left).next();
            match next {
                Ok(Some(n)) => {
                    if let Ok(uuid) = n.payload().parse() {
                        let _ = self.changes.send(uuid);
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(anyhow!(
                        "the PostgreSQL store {}: {}",
                        self.place,
                        describe(&e)
                    ));
                }
            }
        }
    }

    /// The session failed: own nothing, at once.
    fn lost(&mut self, e: &anyhow::Error) {
        if !self.held.is_empty() || self.client.is_some() {
            tracing::error!(
                "{e:#}; this instance stops every mapping it ran until the database is back"
            );
        }
        self.client = None;
        self.held.clear();
        self.written.clear();
        // What the others do is not known either: nobody is shown as the
        // owner of anything, and the counts are the last ones read.
        self.share.send_modify(|share| {
            share.owned.clear();
            share.owners.clear();
            share.instances.clear();
        });
    }

    /// One beat, and this instance's share made right. An error drops the
    /// session (and `lost` owns nothing).
    fn tick(&mut self) -> Result<()> {
        self.session()?;
        let mut client = self.client.take().expect("made by session()");
        let result = self.share(&mut client);
        if result.is_ok() {
            self.client = Some(client);
        }
        result
    }

    fn share(&mut self, client: &mut Client) -> Result<()> {
        let lease = self.lease.as_secs_f64();
        let me = self.instance;
        let place = self.place.clone();
        let fail = |e: postgres::Error| anyhow!("the PostgreSQL store {place}: {}", describe(&e));
        let running = self.running.borrow().clone();
        client
            .execute(
                "UPDATE mqtrigger_instances SET last_seen = now() WHERE id = $1",
                &[&me],
            )
            .map_err(fail)?;
        // Instances not seen for the lease: their sessions end, so that
        // their locks are free, and they leave the list.
        client
            .execute(
                "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
                 JOIN mqtrigger_instances i ON a.application_name = 'mqtrigger ' || i.id::text
                 WHERE i.last_seen < now() - make_interval(secs => $1)",
                &[&lease],
            )
            .map_err(fail)?;
        client
            .execute(
                "DELETE FROM mqtrigger_instances WHERE last_seen < now() - make_interval(secs => $1)",
                &[&lease],
            )
            .map_err(fail)?;
        let alive: i64 = client
            .query_one("SELECT count(*) FROM mqtrigger_instances", &[])
            .map_err(fail)?
            .get(0);
        let mappings: Vec<Uuid> = client
            .query("SELECT uuid FROM mqtrigger_mappings ORDER BY position", &[])
            .map_err(fail)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let share = mappings.len().div_ceil(alive.max(1) as usize);
        // Deleted mappings, and what is over the share, are given back
        // once the engine no longer runs them.
        let mut over = self.held.len().saturating_sub(share);
        let mut give_back: Vec<Uuid> = self
            .held
            .iter()
            .filter(|u| !mappings.contains(u))
            .copied()
            .collect();
        for u in self.held.iter().rev() {
            if over == 0 {
                break;
            }
            if mappings.contains(u) {
                give_back.push(*u);
                over -= 1;
            }
        }
        let live: BTreeSet<Uuid> = self
            .held
            .iter()
            .filter(|u| mappings.contains(u))
            .copied()
            .collect();
        self.write_counts(client, &live)?;
        for u in &give_back {
            if !running.contains(u) {
                // Its last counts (the engine stopped it) before another
                // instance can take it over and read them.
                if mappings.contains(u) {
                    self.write_counts(client, &BTreeSet::from([*u]))?;
                }
                self.written.remove(u);
                client
                    .execute("SELECT pg_advisory_unlock($1)", &[&lock_key(*u)])
                    .map_err(fail)?;
                self.held.remove(u);
            }
        }
        // Start from a place of our own in the list, so instances starting
        // together do not all reach for the same mappings first.
        let start = (me.as_u128() % mappings.len().max(1) as u128) as usize;
        for u in mappings.iter().cycle().skip(start).take(mappings.len()) {
            if self.held.len() >= share {
                break;
            }
            if self.held.contains(u) {
                continue;
            }
            let locked: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&lock_key(*u)])
                .map_err(fail)?
                .get(0);
            if locked {
                self.held.insert(*u);
            }
        }
        let owned: BTreeSet<Uuid> = self
            .held
            .iter()
            .filter(|u| !give_back.contains(u))
            .copied()
            .collect();
        let share = read_share(client, owned, &mappings).map_err(fail)?;
        self.share.send_if_modified(|now| {
            let changed = *now != share;
            *now = share;
            changed
        });
        Ok(())
    }

    /// Writes the engine's counts of `mappings` that changed since they
    /// were last written. On this session: it holds their locks, so what
    /// it writes is the owner's.
    fn write_counts(&mut self, client: &mut Client, mappings: &BTreeSet<Uuid>) -> Result<()> {
        let counts = match &*self.counting.locked() {
            Some(count) => count(mappings),
            None => return Ok(()),
        };
        let me = self.instance;
        for (mapping, text) in counts {
            if self.written.get(&mapping) == Some(&text) {
                continue;
            }
            client
                .execute(
                    "INSERT INTO mqtrigger_counts(mapping, instance, counts, written)
                     VALUES ($1, $2, $3, now())
                     ON CONFLICT(mapping) DO UPDATE SET instance = excluded.instance,
                         counts = excluded.counts, written = excluded.written",
                    &[&mapping, &me, &text],
                )
                .map_err(|e| anyhow!("the PostgreSQL store {}: {}", self.place, describe(&e)))?;
            self.written.insert(mapping, text);
        }
        Ok(())
    }

    /// A clean stop: the engine has stopped every mapping; its last counts
    /// are written, then it unregisters, so
    /// the others count one instance less at their next tick.
    fn leave(&mut self) {
        let me = self.instance;
        if let Some(mut client) = self.client.take() {
            let held = self.held.clone();
            if let Err(e) = self.write_counts(&mut client, &held) {
                tracing::warn!("the last counts were not written: {e:#}");
            }
            let _ = client.execute("DELETE FROM mqtrigger_instances WHERE id = $1", &[&me]);
            let _ = client.execute("SELECT pg_advisory_unlock_all()", &[]);
        }
    }
}

/// Who holds which mapping's lock (the sessions named after the
/// instances), the instances, and every mapping's last counts.
fn read_share(
    client: &mut Client,
    owned: BTreeSet<Uuid>,
    mappings: &[Uuid],
) -> Result<Share, postgres::Error> {
    let by_key: BTreeMap<i64, Uuid> = mappings.iter().map(|u| (lock_key(*u), *u)).collect();
    // An advisory lock on one bigint shows its high half as classid and
    // its low half as objid, with objsubid 1.
    let locks = client.query(
        "SELECT (l.classid::bigint << 32) | l.objid::bigint, i.id
         FROM pg_locks l
         JOIN pg_stat_activity a ON a.pid = l.pid
         JOIN mqtrigger_instances i ON a.application_name = 'mqtrigger ' || i.id::text
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        &[],
    )?;
    let owners: BTreeMap<Uuid, Uuid> = locks
        .iter()
        .filter_map(|r| Some((*by_key.get(&r.get::<_, i64>(0))?, r.get(1))))
        .collect();
    let instances = client
        .query(
            "SELECT id, host, pid, started, last_seen FROM mqtrigger_instances ORDER BY started, id",
            &[],
        )?
        .iter()
        .map(|r| {
            let id: Uuid = r.get(0);
            Instance {
                id,
                host: r.get(1),
                pid: r.get::<_, i32>(2) as u32,
                started: r.get(3),
                last_seen: r.get(4),
                owns: mappings
                    .iter()
                    .filter(|m| owners.get(m) == Some(&id))
                    .copied()
                    .collect(),
            }
        })
        .collect();
    let counts = client
        .query(
            "SELECT mapping, instance, counts FROM mqtrigger_counts",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    Ok(Share {
        owned,
        instances,
        owners,
        counts,
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
