//! Cumulative ACKs for a STOMP subscription with `ack:client`.
//!
//! With `ack:client-individual` every message takes an ACK frame of its
//! own, and ActiveMQ handles each: measured with `mqtrigger bench`, that
//! halves what a mapping drains compared with one cumulative ACK per batch.
//! With `ack:client`, an ACK settles every message the subscription was
//! given up to that one, and a NACK only its own (checked against ActiveMQ
//! 5.17: ACK m3 after NACK m1 acks m0, m2, m3, and only m1 reaches the
//! DLQ). So a cumulative ACK is safe exactly when every message before it
//! is settled: this keeps the delivery order and says when, and for which
//! message, to send one. The engine uses it when batches settle in order
//! (MaximumConcurrency 1) and batches are small enough for ActiveMQ to
//! keep dispatching (`activemq::MAX_CUMULATIVE_PREFETCH`); a filtered
//! message waits for the batch before it, which is settled next anyway.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default)]
pub struct InOrderAcks {
    /// From the oldest unsettled message on: its ack id and its state.
    pending: VecDeque<(String, State)>,
    /// Ack id → position in the delivery order.
    position: HashMap<String, u64>,
    /// The position of `pending`'s front.
    front: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unsettled,
    Acked,
    Nacked,
}

impl InOrderAcks {
    /// A message arrived (in the order the broker gave them).
    pub fn delivered(&mut self, id: &str) {
        let at = self.front + self.pending.len() as u64;
        self.position.insert(id.to_owned(), at);
        self.pending.push_back((id.to_owned(), State::Unsettled));
    }

    /// Marks messages acked (or NACKed, which the caller has sent) and says
    /// which message one cumulative ACK should now name, if any.
    pub fn settle(&mut self, ids: &[String], nacked: bool) -> Option<String> {
        let state = if nacked { State::Nacked } else { State::Acked };
        for id in ids {
            if let Some(at) = self.position.remove(id)
                && let Some(entry) = self.pending.get_mut((at - self.front) as usize)
            {
                entry.1 = state;
            }
        }
        // The newest settled message an ACK may name: never a NACKed one,
        // which the broker no longer holds.
        let mut ackable = None;
        while let Some((_, s)) = self.pending.front()
            && *s != State::Unsettled
        {
            let (id, s) = self.pending.pop_front().expect("a front");
            self.front += 1;
            if s == State::Acked {
                ackable = Some(id);
            }
        }
        ackable
    }

    /// Messages delivered and not yet covered by an ACK or NACK.
    pub fn unsettled(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_ack_names_the_newest_of_a_settled_prefix() {
        let mut order = InOrderAcks::default();
        for id in ["a", "b", "c", "d"] {
            order.delivered(id);
        }
        assert_eq!(order.settle(&ids(&["a", "b"]), false), Some("b".into()));
        assert_eq!(order.unsettled(), 2);
    }

    #[test]
    fn a_message_settled_early_waits_for_those_before_it() {
        let mut order = InOrderAcks::default();
        for id in ["a", "f", "b"] {
            order.delivered(id);
        }
        // "f" was filtered while "a" and "b" were being invoked.
        assert_eq!(order.settle(&ids(&["f"]), false), None);
        assert_eq!(order.settle(&ids(&["a", "b"]), false), Some("b".into()));
        assert_eq!(order.unsettled(), 0);
    }

    #[test]
    fn nacked_messages_are_passed_over_and_never_named() {
        let mut order = InOrderAcks::default();
        for id in ["a", "f", "b", "c"] {
            order.delivered(id);
        }
        assert_eq!(order.settle(&ids(&["f"]), false), None);
        // The batch a, b was dead-lettered: NACKed one by one.
        assert_eq!(order.settle(&ids(&["a", "b"]), true), Some("f".into()));
        assert_eq!(order.settle(&ids(&["c"]), true), None, "only NACKs");
        assert_eq!(order.unsettled(), 0);
    }

    #[test]
    fn unknown_ids_change_nothing() {
        let mut order = InOrderAcks::default();
        order.delivered("a");
        assert_eq!(order.settle(&ids(&["zz"]), false), None);
        assert_eq!(order.unsettled(), 1);
    }
}
