//! The Lambda events, built as bytes.
//!
//! Each message is rendered to its record JSON once, when it arrives (so the
//! batcher knows the exact size of the event it is building). An event is then
//! a prefix, the records joined by commas, and a suffix: no `serde_json::Value`
//! tree is ever built for a batch.

pub mod mq;
pub mod rmq;

/// The largest event Lambda accepts for a synchronous invoke.
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// The parts of an event around its records.
#[derive(Debug, Clone)]
pub struct EventFrame {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl EventFrame {
    pub fn new(prefix: Vec<u8>, suffix: Vec<u8>) -> Self {
        Self { prefix, suffix }
    }

    /// Bytes of an event holding `records` records of `record_bytes` bytes in all.
    pub fn event_size(&self, records: usize, record_bytes: usize) -> usize {
        self.prefix.len() + self.suffix.len() + record_bytes + records.saturating_sub(1)
    }

    /// Writes the whole event into one buffer.
    pub fn assemble<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let records: Vec<&[u8]> = records.into_iter().collect();
        let total = self.event_size(records.len(), records.iter().map(|r| r.len()).sum());
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&self.prefix);
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(record);
        }
        out.extend_from_slice(&self.suffix);
        out
    }
}

/// The decoded bodies of an `aws:rmq` or `aws:mq` event, in order: what the
/// console shows of a batch the function saw.
pub fn bodies(event: &[u8]) -> Vec<Vec<u8>> {
    bodies_of(&serde_json::from_slice(event).unwrap_or_default())
}

/// [`bodies`] of an event already parsed.
pub fn bodies_of(json: &serde_json::Value) -> Vec<Vec<u8>> {
    use base64::Engine;
    let records: Vec<&serde_json::Value> = match json["rmqMessagesByQueue"].as_object() {
        Some(by_queue) => by_queue
            .values()
            .filter_map(|v| v.as_array())
            .flatten()
            .collect(),
        None => json["messages"]
            .as_array()
            .map(|m| m.iter().collect())
            .unwrap_or_default(),
    };
    records
        .into_iter()
        .map(|r| {
            let data = r["data"].as_str().unwrap_or_default();
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_default()
        })
        .collect()
}
