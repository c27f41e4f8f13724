//! Faults, survived: each test does something bad to a running mqtrigger or
//! its surroundings, prints what it did and what it counted, and checks that
//! every message reached the function and nothing was lost.

mod connections;
mod functions;
mod kills;
mod restarts;
mod slow;
mod stomp;
mod store;

use crate::common::*;

/// Publishes `count` messages `f00000`…, persistent, through mqtrigger's own publisher.
pub async fn fill(url: &str, queue: &str, count: usize) {
    let bodies: Vec<String> = (0..count).map(|i| format!("f{i:05}")).collect();
    publish_persistent(url, queue, &bodies).await;
}

/// How often each body reached the function, and how many sightings after
/// the first were not marked redelivered (there must be none).
pub fn tally(events: &[serde_json::Value]) -> (std::collections::HashMap<Vec<u8>, usize>, usize) {
    let mut counts = std::collections::HashMap::new();
    let mut unmarked = 0;
    for e in events {
        for (body, redelivered) in messages(e) {
            let n = counts.entry(body).or_insert(0);
            *n += 1;
            if *n > 1 && !redelivered {
                unmarked += 1;
            }
        }
    }
    (counts, unmarked)
}
