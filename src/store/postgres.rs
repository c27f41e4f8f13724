//! The PostgreSQL store (`--store postgres://…`): the same tables as the
//! SQLite store, prefixed `mqtrigger_`, in a database several instances can
//! reach.
//!
//! The `postgres` client blocks, and would start a runtime of its own on a
//! tokio thread (which panics); so it runs on two threads of its own, each
//! with a connection (a small pool), and a call from any thread hands
//! them a job and waits. A lost connection is made again at the next job.
//!
//! Several instances share one database: which instance runs which
//! mapping is `ownership.rs`'s.

use super::ownership::Ownership;
use super::pg::{connect, describe, hostname};
use super::{BATCHES_KEPT, Backend, BatchRecord, DeadLetter};
use crate::mapping::{Mapping, MappingSpec};
use crate::sync::Unpoisoned;
use anyhow::{Context, Result, anyhow, bail};
use postgres::Client;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Bumped when the schema changes; a database from a newer mqtrigger is refused.
const SCHEMA_VERSION: i32 = 4;

/// Each version's step from the one before.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE mqtrigger_mappings(
         uuid uuid PRIMARY KEY,
         position bigserial,
         body text NOT NULL,
         file_spec text);
     CREATE TABLE mqtrigger_dead_letters(
         id bigserial PRIMARY KEY,
         mapping uuid NOT NULL,
         at timestamptz NOT NULL,
         queue text NOT NULL,
         message_id text,
         attempts integer NOT NULL,
         reason text NOT NULL,
         error text,
         destination text NOT NULL,
         record bytea NOT NULL,
         body bytea NOT NULL,
         moved boolean NOT NULL);
     CREATE INDEX mqtrigger_dead_letters_by_mapping ON mqtrigger_dead_letters(mapping, id);
     CREATE TABLE mqtrigger_batches(
         id bigserial PRIMARY KEY,
         mapping uuid NOT NULL,
         at timestamptz NOT NULL,
         messages bigint NOT NULL,
         bytes bigint NOT NULL,
         attempts integer NOT NULL,
         outcome text NOT NULL,
         error text,
         latency_ms bigint NOT NULL);
     CREATE INDEX mqtrigger_batches_by_mapping ON mqtrigger_batches(mapping, id);",
    ),
    (
        2,
        "CREATE TABLE mqtrigger_instances(
             id uuid PRIMARY KEY,
             host text NOT NULL,
             pid integer NOT NULL,
             started timestamptz NOT NULL,
             last_seen timestamptz NOT NULL);",
    ),
    (
        3,
        "CREATE TABLE mqtrigger_counts(
             mapping uuid PRIMARY KEY,
             instance uuid NOT NULL,
             counts text NOT NULL,
             written timestamptz NOT NULL);",
    ),
    (
        // The AMQP headers as the broker sent them (earlier rows have
        // none: a republish reads them from the record).
        4,
        "ALTER TABLE mqtrigger_dead_letters ADD COLUMN amqp_headers bytea;",
    ),
];

/// Advisory lock keys ("mqtrig" in ASCII, then a number): one migration,
/// and one import of the config file's mappings, at a time.
const MIGRATION_LOCK: i64 = 0x6d71_7472_6967_0002;
const IMPORT_LOCK: i64 = 0x6d71_7472_6967_0003;

/// Connections in the pool.
const POOL_SIZE: usize = 2;
/// How long a call may go unanswered before the connection counts as lost.
const UNANSWERED: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Option<Client>) + Send>;

pub struct PgStore {
    jobs: Mutex<mpsc::Sender<Job>>,
    fresh: bool,
    place: String,
    config: postgres::Config,
    /// This instance's share of the mappings; ends with the store.
    ownership: Ownership,
}

/// The URL's parts a person may see: no password.
fn place_of(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

impl PgStore {
    /// Connects, makes or upgrades the tables, and starts this instance's
    /// share of the mappings (`lease`: how long an instance may go unseen
    /// before the others take its mappings over).
    pub fn connect(url: &str, lease: Duration) -> Result<PgStore> {
        let mut config: postgres::Config = url.parse().map_err(|e| {
            anyhow!(
                "the store URL is not a PostgreSQL URL (postgres://user@host:port/database): {e}"
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // A cut network shows as an error, not as a call that hangs.
        config.tcp_user_timeout(UNANSWERED);
        config.application_name(&format!(
            "mqtrigger pid {} on {}",
            std::process::id(),
            hostname()
        ));
        let place = place_of(&config);
        let mut first = connect(&config, &place)?;
        let fresh = migrate(&mut first)
            .with_context(|| format!("the PostgreSQL store {place} cannot be used"))?;
        let ownership = super::ownership::start(&config, &place, lease)?;
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut first = Some(first);
        for n in 0..POOL_SIZE {
            let receiver = receiver.clone();
            let config = config.clone();
            let place = place.clone();
            let mut client = if n == 0 { first.take() } else { None };
            std::thread::Builder::new()
                .name(format!("mqtrigger-store-{n}"))
                .spawn(move || {
                    loop {
                        let job = match receiver.locked().recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        };
                        if client.as_ref().is_none_or(Client::is_closed) {
                            client = connect(&config, &place)
                                .map_err(|e| tracing::warn!("{e:#}"))
                                .ok();
                        }
                        job(&mut client);
                    }
                })
                .context("cannot start the store's threads")?;
        }
        Ok(PgStore {
            jobs: Mutex::new(jobs),
            fresh,
            place,
            config,
            ownership,
        })
    }

    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    pub fn place(&self) -> &str {
        &self.place
    }

    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// Runs `f` while no other instance runs its own `exclusive` on this
    /// database (the import of the config file's mappings: two instances
    /// starting together must not both make them).
    pub fn exclusive<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let (config, place) = (self.config.clone(), self.place.clone());
        let (locked_tx, locked) = mpsc::sync_channel::<Result<()>>(0);
        let (done, done_rx) = mpsc::sync_channel::<()>(0);
        // On a thread of its own: the blocking client must not meet a runtime.
        let holder = std::thread::spawn(move || {
            let mut client = match connect(&config, &place) {
                Ok(c) => c,
                Err(e) => return drop(locked_tx.send(Err(e))),
            };
            let lock = client
                .execute("SELECT pg_advisory_lock($1)", &[&IMPORT_LOCK])
                .map(drop)
                .map_err(|e| anyhow!("cannot lock {place}: {}", describe(&e)));
            let _ = locked_tx.send(lock);
            let _ = done_rx.recv();
            let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&IMPORT_LOCK]);
        });
        let result = locked
            .recv()
            .map_err(|_| anyhow!("the lock on {} was not taken", self.place))?
            .map(|()| f());
        let _ = done.send(());
        let _ = holder.join();
        result
    }

    /// Runs `f` on a pooled connection and waits for it.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let place = self.place.clone();
        let job: Job = Box::new(move |client: &mut Option<Client>| {
            let result = match client.as_mut() {
                Some(c) => f(c)
                    .map_err(|e| anyhow!("the PostgreSQL store {place} failed: {}", describe(&e))),
                None => Err(anyhow!(
                    "cannot reach the PostgreSQL store {place}; check that PostgreSQL runs"
                )),
            };
            let _ = tx.send(result);
        });
        self.jobs
            .locked()
            .send(job)
            .map_err(|_| anyhow!("the PostgreSQL store {} is closed", self.place))?;
        rx.recv()
            .map_err(|_| anyhow!("the PostgreSQL store {} is closed", self.place))?
    }
}

/// Makes or upgrades the tables, one instance at a time; true when there
/// were none (a fresh store).
fn migrate(client: &mut Client) -> Result<bool> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS mqtrigger_schema(version integer NOT NULL)")?;
    let version: Option<i32> = tx
        .query_opt("SELECT version FROM mqtrigger_schema", &[])?
        .map(|r| r.get(0));
    if let Some(v) = version
        && v > SCHEMA_VERSION
    {
        bail!(
            "it was written by a newer mqtrigger (schema {v}, this one knows {SCHEMA_VERSION}); \
             upgrade mqtrigger or use another database"
        );
    }
    let from = version.unwrap_or(0);
    for (to, sql) in MIGRATIONS.iter().filter(|(to, _)| *to > from) {
        tx.batch_execute(sql)
            .with_context(|| format!("migration to schema {to} failed"))?;
    }
    if version.is_none() {
        tx.execute(
            "INSERT INTO mqtrigger_schema(version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )?;
    } else {
        tx.execute(
            "UPDATE mqtrigger_schema SET version = $1",
            &[&SCHEMA_VERSION],
        )?;
    }
    tx.commit()?;
    Ok(version.is_none())
}

/// Tells every instance that the mapping was written (`ownership.rs`).
fn announce(c: &mut Client, uuid: Uuid) -> Result<(), postgres::Error> {
    c.execute(
        "SELECT pg_notify($1, $2)",
        &[&super::ownership::CHANGES, &uuid.to_string()],
    )?;
    Ok(())
}

fn dead_letter(row: &postgres::Row) -> DeadLetter {
    DeadLetter {
        id: row.get(0),
        mapping: row.get(1),
        at: row.get(2),
        queue: row.get(3),
        message_id: row.get(4),
        attempts: row.get::<_, i32>(5) as u32,
        reason: row.get(6),
        error: row.get(7),
        destination: row.get(8),
        record: row.get(9),
        body: row.get(10),
        moved: row.get(11),
        amqp_headers: row.get(12),
    }
}

const DEAD_LETTER_COLUMNS: &str = "id, mapping, at, queue, message_id, attempts, reason, error, destination, record, body, moved, amqp_headers";

impl Backend for PgStore {
    fn mappings(&self) -> Result<Vec<(Mapping, Option<MappingSpec>)>> {
        let rows = self.call(|c| {
            c.query(
                "SELECT uuid, body, file_spec FROM mqtrigger_mappings ORDER BY position",
                &[],
            )
        })?;
        rows.iter()
            .map(|row| {
                let uuid: Uuid = row.get(0);
                let unreadable = || format!("mapping {uuid} in the store is unreadable");
                let mapping = serde_json::from_str(row.get(1)).with_context(unreadable)?;
                let file_spec = row
                    .get::<_, Option<&str>>(2)
                    .map(serde_json::from_str)
                    .transpose()
                    .with_context(unreadable)?;
                Ok((mapping, file_spec))
            })
            .collect()
    }

    fn put_mapping(&self, mapping: &Mapping, file_spec: Option<&MappingSpec>) -> Result<()> {
        let uuid = mapping.uuid;
        let body = serde_json::to_string(mapping)?;
        let file_spec = file_spec.map(serde_json::to_string).transpose()?;
        self.call(move |c| {
            c.execute(
                "INSERT INTO mqtrigger_mappings(uuid, body, file_spec) VALUES ($1, $2, $3)
                 ON CONFLICT(uuid) DO UPDATE SET body = excluded.body,
                     file_spec = COALESCE(excluded.file_spec, mqtrigger_mappings.file_spec)",
                &[&uuid, &body, &file_spec],
            )?;
            announce(c, uuid)
        })?;
        Ok(())
    }

    fn delete_mapping(&self, uuid: Uuid) -> Result<bool> {
        let n = self.call(move |c| {
            let n = c.execute("DELETE FROM mqtrigger_mappings WHERE uuid = $1", &[&uuid])?;
            c.execute("DELETE FROM mqtrigger_counts WHERE mapping = $1", &[&uuid])?;
            if n > 0 {
                announce(c, uuid)?;
            }
            Ok(n)
        })?;
        Ok(n > 0)
    }

    fn mapping_text(&self, uuid: Uuid) -> Result<Option<String>> {
        let row = self.call(move |c| {
            c.query_opt(
                "SELECT body FROM mqtrigger_mappings WHERE uuid = $1",
                &[&uuid],
            )
        })?;
        Ok(row.map(|r| r.get(0)))
    }

    fn replace_mapping(&self, was: &str, mapping: &Mapping) -> Result<bool> {
        let uuid = mapping.uuid;
        let (was, body) = (was.to_owned(), serde_json::to_string(mapping)?);
        let n = self.call(move |c| {
            let n = c.execute(
                "UPDATE mqtrigger_mappings SET body = $3 WHERE uuid = $1 AND body = $2",
                &[&uuid, &was, &body],
            )?;
            if n > 0 {
                announce(c, uuid)?;
            }
            Ok(n)
        })?;
        Ok(n > 0)
    }

    fn add_dead_letters(&self, letters: &[DeadLetter]) -> Result<Vec<i64>> {
        let letters = letters.to_vec();
        self.call(move |c| {
            let mut tx = c.transaction()?;
            let insert = tx.prepare(
                "INSERT INTO mqtrigger_dead_letters(mapping, at, queue, message_id, attempts, reason, error, destination, record, body, moved, amqp_headers)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            )?;
            let mut ids = Vec::with_capacity(letters.len());
            for l in &letters {
                let row = tx.query_one(
                    &insert,
                    &[
                        &l.mapping,
                        &l.at,
                        &l.queue,
                        &l.message_id,
                        &(l.attempts as i32),
                        &l.reason,
                        &l.error,
                        &l.destination,
                        &l.record,
                        &l.body,
                        &l.moved,
                        &l.amqp_headers,
                    ],
                )?;
                ids.push(row.get(0));
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    fn mark_moved(&self, ids: &[i64]) -> Result<()> {
        let ids = ids.to_vec();
        self.call(move |c| {
            c.execute(
                "UPDATE mqtrigger_dead_letters SET moved = true WHERE id = ANY($1)",
                &[&ids],
            )
        })?;
        Ok(())
    }

    fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>> {
        let row = self.call(move |c| {
            c.query_opt(
                &format!("SELECT {DEAD_LETTER_COLUMNS} FROM mqtrigger_dead_letters WHERE id = $1"),
                &[&id],
            )
        })?;
        Ok(row.as_ref().map(dead_letter))
    }

    fn dead_letters(&self, mapping: Option<Uuid>, limit: usize) -> Result<Vec<DeadLetter>> {
        let limit = limit as i64;
        let rows = self.call(move |c| {
            c.query(
                &format!(
                    "SELECT {DEAD_LETTER_COLUMNS} FROM mqtrigger_dead_letters
                     WHERE ($1::uuid IS NULL OR mapping = $1) ORDER BY id DESC LIMIT $2"
                ),
                &[&mapping, &limit],
            )
        })?;
        Ok(rows.iter().map(dead_letter).collect())
    }

    fn add_batches(&self, batches: &[BatchRecord]) -> Result<()> {
        let batches = batches.to_vec();
        self.call(move |c| {
            let mut tx = c.transaction()?;
            let insert = tx.prepare(
                "INSERT INTO mqtrigger_batches(mapping, at, messages, bytes, attempts, outcome, error, latency_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )?;
            for b in &batches {
                let id: i64 = tx
                    .query_one(
                        &insert,
                        &[
                            &b.mapping,
                            &b.at,
                            &(b.messages as i64),
                            &(b.bytes as i64),
                            &(b.attempts as i32),
                            &b.outcome,
                            &b.error,
                            &(b.latency_ms as i64),
                        ],
                    )?
                    .get(0);
                if id % 100 == 0 {
                    tx.execute(
                        "DELETE FROM mqtrigger_batches WHERE mapping = $1 AND id <= (
                             SELECT id FROM mqtrigger_batches WHERE mapping = $1
                             ORDER BY id DESC LIMIT 1 OFFSET $2)",
                        &[&b.mapping, &BATCHES_KEPT],
                    )?;
                }
            }
            tx.commit()
        })
    }

    fn batches(&self, mapping: Uuid, limit: usize) -> Result<Vec<BatchRecord>> {
        let limit = limit as i64;
        let rows = self.call(move |c| {
            c.query(
                "SELECT mapping, at, messages, bytes, attempts, outcome, error, latency_ms
                 FROM mqtrigger_batches WHERE mapping = $1 ORDER BY id DESC LIMIT $2",
                &[&mapping, &limit],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| BatchRecord {
                mapping: r.get(0),
                at: r.get(1),
                messages: r.get::<_, i64>(2) as usize,
                bytes: r.get::<_, i64>(3) as usize,
                attempts: r.get::<_, i32>(4) as u32,
                outcome: r.get(5),
                error: r.get(6),
                latency_ms: r.get::<_, i64>(7) as u64,
            })
            .collect())
    }
}
