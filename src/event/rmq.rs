//! The `aws:rmq` event (RabbitMQ).
//!
//! The shape is what Lambda's poller, written in Java, produces: every basic
//! property is present (`null` when unset), string headers become
//! `{"bytes": [...]}` because that is how the Java client's LongString
//! serializes, numbers stay numbers, and the timestamp is formatted the way
//! Java formats a Date ("Jan 1, 1970, 12:33:41 AM"). A message without
//! headers has `"headers": {}` and one without a priority `"priority": null`,
//! as captured events show Lambda sending (aws/aws-lambda-dotnet#1562), even
//! though `aws_lambda_events` types priority as a plain integer and cannot
//! parse that null: a handler must be ready for what Lambda really sends.
//! An unset deliveryMode is 1 (AMQP's default).

use super::EventFrame;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Deeper header tables than this are cut off (written as null), so a
/// hostile message cannot exhaust the stack.
const MAX_HEADER_DEPTH: usize = 64;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    basic_properties: Properties<'a>,
    redelivered: bool,
    #[serde(serialize_with = "super::base64_bytes::serialize")]
    data: &'a [u8],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Properties<'a> {
    content_type: Option<&'a str>,
    content_encoding: Option<&'a str>,
    headers: Headers<'a>,
    delivery_mode: u8,
    priority: Option<u8>,
    correlation_id: Option<&'a str>,
    reply_to: Option<&'a str>,
    expiration: Option<&'a str>,
    message_id: Option<&'a str>,
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    user_id: Option<&'a str>,
    app_id: Option<&'a str>,
    cluster_id: Option<&'a str>,
    body_size: usize,
}

struct Table<'a>(&'a FieldTable, usize);
/// A message's headers: `{}` when it has none.
struct Headers<'a>(Option<&'a FieldTable>);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(table) => Table(table, 0).serialize(s),
            None => s.serialize_map(Some(0))?.end(),
        }
    }
}
struct Value<'a>(&'a AMQPValue, usize);
struct ByteList<'a>(&'a [u8]);

impl Serialize for Table<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.inner().len()))?;
        for (k, v) in self.0.inner() {
            map.serialize_entry(k.as_str(), &Value(v, self.1 + 1))?;
        }
        map.end()
    }
}

impl Serialize for ByteList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("bytes", self.0)?;
        map.end()
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let depth = self.1;
        if depth > MAX_HEADER_DEPTH {
            return s.serialize_none();
        }
        match self.0 {
            AMQPValue::LongString(v) => ByteList(v.as_bytes()).serialize(s),
            AMQPValue::ShortString(v) => ByteList(v.as_str().as_bytes()).serialize(s),
            AMQPValue::ByteArray(v) => ByteList(v.as_slice()).serialize(s),
            AMQPValue::Boolean(v) => s.serialize_bool(*v),
            AMQPValue::ShortShortInt(v) => s.serialize_i8(*v),
            AMQPValue::ShortShortUInt(v) => s.serialize_u8(*v),
            AMQPValue::ShortInt(v) => s.serialize_i16(*v),
            AMQPValue::ShortUInt(v) => s.serialize_u16(*v),
            AMQPValue::LongInt(v) => s.serialize_i32(*v),
            AMQPValue::LongUInt(v) => s.serialize_u32(*v),
            AMQPValue::LongLongInt(v) => s.serialize_i64(*v),
            AMQPValue::Timestamp(v) => s.serialize_u64(*v),
            AMQPValue::Float(v) if v.is_finite() => s.serialize_f32(*v),
            AMQPValue::Double(v) if v.is_finite() => s.serialize_f64(*v),
            AMQPValue::DecimalValue(d) => {
                let value = f64::from(d.value) / 10f64.powi(i32::from(d.scale));
                s.serialize_f64(value)
            }
            AMQPValue::FieldTable(t) => Table(t, depth).serialize(s),
            AMQPValue::FieldArray(a) => {
                let mut seq = s.serialize_seq(Some(a.as_slice().len()))?;
                for v in a.as_slice() {
                    seq.serialize_element(&Value(v, depth + 1))?;
                }
                seq.end()
            }
            _ => s.serialize_none(),
        }
    }
}

fn text(v: &Option<ShortString>) -> Option<&str> {
    v.as_ref().map(ShortString::as_str)
}

/// Seconds since the epoch as Java's `Date` prints them, in UTC.
pub fn format_timestamp(seconds: u64) -> String {
    let time = i64::try_from(seconds)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .unwrap_or_default();
    time.format("%b %-d, %Y, %-I:%M:%S %p").to_string()
}

/// The record of one message, as JSON bytes, ready to join into an event.
pub fn record(properties: &BasicProperties, body: &[u8], redelivered: bool) -> Vec<u8> {
    let p = properties;
    let record = Record {
        basic_properties: Properties {
            content_type: text(p.content_type()),
            content_encoding: text(p.content_encoding()),
            headers: Headers(p.headers().as_ref()),
            delivery_mode: p.delivery_mode().unwrap_or(1),
            priority: *p.priority(),
            correlation_id: text(p.correlation_id()),
            reply_to: text(p.reply_to()),
            expiration: text(p.expiration()),
            message_id: text(p.message_id()),
            timestamp: p.timestamp().map(format_timestamp),
            kind: text(p.kind()),
            user_id: text(p.user_id()),
            app_id: text(p.app_id()),
            cluster_id: text(p.cluster_id()),
            body_size: body.len(),
        },
        redelivered,
        data: body,
    };
    // One allocation: the data in base64, the properties' names, a little more.
    let mut out = Vec::with_capacity(body.len() * 4 / 3 + 512);
    serde_json::to_writer(&mut out, &record)
        .expect("a record of strings and numbers always serializes");
    out
}

/// The frame around the records:
/// `{"eventSource":"aws:rmq","eventSourceArn":ARN,"rmqMessagesByQueue":{"QUEUE::VHOST":[…]}}`.
/// The frame of a mapping of several queues (one: [`frame`]): each queue's
/// records under its own key, as Lambda's `rmqMessagesByQueue` keys them.
pub fn frame_of(event_source_arn: &str, queues: &[String], vhost: &str) -> EventFrame {
    if queues.len() <= 1 {
        let queue = queues.first().map(String::as_str).unwrap_or_default();
        return frame(event_source_arn, queue, vhost);
    }
    let arn = serde_json::to_string(event_source_arn).expect("a string serializes");
    let prefix =
        format!("{{\"eventSource\":\"aws:rmq\",\"eventSourceArn\":{arn},\"rmqMessagesByQueue\":{{");
    let keys = queues
        .iter()
        .map(|q| {
            let key = serde_json::to_string(&format!("{q}::{vhost}")).expect("a string serializes");
            (q.clone(), format!("{key}:[").into_bytes())
        })
        .collect();
    EventFrame::grouped(prefix.into_bytes(), b"}}".to_vec(), keys)
}

pub fn frame(event_source_arn: &str, queue: &str, vhost: &str) -> EventFrame {
    let arn = serde_json::to_string(event_source_arn).expect("a string serializes");
    let key = serde_json::to_string(&format!("{queue}::{vhost}")).expect("a string serializes");
    let prefix = format!(
        "{{\"eventSource\":\"aws:rmq\",\"eventSourceArn\":{arn},\"rmqMessagesByQueue\":{{{key}:["
    );
    EventFrame::new(prefix.into_bytes(), b"]}}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::rabbitmq::RabbitMqEvent;
    use proptest::prelude::*;

    #[test]
    fn records_of_several_queues_go_under_each_queues_key() {
        let two = frame_of(
            "arn:aws:mq:us-east-1:0:broker:b:b-1",
            &["orders".into(), "refunds".into()],
            "/",
        );
        let props = lapin::BasicProperties::default();
        let a = record(&props, b"a", false);
        let b = record(&props, b"b", false);
        let c = record(&props, b"c", false);
        let event = two.assemble_by_queue([
            (Some("refunds"), a.as_slice()),
            (Some("orders"), b.as_slice()),
            (Some("refunds"), c.as_slice()),
        ]);
        assert!(event.len() <= two.event_size(3, a.len() + b.len() + c.len()));
        let parsed: serde_json::Value = serde_json::from_slice(&event).unwrap();
        let by_queue = parsed["rmqMessagesByQueue"].as_object().unwrap();
        let keys: Vec<&String> = by_queue.keys().collect();
        assert_eq!(keys, ["orders::/", "refunds::/"]);
        assert_eq!(by_queue["refunds::/"].as_array().unwrap().len(), 2);
        assert_eq!(by_queue["orders::/"].as_array().unwrap().len(), 1);
        let one = frame_of("arn:x", &["orders".into()], "/");
        assert_eq!(
            one.assemble([b.as_slice()]),
            frame("arn:x", "orders", "/").assemble([b.as_slice()]),
            "one queue: the frame as before"
        );
    }

    #[test]
    fn timestamps_read_like_lambdas() {
        assert_eq!(format_timestamp(0), "Jan 1, 1970, 12:00:00 AM");
        assert_eq!(format_timestamp(2021), "Jan 1, 1970, 12:33:41 AM");
        assert_eq!(format_timestamp(1_700_000_000), "Nov 14, 2023, 10:13:20 PM");
    }

    #[test]
    fn hostile_nesting_is_cut_off_not_overflowed() {
        let mut value = AMQPValue::Boolean(true);
        for _ in 0..200 {
            let mut t = FieldTable::default();
            t.insert("x".into(), value);
            value = AMQPValue::FieldTable(t);
        }
        let AMQPValue::FieldTable(headers) = value else {
            unreachable!()
        };
        let props = BasicProperties::default().with_headers(headers);
        let json: serde_json::Value = serde_json::from_slice(&record(&props, b"", false)).unwrap();
        let mut at = &json["basicProperties"]["headers"];
        let mut depth = 0;
        while at.is_object() {
            at = &at["x"];
            depth += 1;
        }
        assert_eq!(depth, MAX_HEADER_DEPTH + 1);
        assert!(at.is_null());
    }

    /// What Lambda sends for a bare message, and what that costs a Rust
    /// handler: aws_lambda_events types priority as a number, so it cannot
    /// read the event (the README's event section says so). When this
    /// starts to parse, the library caught up: update the README.
    #[test]
    fn a_bare_message_has_a_null_priority_and_empty_headers_as_on_lambda() {
        let event = frame("arn:aws:mq:us-east-1:0:broker:b:b-1", "q", "/").assemble([record(
            &BasicProperties::default(),
            b"x",
            false,
        )
        .as_slice()]);
        let json: serde_json::Value = serde_json::from_slice(&event).unwrap();
        let props = &json["rmqMessagesByQueue"]["q::/"][0]["basicProperties"];
        assert_eq!(props["priority"], serde_json::Value::Null);
        assert_eq!(props["headers"], serde_json::json!({}));
        assert_eq!(props["deliveryMode"], 1);
        assert!(serde_json::from_slice::<RabbitMqEvent>(&event).is_err());
    }

    proptest! {
        #[test]
        fn any_message_makes_an_event_the_handler_library_parses(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            header in "\\PC*",
            value in proptest::collection::vec(any::<u8>(), 0..64),
            queue in "[a-z.\"\\\\]{1,20}",
        ) {
            let mut headers = FieldTable::default();
            headers.insert(header.as_str().into(), AMQPValue::LongString(value.clone().into()));
            // aws_lambda_events cannot read a null priority (see below): these have one.
            let props = BasicProperties::default().with_headers(headers).with_priority(0);
            let event = frame("arn:aws:mq:us-east-1:0:broker:b:b-1", &queue, "/").assemble([record(&props, &body, true).as_slice()]);
            let parsed: RabbitMqEvent = serde_json::from_slice(&event).unwrap();
            let message = &parsed.messages_by_queue[&format!("{queue}::/")][0];
            let data = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, message.data.as_deref().unwrap()).unwrap();
            prop_assert_eq!(data, body);
            prop_assert_eq!(&message.basic_properties.headers[&header]["bytes"], &serde_json::json!(value));
            prop_assert!(message.redelivered);
        }
    }
}
