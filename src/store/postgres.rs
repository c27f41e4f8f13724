//! The PostgreSQL store (`--store postgres://…`): the same tables as the
//! SQLite store, prefixed `mqtrigger_`, in a database several instances can
//! reach.
//!
//! The `postgres` client blocks, and would start a runtime of its own on a
//! tokio thread (which panics); so it runs on two threads of its own, each
//! with a connection (a small pool), and a call from any thread hands
//! them a job and waits. A lost connection is made again at the next job.
//!
//! This file connects and runs the pool; the tables and their migrations
//! are in `postgres/schema.rs`, and the store's queries (its `Backend`) in
//! `postgres/queries.rs`. Several instances share one database: which
//! instance runs which mapping is `ownership.rs`'s.

mod queries;
mod schema;

use super::ownership::Ownership;
use super::pg::{connect, describe, hostname};
use crate::sync::Unpoisoned;
use anyhow::{Context, Result, anyhow};
use postgres::Client;
use schema::migrate;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Advisory lock key ("mqtrig" in ASCII, then a number): one import of the
/// config file's mappings at a time (`schema.rs` has the migrations' key).
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
