//! ActiveMQ forgets that it delivered a message when it restarts (unless
//! the broker sets `persistJMSRedelivered`), so a message under way when the
//! broker went down comes back without `redelivered:true`. The poller keeps
//! the ids of the messages it received and has not settled, and of the last
//! ones it acked (STOMP ACKs are not confirmed one by one, so the last few
//! may have died with the broker); when a session ends, they become the next
//! sessions' [`SeenBefore`], and the source marks them redelivered itself
//! when they come again. An id that does not come again costs only memory:
//! ActiveMQ's message ids are never reused.

use crate::source::{Delivery, SeenBefore};
use crate::sync::Unpoisoned;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Acked messages kept in mind: more than any ACKs a broker can lose at once.
const RECENT_ACKS: usize = 10_000;

/// Enough for any prefetch; beyond it the oldest memory is let go rather
/// than grow without bound (a message another consumer took never returns).
const MAX_REMEMBERED: usize = 100_000;

#[derive(Default)]
pub struct Unsettled {
    open: Mutex<HashSet<String>>,
    recently_settled: Mutex<VecDeque<String>>,
    seen_before: SeenBefore,
}

impl Unsettled {
    /// What the sources of this mapping consult.
    pub fn seen_before(&self) -> SeenBefore {
        self.seen_before.clone()
    }

    pub fn received(&self, deliveries: &[Delivery]) {
        let mut open = self.open.locked();
        open.extend(deliveries.iter().filter_map(|d| d.message_id.clone()));
    }

    pub fn settled(&self, deliveries: &[Delivery]) {
        let mut open = self.open.locked();
        let mut recent = self.recently_settled.locked();
        for id in deliveries.iter().filter_map(|d| d.message_id.as_deref()) {
            if let Some(id) = open.take(id) {
                recent.push_back(id);
            }
        }
        let over = recent.len().saturating_sub(RECENT_ACKS);
        recent.drain(..over);
    }

    /// Whatever was not settled in the session, or perhaps not quite, may
    /// be delivered again.
    pub fn session_ended(&self) {
        let mut ids = std::mem::take(&mut *self.open.locked());
        let mut recent = self.recently_settled.locked();
        ids.extend(recent.drain(..));
        self.seen_before.remember(ids, MAX_REMEMBERED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::DeliveryTag;

    fn delivery(id: &str) -> Delivery {
        Delivery {
            tag: DeliveryTag::Stomp(id.into()),
            record: vec![],
            body: Default::default(),
            redelivered: false,
            expires_at: None,
            message_id: Some(id.into()),
            queue: None,
            trace: None,
        }
    }

    #[test]
    fn what_a_session_left_unsettled_or_just_acked_is_seen_before_once() {
        let unsettled = Unsettled::default();
        let seen = unsettled.seen_before();
        unsettled.received(&[delivery("a"), delivery("b"), delivery("c")]);
        unsettled.settled(&[delivery("a")]);
        assert!(!seen.take("b"), "not before the session ends");
        unsettled.session_ended();
        for id in ["a", "b", "c"] {
            assert!(seen.take(id), "{id}");
            assert!(!seen.take(id), "{id} is marked once");
        }
        assert!(!seen.take("d"), "never received");
    }

    #[test]
    fn only_the_last_acks_are_kept_in_mind() {
        let unsettled = Unsettled::default();
        let seen = unsettled.seen_before();
        let all: Vec<Delivery> = (0..RECENT_ACKS + 5)
            .map(|i| delivery(&i.to_string()))
            .collect();
        unsettled.received(&all);
        unsettled.settled(&all);
        unsettled.session_ended();
        assert!(!seen.take("4"), "long acked");
        assert!(seen.take("5"));
        assert!(seen.take(&(RECENT_ACKS + 4).to_string()));
    }
}
