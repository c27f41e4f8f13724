//! The engine as the console sees it: the mappings, the engine's counts
//! (a snapshot, and every event since applied to it as the engine applies
//! them), the dead letters, and what only the console keeps: rates and
//! latencies per second for the charts, and the newest batches' events and
//! logs for the inspector. The panels and popups read it; only the feed
//! and the clock change it.

use crate::engine::{BatchId, EngineEvent, EngineStats, FeedItem, MappingStats, Snapshot};
use crate::mapping::Mapping;
use crate::store::DeadLetter;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

/// Recent batches per mapping whose whole event is kept for the inspector.
const EVENTS_KEPT: usize = 5;
/// Seconds of history the charts show.
pub const HISTORY_SECONDS: usize = 60;

/// What the console knows of the engine's config: its brokers, functions
/// and secrets (their names; what the add-mapping form picks from).
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub config: std::sync::Arc<crate::config::Config>,
}

impl Choices {
    pub fn from_config(config: &crate::config::Config) -> Choices {
        Choices {
            config: std::sync::Arc::new(config.clone()),
        }
    }
}

/// One attempt of one batch: what the Batches panel selects by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchKey {
    pub batch: BatchId,
    pub attempt: u32,
}

impl BatchKey {
    pub fn of(row: &crate::engine::stats::BatchRow) -> BatchKey {
        BatchKey {
            batch: row.batch,
            attempt: row.attempt,
        }
    }
}

/// Messages acked per second, from the differences of the engine's count.
#[derive(Debug, Clone, Default)]
pub struct Rate {
    /// `succeeded` at the last tick.
    last: u64,
    /// Oldest first.
    pub per_second: VecDeque<u64>,
}

/// The function's latency in one second: the median and the 99th
/// percentile of the attempts that ended in it, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
}

/// Latencies per second, and those of the second under way.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    /// Attempts that ended since the last tick, in milliseconds.
    pending: Vec<u64>,
    /// Oldest first; None for a second in which no attempt ended.
    pub per_second: VecDeque<Option<Latency>>,
}

impl Latencies {
    fn tick(&mut self) {
        let mut ms = std::mem::take(&mut self.pending);
        ms.sort_unstable();
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        self.per_second.push_back((!ms.is_empty()).then(|| Latency {
            p50: at(0.5),
            p99: at(0.99),
        }));
        while self.per_second.len() > HISTORY_SECONDS {
            self.per_second.pop_front();
        }
    }
}

/// What the console knows of the engine it drives.
pub struct View {
    pub mappings: Vec<Mapping>,
    /// The engine's counts: a snapshot, and the events since applied to it.
    pub stats: EngineStats,
    pub rates: HashMap<Uuid, Rate>,
    pub latencies: HashMap<Uuid, Latencies>,
    /// The newest batches' events per mapping, for the inspector.
    pub events: HashMap<Uuid, VecDeque<(BatchKey, bytes::Bytes)>>,
    /// The backlog the broker told of each mapping in the last minute, oldest
    /// first (the newest is kept however old it is), for its trend.
    pub backlogs: HashMap<Uuid, VecDeque<(DateTime<Utc>, u64)>>,
    /// What the function logged for the newest batches, per mapping.
    pub logs: HashMap<Uuid, VecDeque<(BatchKey, Vec<String>)>>,
    /// Newest first.
    pub dead_letters: Vec<DeadLetter>,
    /// How many redeliveries come before a dead letter (`[engine] max_redeliveries`).
    pub max_redeliveries: u32,
    /// Where the engine runs (None: in this process), for the title bar.
    pub endpoint: Option<String>,
    /// The engine refuses changes (`--readonly`).
    pub readonly: bool,
    /// With a shared store: the instance driven; the table shows each
    /// mapping's owner.
    pub instance: Option<Uuid>,
    /// Why the service cannot be reached, while it cannot: the screen
    /// shows the last picture until a snapshot replaces it.
    pub lost: Option<String>,
    /// The config's brokers, functions and secrets (names, the form's choices).
    pub choices: Choices,
    /// When each mapping last changed, so the table can mark fresh changes.
    pub changed_at: HashMap<Uuid, DateTime<Utc>>,
    /// The time ages are measured against (set on each tick, so drawing stays pure).
    pub now: DateTime<Utc>,
    /// What a mapping without counts shows.
    no_stats: MappingStats,
}

impl Default for View {
    fn default() -> Self {
        View {
            mappings: Vec::new(),
            stats: EngineStats::default(),
            rates: HashMap::new(),
            latencies: HashMap::new(),
            events: HashMap::new(),
            backlogs: HashMap::new(),
            logs: HashMap::new(),
            dead_letters: Vec::new(),
            max_redeliveries: crate::mapping::MAX_REDELIVERIES,
            endpoint: None,
            readonly: false,
            instance: None,
            lost: None,
            choices: Default::default(),
            changed_at: HashMap::new(),
            now: Utc::now(),
            no_stats: MappingStats::default(),
        }
    }
}

impl View {
    /// A mapping's counts (zeros for one the engine has not counted yet).
    pub fn stats_of(&self, mapping: Uuid) -> &MappingStats {
        self.stats.mappings.get(&mapping).unwrap_or(&self.no_stats)
    }

    pub fn mapping(&self, uuid: Uuid) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.uuid == uuid)
    }

    /// The config's name of the broker a mapping reads.
    pub fn broker_name(&self, mapping: &Mapping) -> String {
        self.choices
            .config
            .broker(&mapping.spec.event_source_arn)
            .map(|b| b.name.clone())
            .unwrap_or_default()
    }

    /// The acks per second of a mapping in the last second.
    pub fn rate_now(&self, mapping: Uuid) -> u64 {
        self.rates
            .get(&mapping)
            .and_then(|r| r.per_second.back().copied())
            .unwrap_or(0)
    }

    /// A mapping's owner among the instances on a shared store: the short
    /// id `mqtrigger instances` shows, `*` for the instance this console
    /// drives, `none` while no instance runs it.
    pub fn owner(&self, mapping: Uuid) -> String {
        match self.stats.owners.get(&mapping) {
            Some(owner) if self.instance == Some(*owner) => {
                format!("{}*", crate::store::short_id(*owner))
            }
            Some(owner) => crate::store::short_id(*owner),
            None => "none".into(),
        }
    }

    /// The kept event of one attempt of a mapping's batch.
    pub fn event(&self, mapping: Uuid, key: BatchKey) -> Option<bytes::Bytes> {
        self.events
            .get(&mapping)?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, e)| e.clone())
    }

    /// What the function logged during one attempt, if it was kept.
    pub fn log(&self, mapping: Uuid, key: BatchKey) -> Option<&[String]> {
        self.logs
            .get(&mapping)?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, lines)| lines.as_slice())
    }

    /// A mapping's backlog as the BACKLOG column shows it: the messages
    /// waiting, with ↑ or ↓ when the count rose or fell in the last minute;
    /// `—` when the broker cannot say (the help says why) or the mapping
    /// does not run (nobody asks). The number is for sorting.
    pub fn backlog(&self, m: &Mapping) -> (String, Option<u64>) {
        use crate::source::backlog::Backlog;
        let known = match &self.stats_of(m.uuid).backlog {
            Some((Backlog::Messages(n), _)) if m.is_running() => *n,
            _ => return ("—".into(), None),
        };
        let trend = self
            .backlogs
            .get(&m.uuid)
            .and_then(|samples| samples.front())
            .map_or(std::cmp::Ordering::Equal, |(_, first)| known.cmp(first));
        let arrow = match trend {
            std::cmp::Ordering::Greater => "↑",
            std::cmp::Ordering::Less => "↓",
            std::cmp::Ordering::Equal => "",
        };
        (format!("{known}{arrow}"), Some(known))
    }

    /// Why a mapping's backlog is not known, if it is not.
    pub fn backlog_unknown(&self, m: &Mapping) -> Option<String> {
        use crate::source::backlog::Backlog;
        if !m.is_running() {
            return Some("the mapping does not run here, so its queue is not asked".into());
        }
        match &self.stats_of(m.uuid).backlog {
            None => Some("not asked yet (every [engine] backlog_interval_ms)".into()),
            Some((Backlog::Unknown(why), _)) => Some(why.clone()),
            Some((Backlog::Messages(_), _)) => None,
        }
    }

    pub fn dead_letter(&self, id: i64) -> Option<&DeadLetter> {
        self.dead_letters.iter().find(|d| d.id == id)
    }

    /// Each second: the rates and latencies move on, ages count from now.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        self.now = now;
        for (uuid, stats) in &self.stats.mappings {
            // A rate starts at the count the console first saw (an engine
            // attached to may have run for days): no spike of its total.
            let rate = self.rates.entry(*uuid).or_insert_with(|| Rate {
                last: stats.succeeded,
                per_second: VecDeque::new(),
            });
            rate.per_second
                .push_back(stats.succeeded.saturating_sub(rate.last));
            rate.last = stats.succeeded;
            while rate.per_second.len() > HISTORY_SECONDS {
                rate.per_second.pop_front();
            }
            self.latencies.entry(*uuid).or_default().tick();
        }
    }

    /// Takes in the next item of the engine's stream.
    pub fn feed(&mut self, item: FeedItem) {
        match item {
            FeedItem::Synced(snapshot) => {
                let Snapshot {
                    stats,
                    mappings,
                    dead_letters,
                } = *snapshot;
                if self.lost.is_some() {
                    // Back after a gap: a second's difference would hold the gap's.
                    self.rates.clear();
                    self.latencies.clear();
                }
                self.stats = stats;
                self.mappings = mappings;
                self.dead_letters = dead_letters;
                // Kept events of mappings that are gone go with them.
                let known: Vec<Uuid> = self.mappings.iter().map(|m| m.uuid).collect();
                self.events.retain(|uuid, _| known.contains(uuid));
                self.logs.retain(|uuid, _| known.contains(uuid));
                self.lost = None;
            }
            FeedItem::Event(event) => self.engine_event(event),
            FeedItem::DeadLetters(letters) => self.dead_letters = letters,
            FeedItem::Lost(why) => self.lost = Some(why),
        }
    }

    /// Counts the event the way the engine does, and keeps what only the
    /// stream carries: the mappings as they change, the newest events, and
    /// the latencies of the second under way.
    pub fn engine_event(&mut self, event: EngineEvent) {
        self.stats.apply(&event);
        match event {
            EngineEvent::MappingChanged(m) => {
                self.changed_at.insert(m.uuid, Utc::now());
                match self.mappings.iter_mut().find(|x| x.uuid == m.uuid) {
                    Some(slot) => *slot = *m,
                    None => self.mappings.push(*m),
                }
            }
            EngineEvent::MappingDeleted(uuid) => {
                self.mappings.retain(|m| m.uuid != uuid);
                self.events.remove(&uuid);
                self.logs.remove(&uuid);
                self.rates.remove(&uuid);
                self.latencies.remove(&uuid);
                self.backlogs.remove(&uuid);
            }
            EngineEvent::BatchStarted {
                mapping,
                batch,
                attempt,
                event,
                ..
            } => {
                // Events can be 6 MB each: only the newest few stay inspectable.
                let kept = self.events.entry(mapping).or_default();
                kept.push_front((BatchKey { batch, attempt }, event));
                kept.truncate(EVENTS_KEPT);
            }
            EngineEvent::BatchSucceeded {
                mapping, latency, ..
            }
            | EngineEvent::BatchFailed {
                mapping, latency, ..
            } => {
                let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
                self.latencies.entry(mapping).or_default().pending.push(ms);
            }
            EngineEvent::Backlog {
                mapping,
                backlog: crate::source::backlog::Backlog::Messages(n),
                at,
            } => {
                let samples = self.backlogs.entry(mapping).or_default();
                samples.push_back((at, n));
                // A minute of samples, and never fewer than the newest.
                while samples.len() > 1
                    && samples
                        .front()
                        .is_some_and(|(t, _)| (at - *t).num_seconds() > HISTORY_SECONDS as i64)
                {
                    samples.pop_front();
                }
            }
            EngineEvent::FunctionLog {
                mapping,
                batch,
                attempt,
                lines,
            } => {
                let kept = self.logs.entry(mapping).or_default();
                kept.push_front((BatchKey { batch, attempt }, lines));
                kept.truncate(EVENTS_KEPT);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seconds_latency_is_its_median_and_99th_percentile() {
        let mut l = Latencies {
            pending: (1..=100).collect(),
            ..Latencies::default()
        };
        l.tick();
        l.tick();
        assert_eq!(
            l.per_second.iter().copied().collect::<Vec<_>>(),
            [Some(Latency { p50: 51, p99: 99 }), None],
            "a second without attempts has no latency"
        );
        l.pending = vec![7];
        l.tick();
        assert_eq!(l.per_second.back(), Some(&Some(Latency { p50: 7, p99: 7 })));
    }
}
