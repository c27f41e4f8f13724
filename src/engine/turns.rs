//! Whose turn it is to call the function.
//!
//! At MaximumConcurrency N at most N batches are with the function, and they
//! go in the order they were gathered. The session's runner starts a
//! batch gathered ahead at once rather than when a slot frees: it builds the
//! event and the invoker prepares its request (the `lambda` runtime has it
//! signed and ready below the SDK), and only then waits here for its turn.
//! So from a function's answer to the next request, nothing is left to do
//! but send it.
//!
//! Each batch holds a ticket, handed out in order. Ticket `k` may go once
//! `k + 1 - N` tickets were given back: a batch gives its ticket back when
//! its function answered with a success (before the answer is even read),
//! or when its attempts end however they end (a failure keeps the slot
//! through the back-off, so a retried batch stays ahead of the next one).

use super::events::BatchId;
use crate::invoke::{NotSent, Turn};
use crate::stamps::{self, Stage};
use crate::sync::Unpoisoned;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// One session's turns.
pub(super) struct Turns {
    slots: u64,
    next_ticket: AtomicU64,
    progress: watch::Sender<Progress>,
}

#[derive(Clone, Copy, Default)]
struct Progress {
    /// Tickets given back, used or not.
    given_back: u64,
    /// The session is ending: a batch that has not gone yet does not go.
    closed: bool,
}

impl Turns {
    pub fn new(slots: usize) -> Arc<Turns> {
        Arc::new(Turns {
            slots: slots.max(1) as u64,
            next_ticket: AtomicU64::new(0),
            progress: watch::Sender::new(Progress::default()),
        })
    }

    /// The next batch's place in line (call in the order batches are gathered).
    pub fn join(self: &Arc<Self>) -> Arc<BatchTurn> {
        Arc::new(BatchTurn {
            turns: self.clone(),
            ticket: Mutex::new(Some(self.take_ticket())),
            went: AtomicBool::new(false),
        })
    }

    /// Batches that have not gone yet never will; those that have finish.
    pub fn close(&self) {
        self.progress.send_modify(|p| p.closed = true);
    }

    fn take_ticket(&self) -> u64 {
        self.next_ticket.fetch_add(1, Ordering::Relaxed)
    }

    fn give_back(&self) {
        self.progress.send_modify(|p| p.given_back += 1);
    }
}

/// One batch's place in line, across its attempts.
pub(super) struct BatchTurn {
    turns: Arc<Turns>,
    /// None once given back.
    ticket: Mutex<Option<u64>>,
    /// It went to the function at least once.
    went: AtomicBool,
}

impl BatchTurn {
    /// Waits until this batch may be with the function. Cancel-safe; at
    /// once while it holds its slot.
    async fn wait(&self) -> Result<(), NotSent> {
        let ticket = *self
            .ticket
            .locked()
            .get_or_insert_with(|| self.turns.take_ticket());
        let mut progress = self.turns.progress.subscribe();
        loop {
            let now = *progress.borrow_and_update();
            // A batch under way (between retries) finishes when the
            // session ends; one that has not gone yet stays with the broker.
            if now.closed && !self.went.load(Ordering::Relaxed) {
                return Err(NotSent);
            }
            if now.given_back + self.turns.slots > ticket {
                self.went.store(true, Ordering::Relaxed);
                return Ok(());
            }
            if progress.changed().await.is_err() {
                return Err(NotSent);
            }
        }
    }

    /// Frees the slot (once), for the next batch in line.
    fn give_back(&self) {
        if self.ticket.locked().take().is_some() {
            self.turns.give_back();
        }
    }
}

impl Drop for BatchTurn {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// What says an attempt started, told when its request went.
type Announce = Box<dyn FnOnce(DateTime<Utc>) + Send>;

/// An attempt's announcement: it runs once.
struct Announcement(Mutex<Option<Announce>>);

impl Announcement {
    fn once(&self, at: DateTime<Utc>) {
        let announce = self.0.locked().take();
        if let Some(announce) = announce {
            announce(at);
        }
    }
}

/// One attempt of a batch: waits for the batch's turn, and tells the engine
/// it started once its request is on its way.
pub(super) struct AttemptTurn {
    batch: Arc<BatchTurn>,
    announce: Arc<Announcement>,
    started: Mutex<Option<(Instant, DateTime<Utc>)>>,
    answered_at: Mutex<Option<Instant>>,
    /// Whose attempt this is, for the bench's stage marks (`stamps`).
    batch_id: BatchId,
}

impl AttemptTurn {
    /// `announce` runs once: after the request went, off its way (see
    /// [`Turn::sent`]), or at the latest by [`Self::announce`].
    pub fn new(
        batch: Arc<BatchTurn>,
        batch_id: BatchId,
        announce: impl FnOnce(DateTime<Utc>) + Send + 'static,
    ) -> Arc<Self> {
        Arc::new(AttemptTurn {
            batch,
            announce: Arc::new(Announcement(Mutex::new(Some(Box::new(announce))))),
            started: Mutex::new(None),
            answered_at: Mutex::new(None),
            batch_id,
        })
    }

    /// How long the function had the batch: from its request's going to
    /// the answer (to now, if there was none).
    pub fn latency(&self) -> Duration {
        let started = self.started.locked().map(|(at, _)| at);
        let ended = self.answered_at.locked().unwrap_or_else(Instant::now);
        started.map_or(Duration::ZERO, |at| ended.saturating_duration_since(at))
    }

    /// Says the attempt started, if it did and has not said so yet: its
    /// BatchStarted always comes before what the engine says of its end.
    pub fn announce(&self) {
        if let Some(at) = self.went_at() {
            self.announce.once(at);
        }
    }

    fn went_at(&self) -> Option<DateTime<Utc>> {
        self.started.locked().map(|(_, at)| at)
    }
}

impl Turn for AttemptTurn {
    fn go(&self) -> BoxFuture<'_, Result<(), NotSent>> {
        Box::pin(async move {
            self.batch.wait().await?;
            stamps::mark(self.batch_id.0, Stage::Go);
            self.started
                .locked()
                .get_or_insert_with(|| (Instant::now(), Utc::now()));
            Ok(())
        })
    }

    fn sent(&self) {
        stamps::mark(self.batch_id.0, Stage::Sent);
        let Some(at) = self.went_at() else {
            return;
        };
        // A task of its own, queued behind the connection's task that
        // writes the request: the engine's bookkeeping is not in its way.
        let announce = self.announce.clone();
        drop(tokio::spawn(async move { announce.once(at) }));
    }

    fn answered(&self, succeeded: bool) {
        stamps::mark(self.batch_id.0, Stage::Answered);
        *self.answered_at.locked() = Some(Instant::now());
        if succeeded {
            self.batch.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn attempt(batch: &Arc<BatchTurn>) -> Arc<AttemptTurn> {
        AttemptTurn::new(batch.clone(), BatchId(1), |_| {})
    }

    /// Whether `turn` may go right now.
    fn goes(turn: &AttemptTurn) -> Option<Result<(), NotSent>> {
        turn.go().now_or_never()
    }

    #[test]
    fn batches_go_in_line_and_a_success_lets_the_next_one_go_at_once() {
        let turns = Turns::new(1);
        let (first, second) = (turns.join(), turns.join());
        let (a, b) = (attempt(&first), attempt(&second));
        assert_eq!(goes(&b), None, "the second waits for the first");
        assert_eq!(goes(&a), Some(Ok(())));
        assert_eq!(goes(&b), None);
        a.answered(true);
        assert_eq!(goes(&b), Some(Ok(())), "a success frees the slot");
    }

    /// The batch's first attempt went, and the function failed it.
    fn went_and_failed(batch: &Arc<BatchTurn>) -> Arc<AttemptTurn> {
        let a = attempt(batch);
        assert_eq!(goes(&a), Some(Ok(())));
        a.answered(false);
        a
    }

    #[test]
    fn a_failed_batch_keeps_its_slot_through_its_retries() {
        let turns = Turns::new(1);
        let (first, second) = (turns.join(), turns.join());
        let a = went_and_failed(&first);
        let b = attempt(&second);
        assert_eq!(
            goes(&b),
            None,
            "the next batch waits while the first is retried"
        );
        assert_eq!(
            goes(&attempt(&first)),
            Some(Ok(())),
            "the retry goes at once"
        );
        drop((a, first));
        assert_eq!(
            goes(&b),
            Some(Ok(())),
            "its attempts ended: the slot is free"
        );
    }

    #[test]
    fn at_most_slots_batches_go_at_once_in_order() {
        let turns = Turns::new(2);
        let batches: Vec<_> = (0..4).map(|_| turns.join()).collect();
        let attempts: Vec<_> = batches.iter().map(attempt).collect();
        assert_eq!(goes(&attempts[3]), None, "the fourth is not next");
        assert_eq!(goes(&attempts[0]), Some(Ok(())));
        assert_eq!(goes(&attempts[1]), Some(Ok(())));
        assert_eq!(goes(&attempts[2]), None, "two are with the function");
        attempts[1].answered(true);
        assert_eq!(goes(&attempts[2]), Some(Ok(())));
        assert_eq!(goes(&attempts[3]), None);
    }

    #[test]
    fn when_the_session_ends_only_batches_with_the_function_go_on() {
        let turns = Turns::new(1);
        let (first, second) = (turns.join(), turns.join());
        let a = went_and_failed(&first);
        turns.close();
        assert_eq!(goes(&attempt(&first)), Some(Ok(())), "a retry under way");
        drop((a, first));
        assert_eq!(goes(&attempt(&second)), Some(Err(NotSent)));
    }

    #[tokio::test]
    async fn an_attempt_says_once_that_it_started_and_not_before_its_turn() {
        let turns = Turns::new(1);
        let (first, second) = (turns.join(), turns.join());
        let said = Arc::new(AtomicU64::new(0));
        let counted = said.clone();
        let a = AttemptTurn::new(second, BatchId(2), move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        a.announce();
        assert_eq!(said.load(Ordering::Relaxed), 0, "not before its turn");
        drop(first);
        assert_eq!(goes(&a), Some(Ok(())));
        assert_eq!(goes(&a), Some(Ok(())), "asked again (signed anew)");
        a.sent();
        tokio::task::yield_now().await;
        a.announce();
        assert_eq!(said.load(Ordering::Relaxed), 1);
    }
}
