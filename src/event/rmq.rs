//! INTERIM implementation by the lead so the engine can be tested; the rmq helper replaces this file entirely.
use base64::Engine;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Value, json};

fn s(v: &Option<lapin::types::ShortString>) -> Value {
    v.as_ref()
        .map(|x| Value::String(x.to_string()))
        .unwrap_or(Value::Null)
}

fn value(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::LongString(l) => json!({"bytes": l.as_bytes()}),
        AMQPValue::ShortString(x) => json!({"bytes": x.as_str().as_bytes()}),
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::Timestamp(n) => json!(n),
        AMQPValue::FieldTable(t) => table(t),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value).collect()),
        AMQPValue::ByteArray(b) => json!({"bytes": b.as_slice()}),
        _ => Value::Null,
    }
}

fn table(t: &FieldTable) -> Value {
    Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.to_string(), value(v)))
            .collect(),
    )
}

pub fn record(properties: &BasicProperties, body: &[u8], redelivered: bool) -> Vec<u8> {
    let p = properties;
    let ts = p.timestamp().map(|t| {
        chrono::DateTime::from_timestamp(t as i64, 0)
            .unwrap_or_default()
            .format("%b %-d, %Y, %-I:%M:%S %p")
            .to_string()
    });
    let v = json!({
        "basicProperties": {
            "contentType": s(p.content_type()), "contentEncoding": s(p.content_encoding()),
            "headers": p.headers().as_ref().map(table).unwrap_or(Value::Null),
            "deliveryMode": p.delivery_mode().unwrap_or(1), "priority": p.priority().unwrap_or(0),
            "correlationId": s(p.correlation_id()), "replyTo": s(p.reply_to()), "expiration": s(p.expiration()),
            "messageId": s(p.message_id()), "timestamp": ts, "type": s(p.kind()), "userId": s(p.user_id()),
            "appId": s(p.app_id()), "clusterId": s(p.cluster_id()), "bodySize": body.len(),
        },
        "redelivered": redelivered,
        "data": base64::engine::general_purpose::STANDARD.encode(body),
    });
    serde_json::to_vec(&v).unwrap()
}

pub fn frame(event_source_arn: &str, queue: &str, vhost: &str) -> crate::event::EventFrame {
    let prefix = format!(
        "{{\"eventSource\":\"aws:rmq\",\"eventSourceArn\":{},\"rmqMessagesByQueue\":{{{}:[",
        serde_json::to_string(event_source_arn).unwrap(),
        serde_json::to_string(&format!("{queue}::{vhost}")).unwrap()
    );
    crate::event::EventFrame::new(prefix.into_bytes(), b"]}}".to_vec())
}
