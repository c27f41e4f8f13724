//! The Lambda events, built as bytes.
//!
//! Each message is rendered to its record JSON once, when it arrives (so the
//! batcher knows the exact size of the event it is building). An event is then
//! a prefix, the records joined by commas, and a suffix: no `serde_json::Value`
//! tree is ever built for a batch.

pub mod mq;
pub mod rmq;

/// Bytes as a base64 string in JSON (Lambda's encoding of bodies).
pub mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes the base64 straight into the output: no string of its own,
    /// which a record would otherwise allocate and copy for every message.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&base64::display::Base64Display::new(bytes, &STANDARD))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(D::Error::custom)
    }
}

/// The largest event Lambda accepts for a synchronous invoke.
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// The parts of an event around its records.
#[derive(Debug, Clone)]
pub struct EventFrame {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    /// An `aws:rmq` event of a mapping with several queues: each queue's
    /// key (`"queue::vhost":[`) that its records go under, in the mapping's
    /// order; the prefix ends with the `{` they go into. Empty otherwise.
    queues: Vec<(String, Vec<u8>)>,
}

impl EventFrame {
    pub fn new(prefix: Vec<u8>, suffix: Vec<u8>) -> Self {
        Self {
            prefix,
            suffix,
            queues: Vec::new(),
        }
    }

    /// A frame whose records are grouped under each queue's key.
    pub fn grouped(prefix: Vec<u8>, suffix: Vec<u8>, queues: Vec<(String, Vec<u8>)>) -> Self {
        Self {
            prefix,
            suffix,
            queues,
        }
    }

    /// Bytes of an event holding `records` records of `record_bytes` bytes
    /// in all (with several queues, at most: as if each queue had some).
    pub fn event_size(&self, records: usize, record_bytes: usize) -> usize {
        let keys: usize = self.queues.iter().map(|(_, key)| key.len() + 2).sum();
        self.prefix.len() + self.suffix.len() + keys + record_bytes + records.saturating_sub(1)
    }

    /// Writes the whole event into one buffer.
    pub fn assemble<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        self.assemble_by_queue(records.into_iter().map(|r| (None, r)))
    }

    /// Writes the whole event, each record under its queue's key when the
    /// frame has several (a record of no known queue goes under the first).
    pub fn assemble_by_queue<'a>(
        &self,
        records: impl IntoIterator<Item = (Option<&'a str>, &'a [u8])>,
    ) -> Vec<u8> {
        let records: Vec<(Option<&str>, &[u8])> = records.into_iter().collect();
        let total = self.event_size(records.len(), records.iter().map(|(_, r)| r.len()).sum());
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&self.prefix);
        if self.queues.is_empty() {
            join(&mut out, records.iter().map(|(_, r)| *r));
        } else {
            let index = |q: Option<&str>| {
                self.queues
                    .iter()
                    .position(|(name, _)| Some(name.as_str()) == q)
                    .unwrap_or(0)
            };
            let mut first = true;
            for (i, (_, key)) in self.queues.iter().enumerate() {
                let mut group = records.iter().filter(|(q, _)| index(*q) == i).peekable();
                if group.peek().is_none() {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(key);
                join(&mut out, group.map(|(_, r)| *r));
                out.push(b']');
            }
        }
        out.extend_from_slice(&self.suffix);
        out
    }
}

/// Records joined by commas.
fn join<'a>(out: &mut Vec<u8>, records: impl Iterator<Item = &'a [u8]>) {
    for (i, record) in records.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(record);
    }
}

/// A record (a JSON object) with one more string field at its end.
pub fn with_field(record: &[u8], key: &str, value: &str) -> Vec<u8> {
    let Some(end) = record.iter().rposition(|&b| b == b'}') else {
        return record.to_vec();
    };
    let empty = record[..end]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'{');
    let field = format!(
        "{}{}:{}",
        if empty { "" } else { "," },
        serde_json::Value::from(key),
        serde_json::Value::from(value)
    );
    let mut out = Vec::with_capacity(record.len() + field.len());
    out.extend_from_slice(&record[..end]);
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&record[end..]);
    out
}

/// A record (`aws:rmq` or `aws:mq`) with its own `redelivered` flag set: a
/// retried batch comes back marked redelivered, as it would through the
/// broker on Lambda. Only the record's top-level key is touched, never a
/// header or property of the same name.
pub fn mark_redelivered(record: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const FALSE: &[u8] = b"\"redelivered\":false";
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in record.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' if depth == 1 && record[i..].starts_with(FALSE) => {
                let mut marked = Vec::with_capacity(record.len());
                marked.extend_from_slice(&record[..i]);
                marked.extend_from_slice(b"\"redelivered\":true");
                marked.extend_from_slice(&record[i + FALSE.len()..]);
                return std::borrow::Cow::Owned(marked);
            }
            b'"' => in_string = true,
            _ => {}
        }
    }
    std::borrow::Cow::Borrowed(record)
}

/// The decoded bodies of an `aws:rmq` or `aws:mq` event, in order: what the
/// console shows of a batch the function saw.
pub fn bodies(event: &[u8]) -> Vec<Vec<u8>> {
    bodies_of(&serde_json::from_slice(event).unwrap_or_default())
}

/// [`bodies`] of an event already parsed.
pub fn bodies_of(json: &serde_json::Value) -> Vec<Vec<u8>> {
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
    records.into_iter().map(record_body).collect()
}

/// The message body a record carries (its `data`, decoded).
pub fn record_body(record: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    let data = record["data"].as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(record: &[u8]) -> bool {
        let json: serde_json::Value = serde_json::from_slice(record).unwrap();
        json["redelivered"].as_bool().unwrap()
    }

    #[test]
    fn a_retried_rmq_record_says_redelivered_and_its_headers_stay_as_they_were() {
        use lapin::types::{AMQPValue, FieldTable};
        let mut headers = FieldTable::default();
        headers.insert("redelivered".into(), AMQPValue::Boolean(false));
        let props = lapin::BasicProperties::default().with_headers(headers);
        let record = rmq::record(&props, b"body", false);
        let marked = mark_redelivered(&record);
        assert!(flag(&marked), "{}", String::from_utf8_lossy(&marked));
        let json: serde_json::Value = serde_json::from_slice(&marked).unwrap();
        assert_eq!(json["basicProperties"]["headers"]["redelivered"], false);
        assert_eq!(json["data"], "Ym9keQ==");
    }

    #[test]
    fn a_retried_mq_record_says_redelivered_and_its_properties_stay_as_they_were() {
        let headers = [
            ("message-id", "ID:1"),
            ("destination", "/queue/q"),
            ("type", "\"redelivered\":false"),
            ("redelivered-note", "x"),
        ];
        let record = mq::record(headers, b"body", 0);
        assert!(!flag(&record));
        let marked = mark_redelivered(&record);
        assert!(flag(&marked), "{}", String::from_utf8_lossy(&marked));
        let json: serde_json::Value = serde_json::from_slice(&marked).unwrap();
        assert_eq!(json["type"], "\"redelivered\":false");
    }

    #[test]
    fn a_record_already_redelivered_is_left_alone() {
        let record = rmq::record(&lapin::BasicProperties::default(), b"x", true);
        assert!(matches!(
            mark_redelivered(&record),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
