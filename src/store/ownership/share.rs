//! What one tick of the ownership does on its session: the beat, the
//! instances not seen for the lease ended, this instance's share of the
//! mappings taken or given back, the counts of those it holds written,
//! and who holds what read back for the engine ([`Share`]). It is a file
//! of its own because it is the sharing rule and the counts, whatever the
//! session's state (`session.rs`).

use super::{Instance, Owner, Share, lock_key};
use crate::store::pg::describe;
use crate::sync::Unpoisoned;
use anyhow::{Result, anyhow};
use postgres::Client;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

impl Owner {
    /// The beat, and this instance's share taken, given back and read
    /// back, on `client` (see the module's comment).
    pub(super) fn share(&mut self, client: &mut Client) -> Result<()> {
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
    pub(super) fn write_counts(
        &mut self,
        client: &mut Client,
        mappings: &BTreeSet<Uuid>,
    ) -> Result<()> {
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
