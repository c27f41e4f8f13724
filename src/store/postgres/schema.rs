//! The PostgreSQL store's tables: each schema version's migration, and
//! how a database is brought to the newest one (one instance at a time).
//! Apart from `postgres.rs` because it is the store's SQL history, which
//! grows with each version, while the pool that runs the calls does not.

use anyhow::{Context, Result, bail};
use postgres::Client;

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

/// Advisory lock key ("mqtrig" in ASCII, then a number): one migration at
/// a time.
const MIGRATION_LOCK: i64 = 0x6d71_7472_6967_0002;

/// Makes or upgrades the tables, one instance at a time; true when there
/// were none (a fresh store).
pub(super) fn migrate(client: &mut Client) -> Result<bool> {
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
