//! A message as a broker takes it: its body, its AMQP basic properties and
//! headers (or STOMP headers); what `mqtrigger publish` sends and what a
//! republished dead letter is rebuilt as (`original`).

use anyhow::{Context, Result, bail};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// One message's worth of what to send.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub body: Vec<u8>,
    /// AMQP headers (`--header k=v`); `k=int:5`, `k=bool:true`, `k=float:1.5` give typed values.
    pub headers: Vec<(String, String)>,
    /// AMQP basic properties (`--property content_type=application/json`).
    pub properties: Vec<(String, String)>,
    /// AMQP headers with their exact types (a republished dead letter's);
    /// `headers` are added to them.
    pub table: Option<FieldTable>,
}

fn header_value(v: &str) -> Result<AMQPValue> {
    Ok(match v.split_once(':') {
        Some(("int", n)) => AMQPValue::LongLongInt(
            n.parse()
                .with_context(|| format!("`{n}` is not an integer"))?,
        ),
        Some(("bool", b)) => AMQPValue::Boolean(
            b.parse()
                .with_context(|| format!("`{b}` is not true or false"))?,
        ),
        Some(("float", f)) => AMQPValue::Double(
            f.parse()
                .with_context(|| format!("`{f}` is not a number"))?,
        ),
        Some(("str", s)) => AMQPValue::LongString(LongString::from(s)),
        _ => AMQPValue::LongString(LongString::from(v)),
    })
}

/// The names follow AMQP's basic properties, in snake case.
pub const PROPERTY_NAMES: &[&str] = &[
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
];

pub fn properties(message: &Message) -> Result<BasicProperties> {
    let mut p = BasicProperties::default();
    for (k, v) in &message.properties {
        let s = || ShortString::from(v.as_str());
        p = match k.as_str() {
            "content_type" => p.with_content_type(s()),
            "content_encoding" => p.with_content_encoding(s()),
            "delivery_mode" => p.with_delivery_mode(v.parse().context("delivery_mode is 1 or 2")?),
            "priority" => p.with_priority(v.parse().context("priority is 0 to 255")?),
            "correlation_id" => p.with_correlation_id(s()),
            "reply_to" => p.with_reply_to(s()),
            "expiration" => p.with_expiration(s()),
            "message_id" => p.with_message_id(s()),
            "timestamp" => p.with_timestamp(v.parse().context("timestamp is seconds since 1970")?),
            "type" => p.with_type(s()),
            "user_id" => p.with_user_id(s()),
            "app_id" => p.with_app_id(s()),
            "cluster_id" => p.with_cluster_id(s()),
            other => bail!(
                "unknown property `{other}`; use one of: {}",
                PROPERTY_NAMES.join(", ")
            ),
        };
    }
    if message.table.is_some() || !message.headers.is_empty() {
        let mut table = message.table.clone().unwrap_or_default();
        for (k, v) in &message.headers {
            table.insert(k.as_str().into(), header_value(v)?);
        }
        p = p.with_headers(table);
    }
    Ok(p)
}

impl Message {
    /// The message as a STOMP SEND to `queue`. Properties are named in
    /// snake case (`correlation_id`) and go as STOMP's dashed headers;
    /// headers keep the user's own names. `bytes_message` sends
    /// `content-length`, which makes ActiveMQ keep a BytesMessage.
    pub fn stomp_frame(&self, queue: &str, bytes_message: bool) -> super::stomp::Frame {
        let mut frame =
            super::stomp::Frame::new("SEND").header("destination", &format!("/queue/{queue}"));
        for (k, v) in &self.properties {
            frame = frame.header(&k.replace('_', "-"), v);
        }
        for (k, v) in &self.headers {
            frame = frame.header(k, v);
        }
        if bytes_message {
            frame = frame.header("content-length", &self.body.len().to_string());
        }
        frame.body(self.body.clone())
    }
}
