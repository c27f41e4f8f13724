//! The durable store: mappings and the journal (dead letters, batch
//! outcomes), in one SQLite file in WAL mode under the state directory.
//!
//! One engine owns a state directory at a time: an OS lock (flock) on the
//! directory itself is held for the life of the [`Store`], so a second
//! console or `serve` on the same state fails with a clear error instead of
//! consuming the same queues twice. The lock is the directory's, not a
//! file's: deleting `mqtrigger.lock` (which names the holder's PID, for the
//! error) does not let a second engine in.

use crate::mapping::{Mapping, MappingSpec};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Bumped when the schema changes; a store from a newer mqtrigger is refused.
const SCHEMA_VERSION: i64 = 2;
/// Batch outcomes kept per mapping; the journal is for looking back, not an archive.
const BATCHES_KEPT: i64 = 1_000;

pub struct Store {
    conn: Mutex<Connection>,
    dir: PathBuf,
    /// The state directory, opened and flocked.
    _lock: File,
    /// There was no store file: this one starts empty.
    fresh: bool,
}

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

/// Takes the state directory's lock, and writes this process's PID into
/// `mqtrigger.lock` so that the next one can say who holds it.
fn lock_state_dir(dir: &Path) -> Result<File> {
    let handle = File::open(dir)
        .with_context(|| format!("cannot open the state directory {}", dir.display()))?;
    let pid_path = dir.join("mqtrigger.lock");
    // SAFETY: flock on a descriptor we own; released when `handle` is dropped.
    if unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = std::fs::read_to_string(&pid_path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .map(|pid| format!(" (process {pid})"))
            .unwrap_or_default();
        bail!(
            "the state directory {} is in use by another mqtrigger{holder} (console or serve); \
             stop it, or give this one its own --state directory",
            dir.display()
        );
    }
    let mut pid_file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&pid_path)
        .with_context(|| format!("cannot write the lock file {}", pid_path.display()))?;
    std::io::Write::write_all(
        &mut pid_file,
        format!("{}\n", std::process::id()).as_bytes(),
    )
    .with_context(|| format!("cannot write the lock file {}", pid_path.display()))?;
    Ok(handle)
}

impl Store {
    /// Opens (creating) the store in `dir` and takes its lock.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let lock = lock_state_dir(dir)?;
        let db_path = dir.join("mqtrigger.db");
        let fresh = !db_path.exists();
        // Dead letters hold message bodies: only this user may read them.
        // SQLite gives its -wal and -shm files the database file's mode.
        private_file(&db_path)
            .with_context(|| format!("cannot create the store {}", db_path.display()))?;
        let conn = Connection::open(&db_path)
            .with_context(|| format!("cannot open the store {}", db_path.display()))?;
        let store = Store {
            conn: Mutex::new(conn),
            dir: dir.to_owned(),
            _lock: lock,
            fresh,
        };
        store
            .migrate()
            .with_context(|| format!("the store {} cannot be used", db_path.display()))?;
        Ok(store)
    }

    /// No store was there when it was opened: the mappings of the config
    /// file are created anew (with new UUIDs), and there is no journal yet.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// What to tell a user about a fresh store.
    pub fn fresh_notice(&self) -> String {
        format!(
            "a new store in {}: the config file's mappings get new UUIDs, and there are no dead letters or batch history yet (if a store was there before, it was deleted or moved)",
            self.dir.display()
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions
        // roll back), so the poison flag carries no information here.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let conn = self.conn();
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let journal: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .with_context(|| {
                let db = self.dir.join("mqtrigger.db");
                format!(
                    "the file is not an mqtrigger store (not a SQLite database, or corrupt). \
                     Move it aside (mv {db} {db}.corrupt) and start again: mqtrigger makes a new store, \
                     the config file's mappings come back with new UUIDs, and what only the old store held \
                     (mappings made in the console or through the API, run-time changes, dead letters, \
                     batch history) stays in the moved file",
                    db = db.display()
                )
            })?;
        if !journal.eq_ignore_ascii_case("wal") {
            bail!("SQLite refused WAL mode (got {journal})");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            bail!(
                "it was written by a newer mqtrigger (schema {version}, this one knows {SCHEMA_VERSION}); \
                 upgrade mqtrigger or use another --state directory"
            );
        }
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS mappings(
                 uuid TEXT PRIMARY KEY,
                 body TEXT NOT NULL,
                 file_spec TEXT);
             CREATE TABLE IF NOT EXISTS dead_letters(
                 id INTEGER PRIMARY KEY,
                 mapping TEXT NOT NULL,
                 at TEXT NOT NULL,
                 queue TEXT NOT NULL,
                 message_id TEXT,
                 attempts INTEGER NOT NULL,
                 reason TEXT NOT NULL,
                 error TEXT,
                 destination TEXT NOT NULL,
                 record BLOB NOT NULL,
                 body BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS dead_letters_by_mapping ON dead_letters(mapping, id);
             CREATE TABLE IF NOT EXISTS batches(
                 id INTEGER PRIMARY KEY,
                 mapping TEXT NOT NULL,
                 at TEXT NOT NULL,
                 messages INTEGER NOT NULL,
                 bytes INTEGER NOT NULL,
                 attempts INTEGER NOT NULL,
                 outcome TEXT NOT NULL,
                 error TEXT,
                 latency_ms INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS batches_by_mapping ON batches(mapping, id);
             COMMIT;",
        )?;
        if version < 2 {
            // Schema 2: whether the broker confirmed the move (rows of
            // schema 1 were written for moves that were made).
            let has_moved = conn
                .prepare("SELECT moved FROM dead_letters LIMIT 0")
                .is_ok();
            if !has_moved {
                conn.execute_batch(
                    "ALTER TABLE dead_letters ADD COLUMN moved INTEGER NOT NULL DEFAULT 1",
                )?;
            }
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(())
    }

    /// Every mapping, with the config-file spec it was last imported from (None
    /// for mappings made at run time).
    pub fn mappings(&self) -> Result<Vec<(Mapping, Option<MappingSpec>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT uuid, body, file_spec FROM mappings ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (uuid, body, file_spec) = row?;
            let mapping: Mapping = serde_json::from_str(&body)
                .with_context(|| format!("mapping {uuid} in the store is unreadable"))?;
            let file_spec = file_spec
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .with_context(|| format!("mapping {uuid} in the store is unreadable"))?;
            out.push((mapping, file_spec));
        }
        Ok(out)
    }

    pub fn mapping(&self, uuid: Uuid) -> Result<Option<Mapping>> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM mappings WHERE uuid = ?1",
                [uuid.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Writes a mapping. `file_spec` records which config-file entry it came from,
    /// so a later start can tell a changed file from a run-time change.
    pub fn put_mapping(&self, mapping: &Mapping, file_spec: Option<&MappingSpec>) -> Result<()> {
        let body = serde_json::to_string(mapping)?;
        let file_spec = file_spec.map(serde_json::to_string).transpose()?;
        self.conn().execute(
            "INSERT INTO mappings(uuid, body, file_spec) VALUES (?1, ?2, ?3)
             ON CONFLICT(uuid) DO UPDATE SET body = excluded.body,
                 file_spec = COALESCE(excluded.file_spec, mappings.file_spec)",
            params![mapping.uuid.to_string(), body, file_spec],
        )?;
        Ok(())
    }

    pub fn delete_mapping(&self, uuid: Uuid) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM mappings WHERE uuid = ?1", [uuid.to_string()])?
            > 0)
    }

    /// Records dead letters in one transaction; returns once they are on disk.
    /// Journals dead letters in one transaction; their ids, in order.
    pub fn add_dead_letters(&self, letters: &[DeadLetter]) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(letters.len());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO dead_letters(mapping, at, queue, message_id, attempts, reason, error, destination, record, body, moved)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for l in letters {
                stmt.execute(params![
                    l.mapping.to_string(),
                    l.at.to_rfc3339(),
                    l.queue,
                    l.message_id,
                    l.attempts,
                    l.reason,
                    l.error,
                    l.destination,
                    l.record,
                    l.body,
                    l.moved
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// The broker confirmed the move of these journaled dead letters.
    pub fn mark_moved(&self, ids: &[i64]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("UPDATE dead_letters SET moved = 1 WHERE id = ?1")?;
            for id in ids {
                stmt.execute(params![id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>> {
        Ok(self.query_dead_letters("id = ?1", params![id])?.pop())
    }

    /// The newest dead letters first.
    pub fn dead_letters(&self, mapping: Option<Uuid>, limit: usize) -> Result<Vec<DeadLetter>> {
        self.query_dead_letters(
            "(?1 IS NULL OR mapping = ?1) ORDER BY id DESC LIMIT ?2",
            params![mapping.map(|u| u.to_string()), limit as i64],
        )
    }

    fn query_dead_letters(
        &self,
        condition: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<DeadLetter>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, mapping, at, queue, message_id, attempts, reason, error, destination, record, body, moved
             FROM dead_letters WHERE {condition}"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                mapping: r.get::<_, String>(1)?.parse().unwrap_or_default(),
                at: r.get::<_, String>(2)?.parse().unwrap_or_default(),
                queue: r.get(3)?,
                message_id: r.get(4)?,
                attempts: r.get(5)?,
                reason: r.get(6)?,
                error: r.get(7)?,
                destination: r.get(8)?,
                record: r.get(9)?,
                body: r.get(10)?,
                moved: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records batch outcomes in one transaction.
    pub fn add_batches(&self, batches: &[BatchRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for b in batches {
            Self::insert_batch(&tx, b)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn add_batch(&self, b: &BatchRecord) -> Result<()> {
        Self::insert_batch(&self.conn(), b)
    }

    fn insert_batch(conn: &rusqlite::Connection, b: &BatchRecord) -> Result<()> {
        conn.prepare_cached(
            "INSERT INTO batches(mapping, at, messages, bytes, attempts, outcome, error, latency_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            b.mapping.to_string(),
            b.at.to_rfc3339(),
            b.messages as i64,
            b.bytes as i64,
            b.attempts,
            b.outcome,
            b.error,
            b.latency_ms as i64
        ])?;
        let id = conn.last_insert_rowid();
        if id % 100 == 0 {
            conn.execute(
                "DELETE FROM batches WHERE mapping = ?1 AND id <= (
                     SELECT id FROM batches WHERE mapping = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![b.mapping.to_string(), BATCHES_KEPT],
            )?;
        }
        Ok(())
    }

    /// The newest batch outcomes first.
    pub fn batches(&self, mapping: Uuid, limit: usize) -> Result<Vec<BatchRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT mapping, at, messages, bytes, attempts, outcome, error, latency_ms
             FROM batches WHERE mapping = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![mapping.to_string(), limit as i64], |r| {
            Ok(BatchRecord {
                mapping: r.get::<_, String>(0)?.parse().unwrap_or_default(),
                at: r.get::<_, String>(1)?.parse().unwrap_or_default(),
                messages: r.get::<_, i64>(2)? as usize,
                bytes: r.get::<_, i64>(3)? as usize,
                attempts: r.get(4)?,
                outcome: r.get(5)?,
                error: r.get(6)?,
                latency_ms: r.get::<_, i64>(7)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{MappingSpec, SourceAccessConfiguration, SourceAccessType};

    fn spec() -> MappingSpec {
        MappingSpec {
            function_name: "echo".into(),
            event_source_arn: "arn:aws:mq:us-east-1:0:broker:b:b-1".into(),
            queues: vec!["q".into()],
            batch_size: Some(5),
            maximum_batching_window_in_seconds: None,
            enabled: None,
            filter_criteria: None,
            source_access_configurations: vec![SourceAccessConfiguration {
                kind: SourceAccessType::BasicAuth,
                uri: "s".into(),
            }],
            scaling_config: None,
        }
    }

    #[test]
    fn mappings_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mapping::new(spec(), "arn:f".into());
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_mapping(&m, Some(&spec())).unwrap();
            let mut changed = m.clone();
            changed.spec.batch_size = Some(7);
            store.put_mapping(&changed, None).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let all = store.mappings().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].0.spec.batch_size,
            Some(7),
            "the run-time change is kept"
        );
        assert_eq!(
            all[0].1.as_ref(),
            Some(&spec()),
            "the file spec is kept beside it"
        );
        assert_eq!(
            all[0].0.last_modified.timestamp(),
            m.last_modified.timestamp()
        );
    }

    #[test]
    fn a_second_engine_on_the_same_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("second open must fail")
            .to_string();
        assert!(err.contains("in use by another mqtrigger"), "{err}");
        assert!(
            err.contains(&format!("(process {})", std::process::id())),
            "names the holder: {err}"
        );
    }

    #[test]
    fn deleting_the_lock_file_does_not_let_a_second_engine_in() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("mqtrigger.lock")).unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("the directory is still locked")
            .to_string();
        assert!(err.contains("in use by another mqtrigger"), "{err}");
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("mqtrigger.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = format!("{:#}", Store::open(dir.path()).err().expect("must refuse"));
        assert!(err.contains("newer mqtrigger"), "{err}");
    }

    #[test]
    fn a_corrupt_store_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mqtrigger.db"), vec![0x42u8; 8192]).unwrap();
        let err = format!("{:#}", Store::open(dir.path()).err().expect("must refuse"));
        assert!(err.contains("not an mqtrigger store"), "{err}");
        assert!(err.contains("Move it aside (mv "), "says what to do: {err}");
        assert!(err.contains("dead letters"), "says what is lost: {err}");
    }

    #[test]
    fn a_store_says_when_it_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        assert!(first.is_fresh());
        assert!(first.fresh_notice().contains("new UUIDs"));
        drop(first);
        assert!(!Store::open(dir.path()).unwrap().is_fresh());
        std::fs::remove_file(dir.path().join("mqtrigger.db")).unwrap();
        assert!(
            Store::open(dir.path()).unwrap().is_fresh(),
            "a deleted store is noticed"
        );
    }

    #[test]
    fn dead_letters_keep_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let uuid = Uuid::new_v4();
        let letter = DeadLetter {
            id: 0,
            mapping: uuid,
            at: Utc::now(),
            queue: "q".into(),
            message_id: Some("m1".into()),
            attempts: 6,
            reason: "function failed".into(),
            error: Some("{\"errorType\":\"X\"}".into()),
            destination: "q.dlq".into(),
            record: b"{}".to_vec(),
            body: vec![0, 159, 146, 150],
            moved: false,
        };
        let ids = store
            .add_dead_letters(&[letter.clone(), letter.clone()])
            .unwrap();
        let got = store.dead_letters(Some(uuid), 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, letter.body);
        assert_eq!(got[0].attempts, 6);
        assert!(
            got.iter().all(|d| !d.moved),
            "not moved until the broker says so"
        );
        store.mark_moved(&ids[..1]).unwrap();
        let moved: Vec<bool> = store
            .dead_letters(Some(uuid), 10)
            .unwrap()
            .iter()
            .map(|d| d.moved)
            .collect();
        assert_eq!(moved.iter().filter(|m| **m).count(), 1);
        assert!(
            store
                .dead_letters(Some(Uuid::new_v4()), 10)
                .unwrap()
                .is_empty()
        );
    }
}
