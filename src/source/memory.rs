//! An in-memory broker, for the engine's tests: a queue with ack, dead
//! letters and redelivery, and nothing else. It behaves as the real ones do
//! where the engine relies on it: a consumer gets at most `prefetch`
//! unsettled messages, and what a closed (or dropped, or lost) connection
//! had not settled goes back to the head of the queue marked redelivered.
//! Everything it was told is recorded for the test to check.

use super::{
    DeadLetterError, DeadLetterReason, Delivery, DeliveryTag, SettleError, Source, SourceError,
};
use crate::sync::Unpoisoned;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::Notify;

/// A message as a test publishes it.
#[derive(Debug, Clone, Default)]
pub struct MemoryMessage {
    pub id: String,
    pub body: Bytes,
    pub expires_at: Option<SystemTime>,
    pub redelivered: bool,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<MemoryMessage>,
    /// Delivered and not settled: tag → (session, message).
    unsettled: BTreeMap<u64, (u64, MemoryMessage)>,
    next_tag: u64,
    sessions: u64,
    /// Sessions whose connection was cut: they fail from now on.
    lost: HashSet<u64>,
    acked: Vec<String>,
    dead: Vec<(String, DeadLetterReason)>,
    /// What the next connections are refused with.
    refuse: Option<SourceError>,
    /// New connections are accepted, then fail at once.
    fail_after_connect: bool,
    /// Why the dead-letter destination refuses dead letters, when it does.
    refuse_dead_letters: Option<String>,
    published: u64,
}

/// The broker; clones share one queue.
#[derive(Clone, Default)]
pub struct MemoryBroker {
    queue: Arc<Mutex<Queue>>,
    changed: Arc<Notify>,
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.locked()
    }

    /// Publishes a body; its message id is `m<N>`, N counting from 1.
    pub fn publish(&self, body: impl Into<Bytes>) -> String {
        let id = format!("m{}", self.lock().published + 1);
        self.publish_message(MemoryMessage {
            id: id.clone(),
            body: body.into(),
            ..MemoryMessage::default()
        });
        id
    }

    pub fn publish_message(&self, message: MemoryMessage) {
        let mut q = self.lock();
        q.published += 1;
        q.ready.push_back(message);
        drop(q);
        self.changed.notify_waiters();
    }

    /// A consumer, as the engine's wiring opens one.
    pub fn connect(&self, prefetch: u32) -> Result<MemorySource, SourceError> {
        let mut q = self.lock();
        if let Some(e) = q.refuse.clone() {
            return Err(e);
        }
        q.sessions += 1;
        if q.fail_after_connect {
            let session = q.sessions;
            q.lost.insert(session);
        }
        Ok(MemorySource {
            broker: self.clone(),
            session: q.sessions,
            prefetch: prefetch.max(1) as usize,
        })
    }

    /// Refuse the next connections with this error (None: accept again).
    pub fn refuse_connections(&self, error: Option<SourceError>) {
        self.lock().refuse = error;
    }

    /// The dead-letter destination refuses dead letters with this reason
    /// (None: takes them again).
    pub fn refuse_dead_letters(&self, reason: Option<String>) {
        self.lock().refuse_dead_letters = reason;
    }

    /// Accept new connections, then fail them at once (a broker that
    /// takes the login and refuses what comes after).
    pub fn fail_after_connect(&self, fail: bool) {
        self.lock().fail_after_connect = fail;
    }

    /// Cuts every open connection: their unsettled messages go back to the
    /// queue, and the sessions fail on their next call.
    pub fn cut_connections(&self) {
        let mut q = self.lock();
        let sessions: Vec<u64> = q.unsettled.values().map(|(s, _)| *s).collect();
        let open = q.sessions;
        q.lost.extend(1..=open);
        for s in sessions {
            requeue(&mut q, s);
        }
        drop(q);
        self.changed.notify_waiters();
    }

    /// Ids acked, in the order the acks came.
    pub fn acked(&self) -> Vec<String> {
        self.lock().acked.clone()
    }

    /// Ids dead-lettered, with why.
    pub fn dead_letters(&self) -> Vec<(String, DeadLetterReason)> {
        self.lock().dead.clone()
    }

    /// Messages waiting in the queue.
    pub fn ready(&self) -> usize {
        self.lock().ready.len()
    }

    /// Messages delivered and not settled.
    pub fn unsettled(&self) -> usize {
        self.lock().unsettled.len()
    }

    /// Connections opened so far.
    pub fn connections(&self) -> u64 {
        self.lock().sessions
    }
}

/// A session's unsettled messages go back to the head of the queue, in
/// delivery order, marked redelivered.
fn requeue(q: &mut Queue, session: u64) {
    let tags: Vec<u64> = q
        .unsettled
        .iter()
        .filter(|(_, (s, _))| *s == session)
        .map(|(t, _)| *t)
        .collect();
    for tag in tags.into_iter().rev() {
        if let Some((_, mut m)) = q.unsettled.remove(&tag) {
            m.redelivered = true;
            q.ready.push_front(m);
        }
    }
}

/// The record a memory message becomes: an `aws:mq` one, as if it came
/// from ActiveMQ's queue `memory`.
fn record(m: &MemoryMessage) -> Vec<u8> {
    let headers = [
        ("message-id", m.id.as_str()),
        ("destination", "/queue/memory"),
    ]
    .into_iter()
    .chain(m.redelivered.then_some(("redelivered", "true")));
    crate::event::mq::record(headers, &m.body, chrono::Utc::now().timestamp_millis())
}

/// One consumer of a [`MemoryBroker`].
pub struct MemorySource {
    broker: MemoryBroker,
    session: u64,
    prefetch: usize,
}

impl MemorySource {
    fn settle(
        &self,
        tags: &[DeliveryTag],
        mut fate: impl FnMut(&mut Queue, MemoryMessage),
    ) -> Result<(), SettleError> {
        let mut q = self.broker.lock();
        if q.lost.contains(&self.session) {
            return Err(SettleError {
                count: tags.len(),
                reason: "the connection was cut".into(),
            });
        }
        let mut missing = 0;
        for tag in tags {
            let DeliveryTag::Amqp(tag) = tag else {
                missing += 1;
                continue;
            };
            match q.unsettled.remove(tag) {
                Some((session, m)) if session == self.session => fate(&mut q, m),
                Some(other) => {
                    q.unsettled.insert(*tag, other);
                    missing += 1;
                }
                None => missing += 1,
            }
        }
        drop(q);
        self.broker.changed.notify_waiters();
        if missing > 0 {
            return Err(SettleError {
                count: missing,
                reason: "unknown delivery tag".into(),
            });
        }
        Ok(())
    }
}

impl Source for MemorySource {
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, SourceError>> {
        Box::pin(async move {
            loop {
                // Registered before the look, so no publish is missed.
                let changed = self.broker.changed.notified();
                {
                    let mut q = self.broker.lock();
                    if q.lost.contains(&self.session) {
                        return Err(SourceError::Connection("the connection was cut".into()));
                    }
                    let mine = q
                        .unsettled
                        .values()
                        .filter(|(s, _)| *s == self.session)
                        .count();
                    if mine < self.prefetch
                        && let Some(m) = q.ready.pop_front()
                    {
                        q.next_tag += 1;
                        let tag = q.next_tag;
                        let delivery = Delivery {
                            tag: DeliveryTag::Amqp(tag),
                            record: record(&m),
                            body: m.body.clone(),
                            redelivered: m.redelivered,
                            expires_at: m.expires_at,
                            message_id: Some(m.id.clone()),
                            queue: None,
                            trace: None,
                        };
                        q.unsettled.insert(tag, (self.session, m));
                        return Ok(delivery);
                    }
                }
                changed.await;
            }
        })
    }

    fn ack<'a>(&'a mut self, tags: &'a [DeliveryTag]) -> BoxFuture<'a, Result<(), SettleError>> {
        Box::pin(async move { self.settle(tags, |q, m| q.acked.push(m.id)) })
    }

    fn dead_letter<'a>(
        &'a mut self,
        deliveries: &'a [Delivery],
        reason: &'a DeadLetterReason,
    ) -> BoxFuture<'a, Result<(), DeadLetterError>> {
        Box::pin(async move {
            if let Some(why) = self.broker.lock().refuse_dead_letters.clone() {
                return Err(DeadLetterError::Refused(why));
            }
            let tags: Vec<DeliveryTag> = deliveries.iter().map(|d| d.tag.clone()).collect();
            Ok(self.settle(&tags, |q, m| q.dead.push((m.id, reason.clone())))?)
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut q = self.broker.lock();
            requeue(&mut q, self.session);
            drop(q);
            self.broker.changed.notify_waiters();
        })
    }

    fn dead_letter_destination(&self) -> String {
        "the memory broker's dead letters".into()
    }
}

impl Drop for MemorySource {
    /// A dropped connection returns what it had not settled, as a broker does.
    fn drop(&mut self) {
        let mut q = self.broker.lock();
        requeue(&mut q, self.session);
        drop(q);
        self.broker.changed.notify_waiters();
    }
}
