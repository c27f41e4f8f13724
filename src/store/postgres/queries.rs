//! The PostgreSQL store's queries: [`Backend`] for [`PgStore`], each call
//! one job on the pool (`PgStore::call`). Apart from `postgres.rs`, which
//! connects, migrates and runs the pool, so that the SQL of the mappings,
//! the dead letters and the batches reads in one place.

use super::PgStore;
use crate::mapping::{Mapping, MappingSpec};
use crate::store::{BATCHES_KEPT, Backend, BatchRecord, DeadLetter};
use anyhow::{Context, Result};
use postgres::Client;
use uuid::Uuid;

/// Tells every instance that the mapping was written (`ownership.rs`).
fn announce(c: &mut Client, uuid: Uuid) -> Result<(), postgres::Error> {
    c.execute(
        "SELECT pg_notify($1, $2)",
        &[&crate::store::ownership::CHANGES, &uuid.to_string()],
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

    fn delete_dead_letters(&self, mapping: Uuid, ids: &[i64]) -> Result<usize> {
        let ids = ids.to_vec();
        let deleted = self.call(move |c| {
            c.execute(
                "DELETE FROM mqtrigger_dead_letters WHERE id = ANY($1) AND mapping = $2",
                &[&ids, &mapping],
            )
        })?;
        Ok(deleted as usize)
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
