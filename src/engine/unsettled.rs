//! ActiveMQ forgets that it delivered a message when it restarts (unless
//! the broker sets `persistJMSRedelivered`), so a message under way when the
//! broker went down comes back without `redelivered:true`. The poller keeps
//! the ids of the messages it received and has not settled; when a session
//! ends, they become the next sessions' [`SeenBefore`], and the source marks
//! them redelivered itself when they come again.

use crate::source::{Delivery, SeenBefore};
use std::collections::HashSet;
use std::sync::Mutex;

/// Enough for any prefetch; beyond it the oldest memory is let go rather
/// than grow without bound (a message another consumer took never returns).
const MAX_REMEMBERED: usize = 100_000;

#[derive(Default)]
pub struct Unsettled {
    open: Mutex<HashSet<String>>,
    seen_before: SeenBefore,
}

impl Unsettled {
    /// What the sources of this mapping consult.
    pub fn seen_before(&self) -> SeenBefore {
        self.seen_before.clone()
    }

    pub fn received(&self, deliveries: &[Delivery]) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.extend(deliveries.iter().filter_map(|d| d.message_id.clone()));
    }

    pub fn settled(&self, deliveries: &[Delivery]) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        for id in deliveries.iter().filter_map(|d| d.message_id.as_deref()) {
            open.remove(id);
        }
    }

    /// Whatever was not settled in the session will be delivered again.
    pub fn session_ended(&self) {
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|p| p.into_inner()));
        self.seen_before.remember(open, MAX_REMEMBERED);
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
        }
    }

    #[test]
    fn only_what_a_session_left_unsettled_is_seen_before_and_only_once() {
        let unsettled = Unsettled::default();
        let seen = unsettled.seen_before();
        unsettled.received(&[delivery("a"), delivery("b"), delivery("c")]);
        unsettled.settled(&[delivery("a")]);
        assert!(!seen.take("b"), "not before the session ends");
        unsettled.session_ended();
        assert!(!seen.take("a"), "settled");
        assert!(seen.take("b"));
        assert!(!seen.take("b"), "marked once");
        assert!(seen.take("c"));
    }
}
