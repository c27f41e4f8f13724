//! A Lambda handler for MQ events, built on lambda_runtime. It writes one
//! JSON line per init and per invocation to RECORD_TO; a body with "boom"
//! fails, one with "sleep" outlives the timeout.

use aws_lambda_events::event::activemq::ActiveMqEvent;
use aws_lambda_events::event::rabbitmq::RabbitMqEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::io::Write;

fn record(entry: Value) {
    let path = std::env::var("RECORD_TO").expect("RECORD_TO");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("the record file");
    writeln!(file, "{entry}").expect("a record line");
}

fn decode(data: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn bodies(payload: Value) -> Result<Vec<String>, Error> {
    if payload["eventSource"] == "aws:rmq" {
        let event: RabbitMqEvent = serde_json::from_value(payload)?;
        Ok(event
            .messages_by_queue
            .values()
            .flatten()
            .map(|m| decode(m.data.as_deref().unwrap_or_default()))
            .collect())
    } else {
        let event: ActiveMqEvent = serde_json::from_value(payload)?;
        Ok(event
            .messages
            .iter()
            .map(|m| decode(m.data.as_deref().unwrap_or_default()))
            .collect())
    }
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let texts = bodies(payload)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    record(json!({
        "pid": std::process::id(),
        "request_id": context.request_id,
        "remaining_ms": context.deadline as i64 - now_ms,
        "function_arn": context.invoked_function_arn,
        "bodies": texts,
    }));
    println!("handled {} message(s): {}", texts.len(), texts[0]);
    if texts[0].contains("boom") {
        return Err(format!("bad order {}", texts[0]).into());
    }
    if texts[0].contains("sleep") {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    Ok(json!({ "handled": texts.len() }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    record(json!({ "init": std::process::id() }));
    lambda_runtime::run(service_fn(handler)).await
}
