//! Whose turn it is to call the function.
//!
//! At MaximumConcurrency N at most N batches are with the function, and they
//! go in the order they were gathered. The session's runner starts the
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

use crate::invoke::{NotSent, Turn};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
            .lock()
            .unwrap_or_else(|p| p.into_inner())
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
        let held = self.ticket.lock().unwrap_or_else(|p| p.into_inner()).take();
        if held.is_some() {
            self.turns.give_back();
        }
    }
}

impl Drop for BatchTurn {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// One attempt of a batch: waits for the batch's turn, then says it started.
pub(super) struct AttemptTurn {
    batch: Arc<BatchTurn>,
    on_start: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    started_at: Mutex<Option<Instant>>,
}

impl AttemptTurn {
    /// `on_start` runs once, the moment the request may go.
    pub fn new(batch: Arc<BatchTurn>, on_start: impl FnOnce() + Send + 'static) -> Arc<Self> {
        Arc::new(AttemptTurn {
            batch,
            on_start: Mutex::new(Some(Box::new(on_start))),
            started_at: Mutex::new(None),
        })
    }

    /// When the request went, if it did.
    pub fn started_at(&self) -> Option<Instant> {
        *self.started_at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Turn for AttemptTurn {
    fn go(&self) -> BoxFuture<'_, Result<(), NotSent>> {
        Box::pin(async move {
            self.batch.wait().await?;
            let on_start = self.on_start.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(on_start) = on_start {
                *self.started_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                on_start();
            }
            Ok(())
        })
    }

    fn answered(&self, succeeded: bool) {
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
        AttemptTurn::new(batch.clone(), || {})
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

    #[test]
    fn a_failed_batch_keeps_its_slot_through_its_retries() {
        let turns = Turns::new(1);
        let (first, second) = (turns.join(), turns.join());
        let a = attempt(&first);
        assert_eq!(goes(&a), Some(Ok(())));
        a.answered(false);
        let b = attempt(&second);
        assert_eq!(goes(&b), None, "the next batch waits while the first is retried");
        assert_eq!(goes(&attempt(&first)), Some(Ok(())), "the retry goes at once");
        drop((a, first));
        assert_eq!(goes(&b), Some(Ok(())), "its attempts ended: the slot is free");
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
        let a = attempt(&first);
        assert_eq!(goes(&a), Some(Ok(())));
        a.answered(false);
        turns.close();
        assert_eq!(goes(&attempt(&first)), Some(Ok(())), "a retry under way");
        drop((a, first));
        assert_eq!(goes(&attempt(&second)), Some(Err(NotSent)));
    }

    #[test]
    fn an_attempt_says_it_started_once_when_its_turn_comes() {
        let turns = Turns::new(1);
        let batch = turns.join();
        let started = Arc::new(AtomicU64::new(0));
        let counted = started.clone();
        let a = AttemptTurn::new(batch, move || {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(a.started_at(), None);
        assert_eq!(goes(&a), Some(Ok(())));
        assert_eq!(goes(&a), Some(Ok(())), "asked again (signed anew)");
        assert_eq!(started.load(Ordering::Relaxed), 1);
        assert!(a.started_at().is_some());
    }
}
