//! The ownership's own PostgreSQL session: made (and this instance
//! registered) when there is none, listening for announced changes between
//! ticks, dropped at once when it fails (the instance then owns nothing),
//! and left cleanly at a stop. It is a file of its own because it is about
//! the session's life, not what runs on it: `ownership.rs` says what is
//! shared and starts the thread, and `share.rs` decides what this instance
//! owns.

use super::{CHANGES, Owner, session_name};
use crate::store::pg::{connect, describe, hostname};
use anyhow::{Result, anyhow};
use postgres::Client;
use std::time::Duration;

impl Owner {
    /// This instance's session, made (and registered) when there is none.
    pub(super) fn session(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let mut client = connect(&self.config, &self.place)?;
            let me = self.instance;
            let name = session_name(me);
            let host = hostname();
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
    pub(super) fn listen(&mut self, wait: Duration) -> Result<()> {
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
    pub(super) fn lost(&mut self, e: &anyhow::Error) {
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
    pub(super) fn tick(&mut self) -> Result<()> {
        self.session()?;
        let mut client = self.client.take().expect("made by session()");
        let result = self.share(&mut client);
        if result.is_ok() {
            self.client = Some(client);
        }
        result
    }

    /// A clean stop: the engine has stopped every mapping; its last counts
    /// are written, then it unregisters, so
    /// the others count one instance less at their next tick.
    pub(super) fn leave(&mut self) {
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
