//! What the recorder function wrote: the events it got, one JSON line
//! each, and the messages (body, redelivered) of an `aws:rmq` or `aws:mq`
//! event.

use std::path::Path;

pub fn read_events(path: &Path) -> Vec<serde_json::Value> {
    // The function may be writing a line right now: only complete lines count.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The messages of an `aws:rmq` event: (body, redelivered).
pub fn messages(event: &serde_json::Value) -> Vec<(Vec<u8>, bool)> {
    use base64::Engine;
    let records: Vec<&serde_json::Value> = match event["rmqMessagesByQueue"].as_object() {
        Some(by_queue) => by_queue
            .values()
            .flat_map(|m| m.as_array().unwrap().iter())
            .collect(),
        None => event["messages"]
            .as_array()
            .expect("an aws:mq or aws:rmq event")
            .iter()
            .collect(),
    };
    records
        .into_iter()
        .map(|m| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(m["data"].as_str().unwrap())
                .unwrap();
            (data, m["redelivered"].as_bool().unwrap())
        })
        .collect()
}
