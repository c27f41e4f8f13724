//! The embedded store: one SQLite file in WAL mode under the state
//! directory, the default.
//!
//! One engine owns a state directory at a time: an OS lock (flock) on the
//! directory itself is held for the life of the store, so a second
//! console or `serve` on the same state fails with a clear error instead of
//! consuming the same queues twice. The lock is the directory's, not a
//! file's: deleting `mqtrigger.lock` (which names the holder's PID, for the
//! error) does not let a second engine in.

use super::{BATCHES_KEPT, Backend, BatchRecord, DeadLetter, private_file};
use crate::mapping::{Mapping, MappingSpec};
use crate::sync::Unpoisoned;
use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Bumped when the schema changes; a store from a newer mqtrigger is refused.
const SCHEMA_VERSION: i64 = 3;

pub struct SqliteStore {
    conn: Mutex<Connection>,
    dir: PathBuf,
    /// The state directory, opened and flocked.
    _lock: File,
    /// There was no store file: this one starts empty.
    fresh: bool,
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

impl SqliteStore {
    /// Opens (creating) the store in `dir` and takes its lock.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
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
        let store = SqliteStore {
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

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions
        // roll back), so the poison flag carries no information here.
        self.conn.locked()
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
        if version < 3 {
            // Schema 3: the AMQP headers as the broker sent them (rows of
            // schema 2 have none: a republish reads them from the record).
            let has_headers = conn
                .prepare("SELECT amqp_headers FROM dead_letters LIMIT 0")
                .is_ok();
            if !has_headers {
                conn.execute_batch("ALTER TABLE dead_letters ADD COLUMN amqp_headers BLOB")?;
            }
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(())
    }

    fn query_dead_letters(
        &self,
        condition: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<DeadLetter>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, mapping, at, queue, message_id, attempts, reason, error, destination, record, body, moved, amqp_headers
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
                amqp_headers: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
}

impl Backend for SqliteStore {
    /// Every mapping, with the config-file spec it was last imported from (None
    /// for mappings made at run time).
    fn mappings(&self) -> Result<Vec<(Mapping, Option<MappingSpec>)>> {
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

    /// Writes a mapping. `file_spec` records which config-file entry it came from,
    /// so a later start can tell a changed file from a run-time change.
    fn put_mapping(&self, mapping: &Mapping, file_spec: Option<&MappingSpec>) -> Result<()> {
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

    fn mapping_text(&self, uuid: Uuid) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT body FROM mappings WHERE uuid = ?1",
                [uuid.to_string()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn replace_mapping(&self, was: &str, mapping: &Mapping) -> Result<bool> {
        let body = serde_json::to_string(mapping)?;
        let n = self.conn().execute(
            "UPDATE mappings SET body = ?3 WHERE uuid = ?1 AND body = ?2",
            params![mapping.uuid.to_string(), was, body],
        )?;
        Ok(n > 0)
    }

    fn delete_mapping(&self, uuid: Uuid) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM mappings WHERE uuid = ?1", [uuid.to_string()])?
            > 0)
    }

    /// Records dead letters in one transaction; returns once they are on disk.
    /// Journals dead letters in one transaction; their ids, in order.
    fn add_dead_letters(&self, letters: &[DeadLetter]) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(letters.len());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO dead_letters(mapping, at, queue, message_id, attempts, reason, error, destination, record, body, moved, amqp_headers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
                    l.moved,
                    l.amqp_headers
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// The broker confirmed the move of these journaled dead letters.
    fn mark_moved(&self, ids: &[i64]) -> Result<()> {
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

    fn delete_dead_letters(&self, mapping: Uuid, ids: &[i64]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut deleted = 0;
        {
            let mut stmt =
                tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1 AND mapping = ?2")?;
            for id in ids {
                deleted += stmt.execute(params![id, mapping.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>> {
        Ok(self.query_dead_letters("id = ?1", params![id])?.pop())
    }

    /// The newest dead letters first.
    fn dead_letters(&self, mapping: Option<Uuid>, limit: usize) -> Result<Vec<DeadLetter>> {
        self.query_dead_letters(
            "(?1 IS NULL OR mapping = ?1) ORDER BY id DESC LIMIT ?2",
            params![mapping.map(|u| u.to_string()), limit as i64],
        )
    }

    /// Records batch outcomes in one transaction.
    fn add_batches(&self, batches: &[BatchRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for b in batches {
            SqliteStore::insert_batch(&tx, b)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest batch outcomes first.
    fn batches(&self, mapping: Uuid, limit: usize) -> Result<Vec<BatchRecord>> {
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
mod tests;
