//! One PostgreSQL connection, and how its errors read: what the store and
//! its ownership session both open and report.

use anyhow::{Result, anyhow};
use postgres::{Client, NoTls};

/// One line from a PostgreSQL error: the server's own message when it
/// sent one.
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

pub(super) fn connect(config: &postgres::Config, place: &str) -> Result<Client> {
    config.connect(NoTls).map_err(|e| {
        anyhow!(
            "cannot reach the PostgreSQL store {place}: {}; check --store (or [store] url) and that PostgreSQL runs",
            describe(&e)
        )
    })
}

/// This machine's name, as an instance shows it.
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}
