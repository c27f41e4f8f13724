//! The durable store: mappings and the journal (dead letters, batch
//! outcomes). Two backends behind one [`Store`]: the embedded SQLite file
//! under the state directory (the default, `sqlite.rs`), and PostgreSQL
//! (`--store postgres://…`, `postgres.rs`), which several instances
//! share, each mapping run by one of them (`ownership.rs`).
//!
//! The store's calls are synchronous: the engine's hot path makes them off
//! its async workers (the journal's thread, `spawn_blocking`), and the
//! rest are the control plane's. PostgreSQL's client runs on threads of
//! its own, so a call from any thread or runtime just waits for them.

mod ownership;
mod pg;
mod postgres;
mod sqlite;

use crate::mapping::{Mapping, MappingSpec};
use crate::sync::Unpoisoned;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use uuid::Uuid;

pub use ownership::{Counting, Instance, Share};

/// Batch outcomes kept per mapping; the journal is for looking back, not an archive.
const BATCHES_KEPT: i64 = 1_000;

/// A message that will not be retried again, with everything needed to look at it and replay it.
/// Watchers elsewhere get it as JSON, the record and body in base64.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub id: i64,
    pub mapping: Uuid,
    pub at: DateTime<Utc>,
    pub queue: String,
    pub message_id: Option<String>,
    pub attempts: u32,
    pub reason: String,
    /// The function's last error payload, if it failed.
    pub error: Option<String>,
    /// Where the broker got it ("orders.dlq", "dead-letter exchange").
    pub destination: String,
    /// The message's record in the Lambda event.
    #[serde(with = "crate::event::base64_bytes")]
    pub record: Vec<u8>,
    #[serde(with = "crate::event::base64_bytes")]
    pub body: Vec<u8>,
    /// The broker confirmed the move to `destination`. Until then the
    /// letter is journaled (durably) and the broker still has the message.
    pub moved: bool,
    /// The message's AMQP headers as the broker sent them, in AMQP's own
    /// encoding of a field table (`source::original::keep_headers`). The
    /// record cannot say a header's type (Lambda writes a 32-bit and a
    /// 64-bit integer alike, a table and an array as JSON), and a
    /// republished letter must carry the same types. None for ActiveMQ,
    /// and for letters journaled before mqtrigger kept them. The store's
    /// own: watchers are not sent it.
    #[serde(skip)]
    pub amqp_headers: Option<Vec<u8>>,
}

/// The outcome of one batch, for the console and `mappings` commands.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    pub mapping: Uuid,
    pub at: DateTime<Utc>,
    pub messages: usize,
    pub bytes: usize,
    pub attempts: u32,
    pub outcome: String,
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// Opens `path` for writing, creating it with mode 0600 if it is new (an
/// existing file keeps its mode: the user may have chosen it).
pub fn private_file(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// What each backend keeps, and how it is read back.
trait Backend: Send + Sync {
    /// Every mapping in the order they were made, with the config-file spec
    /// each was last imported from (None for mappings made at run time).
    fn mappings(&self) -> Result<Vec<(Mapping, Option<MappingSpec>)>>;
    /// Writes a mapping. `file_spec` records which config-file entry it came
    /// from (kept when None), so a later start can tell a changed file from
    /// a run-time change.
    fn put_mapping(&self, mapping: &Mapping, file_spec: Option<&MappingSpec>) -> Result<()>;
    fn delete_mapping(&self, uuid: Uuid) -> Result<bool>;
    /// A mapping as stored, JSON.
    fn mapping_text(&self, uuid: Uuid) -> Result<Option<String>>;
    /// Writes `mapping` if what is stored is still `was` (another instance
    /// may have written it since it was read); whether it did.
    fn replace_mapping(&self, was: &str, mapping: &Mapping) -> Result<bool>;
    /// Journals dead letters in one transaction, durably; their ids, in order.
    fn add_dead_letters(&self, letters: &[DeadLetter]) -> Result<Vec<i64>>;
    /// The broker confirmed the move of these journaled dead letters.
    fn mark_moved(&self, ids: &[i64]) -> Result<()>;
    fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>>;
    /// Removes these letters of `mapping` from the journal; how many were there.
    fn delete_dead_letters(&self, mapping: Uuid, ids: &[i64]) -> Result<usize>;
    /// The newest dead letters first.
    fn dead_letters(&self, mapping: Option<Uuid>, limit: usize) -> Result<Vec<DeadLetter>>;
    /// Records batch outcomes in one transaction, keeping the newest
    /// [`BATCHES_KEPT`] per mapping.
    fn add_batches(&self, batches: &[BatchRecord]) -> Result<()>;
    /// The newest batch outcomes first.
    fn batches(&self, mapping: Uuid, limit: usize) -> Result<Vec<BatchRecord>>;
}

pub struct Store {
    backend: std::sync::Arc<dyn Backend>,
    /// PostgreSQL, shared with other instances: the store itself.
    shared: Option<std::sync::Arc<postgres::PgStore>>,
    /// There was no store: this one starts empty.
    fresh: bool,
    /// Where it is, for a person: a directory, or a database without its password.
    place: String,
}

impl Store {
    /// Opens (creating) the SQLite store in `dir` and takes its lock.
    pub fn open(dir: &Path) -> Result<Store> {
        let store = sqlite::SqliteStore::open(dir)?;
        Ok(Store {
            shared: None,
            fresh: store.is_fresh(),
            place: dir.display().to_string(),
            backend: std::sync::Arc::new(store),
        })
    }

    /// Connects to the PostgreSQL store at `url` (`postgres://…`), making
    /// or upgrading its tables, with the default lease.
    pub fn connect(url: &str) -> Result<Store> {
        Self::connect_with(url, &crate::config::StoreSettings::default())
    }

    pub fn connect_with(url: &str, settings: &crate::config::StoreSettings) -> Result<Store> {
        // The blocking client must not start its runtime on a tokio thread.
        let owned = url.to_owned();
        let lease = settings.lease();
        let store = std::thread::spawn(move || postgres::PgStore::connect(&owned, lease))
            .join()
            .map_err(|_| anyhow::anyhow!("the PostgreSQL store's connect panicked"))??;
        let store = std::sync::Arc::new(store);
        Ok(Store {
            fresh: store.is_fresh(),
            place: format!("database {}", store.place()),
            backend: store.clone(),
            shared: Some(store),
        })
    }

    /// The store a command runs on: `--store`, else the config's `[store]
    /// url`, else the SQLite store in `state`.
    pub fn choose(
        given: Option<&str>,
        config: &crate::config::Config,
        state: &Path,
    ) -> Result<Store> {
        match given.or(config.store.url.as_deref()) {
            Some(url) => Store::connect_with(url, &config.store),
            None => Store::open(state),
        }
    }

    /// Another handle on the same SQLite store, as a second instance on a
    /// shared database would have (without the ownership): the engine's
    /// tests run two engines on one store this way.
    #[cfg(test)]
    pub(crate) fn sharing(&self) -> Store {
        assert!(
            self.shared.is_none(),
            "a PostgreSQL store is shared already"
        );
        Store {
            backend: self.backend.clone(),
            shared: None,
            fresh: false,
            place: self.place.clone(),
        }
    }

    /// No store was there when it was opened: the mappings of the config
    /// file are created anew (with new UUIDs), and there is no journal yet.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Shared with other instances (PostgreSQL): the mappings this one may
    /// run now, and what it knows of the others. None: it runs them all.
    pub fn share(&self) -> Option<tokio::sync::watch::Receiver<Share>> {
        Some(self.shared.as_ref()?.ownership().share.clone())
    }

    /// Shared with other instances: how the owner reads the counts of the
    /// mappings it holds, to write them to the store every tick.
    pub fn count_with(&self, counting: ownership::Counting) {
        if let Some(shared) = &self.shared {
            *shared.ownership().counting.locked() = Some(counting);
        }
    }

    /// Tells the ownership which mappings the engine runs now: one it was
    /// asked to give back is unlocked only once it is not among them.
    pub fn report_running(&self, running: std::collections::BTreeSet<Uuid>) {
        if let Some(shared) = &self.shared {
            shared.ownership().running.send_replace(running);
        }
    }

    /// Shared with other instances: the mappings written by any of them, as
    /// they are written (once: the engine takes it).
    pub fn take_changes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Uuid>> {
        let shared = self.shared.as_ref()?;
        let mut changes = shared.ownership().changes.locked();
        changes.take()
    }

    /// This instance's id among those sharing the store.
    pub fn instance(&self) -> Option<Uuid> {
        Some(self.shared.as_ref()?.ownership().instance)
    }

    /// Runs `f` while no other instance sharing the store runs its own.
    pub fn exclusive<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        match &self.shared {
            Some(shared) => shared.exclusive(f),
            None => Ok(f()),
        }
    }

    /// Where the store is, for a person: a directory, or a database
    /// without its password.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// What to tell a user about a fresh store.
    pub fn fresh_notice(&self) -> String {
        format!(
            "a new store in {}: the config file's mappings get new UUIDs, and there are no dead letters or batch history yet (if a store was there before, it was deleted or moved)",
            self.place
        )
    }

    pub fn mappings(&self) -> Result<Vec<(Mapping, Option<MappingSpec>)>> {
        self.backend.mappings()
    }

    pub fn mapping(&self, uuid: Uuid) -> Result<Option<Mapping>> {
        self.backend
            .mapping_text(uuid)?
            .map(|text| parse_mapping(uuid, &text))
            .transpose()
    }

    pub fn put_mapping(&self, mapping: &Mapping, file_spec: Option<&MappingSpec>) -> Result<()> {
        self.backend.put_mapping(mapping, file_spec)
    }

    pub fn delete_mapping(&self, uuid: Uuid) -> Result<bool> {
        self.backend.delete_mapping(uuid)
    }

    /// Reads a mapping, changes it and writes it back if nobody wrote it in
    /// between (a compare-and-set on the stored text); else reads it again
    /// and makes the change again, to what is stored now. So `change` must
    /// work from the mapping it is given, never from an earlier read, and
    /// it may run more than once: what it refuses (its `Err`) is refused
    /// of the mapping as it is at the write, and nothing is written. The
    /// mapping as written, None if there is none.
    pub fn modify_mapping<E: From<anyhow::Error>>(
        &self,
        uuid: Uuid,
        mut change: impl FnMut(&mut Mapping) -> Result<(), E>,
    ) -> Result<Option<Mapping>, E> {
        for _ in 0..20 {
            let Some(was) = self.backend.mapping_text(uuid)? else {
                return Ok(None);
            };
            let mut mapping = parse_mapping(uuid, &was)?;
            change(&mut mapping)?;
            if self.backend.replace_mapping(&was, &mapping)? {
                return Ok(Some(mapping));
            }
        }
        Err(anyhow::anyhow!(
            "mapping {uuid} kept changing while this change was written; try again"
        )
        .into())
    }

    pub fn add_dead_letters(&self, letters: &[DeadLetter]) -> Result<Vec<i64>> {
        self.backend.add_dead_letters(letters)
    }

    pub fn mark_moved(&self, ids: &[i64]) -> Result<()> {
        self.backend.mark_moved(ids)
    }

    pub fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>> {
        self.backend.dead_letter(id)
    }

    /// Removes letters of `mapping` from the journal (the broker's copy,
    /// if it has one, stays); how many there were.
    pub fn delete_dead_letters(&self, mapping: Uuid, ids: &[i64]) -> Result<usize> {
        self.backend.delete_dead_letters(mapping, ids)
    }

    pub fn dead_letters(&self, mapping: Option<Uuid>, limit: usize) -> Result<Vec<DeadLetter>> {
        self.backend.dead_letters(mapping, limit)
    }

    pub fn add_batches(&self, batches: &[BatchRecord]) -> Result<()> {
        self.backend.add_batches(batches)
    }

    pub fn add_batch(&self, batch: &BatchRecord) -> Result<()> {
        self.backend.add_batches(std::slice::from_ref(batch))
    }

    pub fn batches(&self, mapping: Uuid, limit: usize) -> Result<Vec<BatchRecord>> {
        self.backend.batches(mapping, limit)
    }
}

/// An instance's short name in tables: the first 8 digits of its id, as
/// `mqtrigger instances` shows it.
pub fn short_id(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

fn parse_mapping(uuid: Uuid, text: &str) -> Result<Mapping> {
    serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("mapping {uuid} in the store is unreadable: {e}"))
}

#[cfg(test)]
mod tests;
