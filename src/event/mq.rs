//! The `aws:mq` event (ActiveMQ), built from a STOMP MESSAGE frame.
//!
//! Field names follow what Lambda really delivers and what the handler
//! libraries parse (`aws_lambda_events`, Powertools, the Java events
//! library): `messageID`, `correlationID`, `destination.physicalName`, and a
//! numeric `expiration`. The Lambda developer guide's own example writes
//! `correlationId`, `physicalname` and a string expiration; a handler written
//! against that spelling would not parse events captured from real brokers,
//! so the libraries' spelling wins.
//!
//! A message without a correlation id, reply-to or type has
//! `"correlationID": ""`, `"replyTo": "null"` (the string) and `"type": ""`:
//! that is what real brokers' events show Lambda sending (the fixture
//! `example-activemq-event.json` of aws-lambda-rust-runtime's lambda-events,
//! captured from Amazon MQ; AWS's EventBridge Pipes sample shows the same).
//! A handler that tests `replyTo is None` passes on `null`, then replies to
//! a queue named "null" on Lambda: here it fails the same way it would there.
//!
//! STOMP does not carry the broker's in/out times, so `brokerInTime` is the
//! message's timestamp and `brokerOutTime` the moment mqtrigger received it.

use super::EventFrame;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// JMS's default priority, for a frame without one.
const DEFAULT_PRIORITY: i64 = 4;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    #[serde(rename = "messageID")]
    message_id: Option<&'a str>,
    message_type: &'static str,
    timestamp: i64,
    delivery_mode: u8,
    #[serde(rename = "correlationID")]
    correlation_id: &'a str,
    reply_to: &'a str,
    destination: Destination<'a>,
    redelivered: bool,
    #[serde(rename = "type")]
    kind: &'a str,
    expiration: i64,
    priority: i64,
    #[serde(serialize_with = "super::base64_bytes::serialize")]
    data: &'a [u8],
    broker_in_time: i64,
    broker_out_time: i64,
    properties: Properties<'a>,
}

/// The custom properties, sorted by name, each once: a map in JSON, kept
/// as a sorted vector because a record is rendered for every message and a
/// frame has only a few of them.
struct Properties<'a>(Vec<(&'a str, &'a str)>);

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The headers that have a field of their own, as a frame gave them.
#[derive(Default)]
struct Known<'a> {
    message_id: Option<&'a str>,
    destination: Option<&'a str>,
    timestamp: Option<&'a str>,
    expires: Option<&'a str>,
    priority: Option<&'a str>,
    persistent: Option<&'a str>,
    correlation_id: Option<&'a str>,
    reply_to: Option<&'a str>,
    kind: Option<&'a str>,
    redelivered: Option<&'a str>,
    content_length: Option<&'a str>,
}

impl<'a> Known<'a> {
    /// Reads the frame's headers in one pass: the known ones into their
    /// fields, every other one into the properties. Of a repeated header
    /// the first counts (STOMP 1.2).
    fn read(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> (Known<'a>, Properties<'a>) {
        let mut known = Known::default();
        let mut properties = Vec::new();
        for (name, value) in headers {
            let slot = match name {
                "message-id" => &mut known.message_id,
                "destination" => &mut known.destination,
                "timestamp" => &mut known.timestamp,
                "expires" => &mut known.expires,
                "priority" => &mut known.priority,
                "persistent" => &mut known.persistent,
                "correlation-id" => &mut known.correlation_id,
                "reply-to" => &mut known.reply_to,
                "type" => &mut known.kind,
                "redelivered" => &mut known.redelivered,
                "content-length" => &mut known.content_length,
                // STOMP's own, with nothing in the event.
                "subscription" | "ack" | "content-type" => continue,
                _ => {
                    properties.push((name, value));
                    continue;
                }
            };
            slot.get_or_insert(value);
        }
        // A stable sort keeps repeats in frame order, so the first stays.
        properties.sort_by(|a, b| a.0.cmp(b.0));
        properties.dedup_by(|later, first| later.0 == first.0);
        (known, Properties(properties))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Destination<'a> {
    physical_name: &'a str,
}

/// The record of one MESSAGE frame. `headers` are the frame's (unescaped)
/// headers in order; when a header repeats, the first one counts (STOMP 1.2).
/// `received_ms` is when the frame arrived, in ms since the epoch.
pub fn record<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
    received_ms: i64,
) -> Vec<u8> {
    let (known, properties) = Known::read(headers);
    let number = |value: Option<&str>| value.and_then(|v| v.trim().parse::<i64>().ok());
    let timestamp = number(known.timestamp).unwrap_or(received_ms);
    let record = Record {
        message_id: known.message_id,
        // ActiveMQ sends content-length only for BytesMessages.
        message_type: if known.content_length.is_some() {
            "jms/bytes-message"
        } else {
            "jms/text-message"
        },
        timestamp,
        delivery_mode: if known.persistent == Some("true") {
            2
        } else {
            1
        },
        correlation_id: known.correlation_id.unwrap_or(""),
        // Lambda's poller writes a missing JMSReplyTo as the string "null".
        reply_to: known.reply_to.unwrap_or("null"),
        destination: Destination {
            physical_name: physical_name(known.destination.unwrap_or_default()),
        },
        redelivered: known.redelivered == Some("true"),
        kind: known.kind.unwrap_or(""),
        expiration: number(known.expires).unwrap_or(0),
        priority: number(known.priority).unwrap_or(DEFAULT_PRIORITY),
        data: body,
        broker_in_time: timestamp,
        broker_out_time: received_ms,
        properties,
    };
    // One allocation: the data in base64, the fields' names, a little more.
    let mut out = Vec::with_capacity(body.len() * 4 / 3 + 512);
    serde_json::to_writer(&mut out, &record)
        .expect("a record of strings and numbers always serializes");
    out
}

/// `/queue/orders` → `orders`, as JMS names the queue.
pub fn physical_name(destination: &str) -> &str {
    destination
        .strip_prefix("/queue/")
        .or_else(|| destination.strip_prefix("/topic/"))
        .unwrap_or(destination)
}

/// The frame around the records: `{"eventSource":"aws:mq","eventSourceArn":ARN,"messages":[…]}`.
pub fn frame(event_source_arn: &str) -> EventFrame {
    let arn = serde_json::to_string(event_source_arn).expect("a string serializes");
    let prefix = format!("{{\"eventSource\":\"aws:mq\",\"eventSourceArn\":{arn},\"messages\":[");
    EventFrame::new(prefix.into_bytes(), b"]}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::activemq::ActiveMqEvent;
    use serde_json::json;

    fn headers<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        pairs.to_vec()
    }

    #[test]
    fn a_full_message_becomes_the_lambda_record() {
        let h = headers(&[
            ("message-id", "ID:b-1-1:1:1:1:1"),
            ("destination", "/queue/orders"),
            ("timestamp", "1598827811958"),
            ("expires", "1598827871958"),
            ("priority", "7"),
            ("persistent", "true"),
            ("correlation-id", "corr-1"),
            ("reply-to", "/queue/replies"),
            ("type", "order"),
            ("redelivered", "true"),
            ("subscription", "uuid"),
            ("ack", "ID:ack-1"),
            ("content-length", "3"),
            ("tenant", "acme"),
            ("tenant", "ignored: the first header wins"),
        ]);
        let record: serde_json::Value =
            serde_json::from_slice(&record(h.clone(), b"abc", 1598827811960)).unwrap();
        assert_eq!(
            record,
            json!({
                "messageID": "ID:b-1-1:1:1:1:1", "messageType": "jms/bytes-message",
                "timestamp": 1598827811958i64, "deliveryMode": 2, "correlationID": "corr-1",
                "replyTo": "/queue/replies", "destination": {"physicalName": "orders"},
                "redelivered": true, "type": "order", "expiration": 1598827871958i64, "priority": 7,
                "data": "YWJj", "brokerInTime": 1598827811958i64, "brokerOutTime": 1598827811960i64,
                "properties": {"tenant": "acme"}
            })
        );
    }

    #[test]
    fn properties_come_sorted_by_name_each_once_the_first_winning() {
        let h = headers(&[("zone", "z"), ("b", "first"), ("a", "x"), ("b", "second")]);
        let text = String::from_utf8(record(h.clone(), b"", 5)).unwrap();
        assert!(
            text.ends_with(r#""properties":{"a":"x","b":"first","zone":"z"}}"#),
            "{text}"
        );
    }

    #[test]
    fn a_bare_text_message_parses_with_the_handler_library() {
        let h = headers(&[("message-id", "m"), ("destination", "/queue/q")]);
        let event =
            frame("arn:aws:mq:us-east-1:0:broker:b:b-1")
                .assemble([record(h.clone(), b"", 5).as_slice()]);
        let parsed: ActiveMqEvent = serde_json::from_slice(&event).unwrap();
        let m = &parsed.messages[0];
        assert_eq!(parsed.event_source.as_deref(), Some("aws:mq"));
        assert_eq!(m.message_type.as_deref(), Some("jms/text-message"));
        assert_eq!(
            (m.delivery_mode, m.priority, m.expiration, m.timestamp),
            (1, 4, 0, 5)
        );
        assert_eq!(m.destination.physical_name.as_deref(), Some("q"));
        // What Lambda sends for a message without them (see the module's note).
        assert_eq!(m.correlation_id.as_deref(), Some(""));
        assert_eq!(m.reply_to.as_deref(), Some("null"));
        assert_eq!(m.type_.as_deref(), Some(""));
        assert!(m.properties.is_empty());
    }
}
