//! The message a record was made from: its body, properties and headers,
//! read back from the record, so that a republished dead letter is the same
//! message it was (a republish adds only `x-mqtrigger-republished`).
//!
//! An `aws:rmq` record cannot say a header's AMQP type: Lambda's shape
//! writes every integer as a JSON number, a table and an array as JSON,
//! strings and byte arrays alike as `{"bytes": […]}`. So the journal keeps
//! the headers as the broker sent them beside the record
//! ([`keep_headers`]), and a republish sends those; the record's headers
//! are only for letters journaled before mqtrigger kept them.

use super::message::Message;
use lapin::types::FieldTable;
use serde_json::Value;

/// Marks a republished copy.
pub const REPUBLISHED_HEADER: &str = "x-mqtrigger-republished";

/// A message's AMQP headers in AMQP's own encoding of a field table, for
/// the dead-letter journal: every value keeps its type. None if they cannot
/// be encoded (then a republish reads them from the record).
pub fn keep_headers(headers: &FieldTable) -> Option<Vec<u8>> {
    let written = lapin::types::generation::gen_field_table(headers)(Vec::new().into());
    match written {
        Ok(context) => Some(context.write),
        Err(e) => {
            tracing::warn!("cannot keep a message's AMQP headers for the journal: {e}");
            None
        }
    }
}

/// The headers [`keep_headers`] kept.
fn kept_headers(kept: &[u8]) -> Option<FieldTable> {
    match lapin::types::parsing::parse_field_table(kept) {
        Ok((_, table)) => Some(table),
        Err(e) => {
            tracing::warn!(
                "the journal's AMQP headers are unreadable ({e}); republishing those of the record"
            );
            None
        }
    }
}

/// An `aws:rmq` record as the message to publish again, with the headers
/// the journal kept beside it (`headers`, [`keep_headers`]) if it has them,
/// else those of the record. `user` is the user who will publish it:
/// RabbitMQ refuses a `user_id` that is not the publisher's, so another
/// user's is left out.
pub fn from_rmq(record: &[u8], headers: Option<&[u8]>, body: &[u8], user: &str) -> Message {
    let record: Value = serde_json::from_slice(record).unwrap_or_default();
    let p = &record["basicProperties"];
    let mut m = Message {
        body: body.to_vec(),
        table: headers.and_then(kept_headers),
        ..Message::default()
    };
    for (property, field) in [
        ("content_type", "contentType"),
        ("content_encoding", "contentEncoding"),
        ("correlation_id", "correlationId"),
        ("reply_to", "replyTo"),
        ("expiration", "expiration"),
        ("message_id", "messageId"),
        ("type", "type"),
        ("app_id", "appId"),
        ("cluster_id", "clusterId"),
    ] {
        if let Some(v) = p[field].as_str() {
            m.properties.push((property.into(), v.into()));
        }
    }
    if p["userId"].as_str() == Some(user) {
        m.properties.push(("user_id".into(), user.into()));
    }
    // The record says 1 and 0 for absent ones: those are the defaults anyway.
    if let Some(mode @ 2) = p["deliveryMode"].as_u64() {
        m.properties
            .push(("delivery_mode".into(), mode.to_string()));
    }
    if let Some(priority) = p["priority"].as_u64().filter(|p| *p > 0) {
        m.properties.push(("priority".into(), priority.to_string()));
    }
    if let Some(seconds) = p["timestamp"].as_str().and_then(parse_timestamp) {
        m.properties.push(("timestamp".into(), seconds.to_string()));
    }
    if m.table.is_none() {
        for (name, value) in p["headers"].as_object().into_iter().flatten() {
            if let Some(typed) = header(value) {
                m.headers.push((name.clone(), typed));
            }
        }
    }
    m.headers.push((REPUBLISHED_HEADER.into(), "true".into()));
    m
}

/// An `aws:mq` record as the message to send again, and whether it was a
/// BytesMessage (sent with `content-length`). ActiveMQ gives every message
/// its own id, so the original's goes in `x-mqtrigger-original-message-id`;
/// an expiration already past is left out (the copy would die at once).
pub fn from_mq(record: &[u8], body: &[u8], now_ms: i64) -> (Message, bool) {
    let record: Value = serde_json::from_slice(record).unwrap_or_default();
    let mut m = Message {
        body: body.to_vec(),
        ..Message::default()
    };
    if record["deliveryMode"].as_u64() == Some(2) {
        m.properties.push(("persistent".into(), "true".into()));
    }
    let text = |field: &str| {
        record[field]
            .as_str()
            .filter(|v| !v.is_empty() && *v != "null")
    };
    for (header, field) in [
        ("correlation_id", "correlationID"),
        ("reply_to", "replyTo"),
        ("type", "type"),
    ] {
        if let Some(v) = text(field) {
            m.properties.push((header.into(), v.into()));
        }
    }
    if let Some(priority) = record["priority"].as_i64() {
        m.properties.push(("priority".into(), priority.to_string()));
    }
    if let Some(expires) = record["expiration"].as_i64().filter(|e| *e > now_ms) {
        m.properties.push(("expires".into(), expires.to_string()));
    }
    for (name, value) in record["properties"].as_object().into_iter().flatten() {
        if let Some(v) = value.as_str() {
            m.headers.push((name.clone(), v.into()));
        }
    }
    if let Some(id) = text("messageID") {
        m.headers
            .push(("x-mqtrigger-original-message-id".into(), id.into()));
    }
    m.headers.push((REPUBLISHED_HEADER.into(), "true".into()));
    let bytes = record["messageType"].as_str() == Some("jms/bytes-message");
    (m, bytes)
}

/// A header's value as `mqtrigger publish` takes it (typed with a prefix),
/// as near as the record's JSON tells it.
fn header(value: &Value) -> Option<String> {
    Some(match value {
        Value::Object(o) if o.len() == 1 && o.contains_key("bytes") => {
            let bytes: Vec<u8> = o["bytes"]
                .as_array()?
                .iter()
                .map(|b| b.as_u64().map(|b| b as u8))
                .collect::<Option<_>>()?;
            format!("str:{}", String::from_utf8_lossy(&bytes))
        }
        Value::Bool(b) => format!("bool:{b}"),
        Value::Number(n) if n.is_i64() || n.is_u64() => format!("int:{n}"),
        Value::Number(n) => format!("float:{n}"),
        Value::Null => return None,
        // Arrays and tables: their JSON, as text.
        other => format!("str:{other}"),
    })
}

/// `"Nov 14, 2023, 10:13:20 PM"` (UTC, as the record has it) in seconds since 1970.
fn parse_timestamp(text: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(text, "%b %d, %Y, %I:%M:%S %p")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::BasicProperties;
    use lapin::types::{AMQPValue, FieldTable, LongString};

    #[test]
    fn an_rmq_record_gives_back_its_properties_and_typed_headers() {
        let mut headers = FieldTable::default();
        headers.insert(
            "tenant".into(),
            AMQPValue::LongString(LongString::from("int:not")),
        );
        headers.insert("retries".into(), AMQPValue::LongLongInt(3));
        headers.insert("urgent".into(), AMQPValue::Boolean(true));
        let props = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_content_type("application/json".into())
            .with_correlation_id("c-1".into())
            .with_priority(5)
            .with_delivery_mode(2)
            .with_timestamp(1_700_000_000)
            .with_user_id("someone-else".into())
            .with_headers(headers);
        let record = crate::event::rmq::record(&props, b"{}", false);
        let m = from_rmq(&record, None, b"{}", "guest");
        let published = crate::source::message::properties(&m).unwrap();
        assert_eq!(published.message_id().as_ref().unwrap().as_str(), "m-1");
        assert_eq!(
            published.content_type().as_ref().unwrap().as_str(),
            "application/json"
        );
        assert_eq!(published.correlation_id().as_ref().unwrap().as_str(), "c-1");
        assert_eq!(*published.priority(), Some(5));
        assert_eq!(*published.delivery_mode(), Some(2));
        assert_eq!(*published.timestamp(), Some(1_700_000_000));
        assert_eq!(
            *published.user_id(),
            None,
            "another user's id would be refused"
        );
        let h = published.headers().as_ref().unwrap().inner();
        assert_eq!(
            h["tenant"],
            AMQPValue::LongString(LongString::from("int:not"))
        );
        assert_eq!(h["retries"], AMQPValue::LongLongInt(3));
        assert_eq!(h["urgent"], AMQPValue::Boolean(true));
        assert_eq!(
            h[REPUBLISHED_HEADER],
            AMQPValue::LongString(LongString::from("true"))
        );
    }

    /// The record says 7 for a 32-bit and a 64-bit integer alike; the
    /// headers the journal keeps say which, for every AMQP type.
    #[test]
    fn kept_headers_give_back_every_value_with_its_type() {
        use lapin::types::{ByteArray, DecimalValue, FieldArray};
        let mut inner = FieldTable::default();
        inner.insert("depth".into(), AMQPValue::ShortShortUInt(1));
        let mut headers = FieldTable::default();
        for (name, value) in [
            ("text", AMQPValue::LongString("acme".into())),
            ("i8", AMQPValue::ShortShortInt(-5)),
            ("i16", AMQPValue::ShortInt(-300)),
            ("seq", AMQPValue::LongInt(7)),
            ("u32", AMQPValue::LongUInt(7)),
            ("big", AMQPValue::LongLongInt(1 << 40)),
            ("urgent", AMQPValue::Boolean(true)),
            ("f32", AMQPValue::Float(1.5)),
            ("f64", AMQPValue::Double(f64::NAN)),
            (
                "price",
                AMQPValue::DecimalValue(DecimalValue {
                    scale: 2,
                    value: 1234,
                }),
            ),
            ("at", AMQPValue::Timestamp(1_700_000_000)),
            ("nested", AMQPValue::FieldTable(inner)),
            (
                "list",
                AMQPValue::FieldArray(FieldArray::from(vec![
                    AMQPValue::LongInt(1),
                    AMQPValue::LongString("two".into()),
                ])),
            ),
            (
                "blob",
                AMQPValue::ByteArray(ByteArray::from(vec![0u8, 1, 254, 255])),
            ),
            ("nothing", AMQPValue::Void),
        ] {
            headers.insert(name.into(), value);
        }
        let props = BasicProperties::default().with_headers(headers.clone());
        let record = crate::event::rmq::record(&props, b"x", false);
        let kept = keep_headers(&headers).unwrap();
        let published =
            crate::source::message::properties(&from_rmq(&record, Some(&kept), b"x", "guest"))
                .unwrap();
        let sent = published.headers().as_ref().unwrap();
        assert_eq!(
            sent.inner().get(REPUBLISHED_HEADER),
            Some(&AMQPValue::LongString("true".into()))
        );
        let mut got = FieldTable::default();
        for (name, value) in sent.inner() {
            if name.as_str() != REPUBLISHED_HEADER {
                got.insert(name.clone(), value.clone());
            }
        }
        // NaN is not equal to itself: compare the encodings.
        assert_eq!(keep_headers(&got).unwrap(), kept);
        assert_eq!(got.inner()["seq"], AMQPValue::LongInt(7));

        // Without them (a letter journaled before), the record's JSON is all
        // there is, and an integer comes back 64-bit.
        let from_record =
            crate::source::message::properties(&from_rmq(&record, None, b"x", "guest")).unwrap();
        let h = from_record.headers().as_ref().unwrap().inner();
        assert_eq!(h["seq"], AMQPValue::LongLongInt(7));
        // And unreadable ones are as good as none.
        let garbled = from_rmq(&record, Some(&[0xff, 0xff]), b"x", "guest");
        assert!(garbled.table.is_none());
        assert!(garbled.headers.iter().any(|(k, _)| k == "seq"));
    }

    #[test]
    fn an_mq_record_gives_back_its_headers_and_the_original_id() {
        let headers = [
            ("message-id", "ID:host-1:1:1:1"),
            ("destination", "/queue/q"),
            ("persistent", "true"),
            ("correlation-id", "c-9"),
            ("priority", "7"),
            ("expires", "1000"),
            ("content-length", "2"),
            ("tenant_id", "acme"),
        ];
        let record = crate::event::mq::record(headers, b"hi", 0);
        let (m, bytes) = from_mq(&record, b"hi", 5000);
        assert!(bytes, "a BytesMessage stays one");
        let has = |list: &[(String, String)], k: &str, v: &str| {
            list.iter().any(|(a, b)| a == k && b == v)
        };
        assert!(has(&m.properties, "persistent", "true"));
        assert!(has(&m.properties, "correlation_id", "c-9"));
        assert!(has(&m.properties, "priority", "7"));
        assert!(
            !m.properties.iter().any(|(k, _)| k == "expires"),
            "already past"
        );
        assert!(has(&m.headers, "tenant_id", "acme"));
        assert!(has(
            &m.headers,
            "x-mqtrigger-original-message-id",
            "ID:host-1:1:1:1"
        ));
    }
}
