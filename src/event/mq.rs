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
use base64::Engine;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// STOMP and JMS headers that have their own field in the event; every other
/// header is a custom property.
const STANDARD_HEADERS: &[&str] = &[
    "message-id",
    "destination",
    "timestamp",
    "expires",
    "priority",
    "persistent",
    "correlation-id",
    "reply-to",
    "type",
    "redelivered",
    "subscription",
    "ack",
    "content-length",
    "content-type",
];

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
    data: String,
    broker_in_time: i64,
    broker_out_time: i64,
    properties: Properties<'a>,
}

/// The custom properties, sorted by name, each once: a map in JSON, kept
/// as a sorted vector because a record is rendered for every message and a
/// frame has only a few of them.
struct Properties<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Properties<'a> {
    /// Every header without a field of its own; of a repeated one, the
    /// first (STOMP 1.2).
    fn of(headers: &'a [(String, String)]) -> Properties<'a> {
        let mut kept: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(k, _)| !STANDARD_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // A stable sort keeps repeats in frame order, so the first stays.
        kept.sort_by(|a, b| a.0.cmp(b.0));
        kept.dedup_by(|later, first| later.0 == first.0);
        Properties(kept)
    }
}

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
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
pub fn record(headers: &[(String, String)], body: &[u8], received_ms: i64) -> Vec<u8> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str| get(name).and_then(|v| v.trim().parse::<i64>().ok());
    let timestamp = number("timestamp").unwrap_or(received_ms);
    let destination = get("destination").unwrap_or_default();
    let properties = Properties::of(headers);
    let record = Record {
        message_id: get("message-id"),
        // ActiveMQ sends content-length only for BytesMessages.
        message_type: if get("content-length").is_some() {
            "jms/bytes-message"
        } else {
            "jms/text-message"
        },
        timestamp,
        delivery_mode: if get("persistent") == Some("true") {
            2
        } else {
            1
        },
        correlation_id: get("correlation-id").unwrap_or(""),
        // Lambda's poller writes a missing JMSReplyTo as the string "null".
        reply_to: get("reply-to").unwrap_or("null"),
        destination: Destination {
            physical_name: physical_name(destination),
        },
        redelivered: get("redelivered") == Some("true"),
        kind: get("type").unwrap_or(""),
        expiration: number("expires").unwrap_or(0),
        priority: number("priority").unwrap_or(DEFAULT_PRIORITY),
        data: base64::engine::general_purpose::STANDARD.encode(body),
        broker_in_time: timestamp,
        broker_out_time: received_ms,
        properties,
    };
    // One allocation: the data, the fields' names, a little more.
    let mut out = Vec::with_capacity(record.data.len() + 512);
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

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
            serde_json::from_slice(&record(&h, b"abc", 1598827811960)).unwrap();
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
        let text = String::from_utf8(record(&h, b"", 5)).unwrap();
        assert!(
            text.ends_with(r#""properties":{"a":"x","b":"first","zone":"z"}}"#),
            "{text}"
        );
    }

    #[test]
    fn a_bare_text_message_parses_with_the_handler_library() {
        let h = headers(&[("message-id", "m"), ("destination", "/queue/q")]);
        let event =
            frame("arn:aws:mq:us-east-1:0:broker:b:b-1").assemble([record(&h, b"", 5).as_slice()]);
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
