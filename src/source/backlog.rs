//! How many messages wait in a queue: the BACKLOG the console and
//! `/metrics` show. Neither protocol a source consumes with says so in its
//! deliveries, so it is asked of the broker apart from them, a few seconds
//! apart, never per batch:
//!
//! - RabbitMQ: a passive `queue.declare` answers the queue's ready messages
//!   (not those delivered and unacked) on any channel; no management plugin
//!   is needed. It goes over the connection the mappings share with this
//!   broker, on a channel of its own (a missing queue closes its channel).
//! - ActiveMQ: STOMP has no queue depth. ActiveMQ Classic's web console
//!   serves Jolokia, a JSON view of its JMX beans, whose `QueueSize` is the
//!   count; the broker's `admin_url` in the config says where, and its
//!   users are the web console's. Without it the backlog is unknown, and
//!   says why.

use super::SourceError;
use super::rabbitmq::{AmqpTarget, classify};
use super::shared::AmqpConnections;
use crate::config::Secret;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long one question to a broker may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// What is known of a queue's backlog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backlog {
    /// Messages ready in the queue, as the broker counted them.
    Messages(u64),
    /// The count cannot be had: why, and what would give it.
    Unknown(String),
}

/// The ready messages of `queue`, by a passive declare on a channel of the
/// shared connection to `target`.
pub async fn amqp(
    connections: &AmqpConnections,
    target: AmqpTarget<'_>,
    queue: &str,
) -> Result<u64, SourceError> {
    let what = format!(
        "for user '{}' (vhost '{}', queue '{queue}')",
        target.secret.username, target.vhost
    );
    let ask = async {
        let lease = super::rabbitmq::lease(connections, target, &what).await?;
        let channel = lease
            .connection()
            .create_channel()
            .await
            .map_err(|e| classify(&e, &what))?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .map_err(|e| classify(&e, &what))?;
        // A channel of its own, closed: tidiness, not safety.
        let _ = channel.close(200, "counted".into()).await;
        Ok(u64::from(declared.message_count()))
    };
    tokio::time::timeout(ASK_TIMEOUT, ask).await.map_err(|_| {
        SourceError::Connection(format!(
            "RabbitMQ did not count the queue {what} within {ASK_TIMEOUT:?}"
        ))
    })?
}

/// The Jolokia read of `queue`'s size on any broker of the JVM at
/// `admin_url` (a pattern, so the broker's own name need not be known).
pub fn jolokia_url(admin_url: &url::Url, queue: &str) -> Result<url::Url, String> {
    // Jolokia's path syntax: `!` escapes `/` and `!` in a bean's name.
    let escaped = queue.replace('!', "!!").replace('/', "!/");
    let bean = format!(
        "org.apache.activemq:type=Broker,brokerName=*,destinationType=Queue,destinationName={escaped}"
    );
    admin_url
        .join(&format!("api/jolokia/read/{bean}/QueueSize"))
        .map_err(|e| format!("admin_url {admin_url} cannot take a Jolokia path: {e}"))
}

/// Reads `queue`'s size from ActiveMQ's Jolokia at `admin_url`, as the web
/// console's user `secret`.
pub async fn jolokia(admin_url: &url::Url, secret: &Secret, queue: &str) -> Result<u64, String> {
    use base64::Engine;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let url = jolokia_url(admin_url, queue)?;
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no TLS roots for {admin_url}: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(tls);
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", secret.username, secret.password));
    // Jolokia in ActiveMQ 5.16 and later refuses a request without an
    // Origin of its own host (its CSRF guard).
    let origin = admin_url.origin().ascii_serialization();
    let request = hyper::Request::get(url.as_str())
        .header("authorization", format!("Basic {credentials}"))
        .header("origin", origin)
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("cannot ask {url}: {e}"))?;
    let answer = async {
        let response = client.request(request).await.map_err(|e| {
            format!(
                "ActiveMQ's web console at {admin_url} does not answer: {}",
                crate::error_text::causes(&e)
            )
        })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the answer of {admin_url} broke off: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(ASK_TIMEOUT, answer)
        .await
        .map_err(|_| {
            format!("ActiveMQ's web console at {admin_url} did not answer within {ASK_TIMEOUT:?}")
        })??;
    match status.as_u16() {
        200 => queue_size(&body, queue),
        401 | 403 => Err(format!(
            "ActiveMQ's web console at {admin_url} refused user '{}' ({status}): set admin_secret in the broker's [[brokers]] entry to a web console user",
            secret.username
        )),
        404 => Err(format!(
            "no Jolokia at {url} (404): admin_url must be ActiveMQ's web console, e.g. http://HOST:8161"
        )),
        _ => Err(format!(
            "ActiveMQ's web console at {admin_url} answered {status}: {}",
            crate::error_text::first_line(&String::from_utf8_lossy(&body), 200)
        )),
    }
}

/// The queue size in a Jolokia answer to a pattern read: the value maps
/// each matching bean to its attributes. No bean: the broker has no such
/// queue (yet).
fn queue_size(body: &[u8], queue: &str) -> Result<u64, String> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("Jolokia's answer is not JSON: {e}"))?;
    // Jolokia answers a pattern that matches no bean (as a plain read of a
    // missing one) with its own 404 inside the JSON.
    if answer["error_type"].as_str() == Some("javax.management.InstanceNotFoundException") {
        return Err(format!("ActiveMQ has no queue '{queue}' yet"));
    }
    if answer["status"].as_u64() != Some(200) {
        return Err(format!(
            "Jolokia answered status {}: {}",
            answer["status"],
            answer["error"].as_str().unwrap_or("no error text")
        ));
    }
    let beans = answer["value"]
        .as_object()
        .ok_or_else(|| "Jolokia's answer has no value".to_owned())?;
    if beans.is_empty() {
        return Err(format!("ActiveMQ has no queue '{queue}' yet"));
    }
    Ok(beans
        .values()
        .filter_map(|bean| bean["QueueSize"].as_u64())
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jolokia_path_escapes_what_its_syntax_reserves() {
        let admin: url::Url = "http://127.0.0.1:8161".parse().unwrap();
        let url = jolokia_url(&admin, "orders/eu!x").unwrap();
        assert!(
            url.as_str()
                .ends_with("destinationType=Queue,destinationName=orders!/eu!!x/QueueSize"),
            "{url}"
        );
        assert!(
            url.as_str()
                .starts_with("http://127.0.0.1:8161/api/jolokia/read/")
        );
    }

    #[test]
    fn a_pattern_read_gives_the_size_and_an_empty_one_says_no_queue() {
        let body = br#"{"request":{},"value":{"org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=q":{"QueueSize":500}},"status":200}"#;
        assert_eq!(queue_size(body, "q"), Ok(500));
        let none = br#"{"request":{},"value":{},"status":200}"#;
        assert_eq!(
            queue_size(none, "q"),
            Err("ActiveMQ has no queue 'q' yet".into())
        );
        let missing = br#"{"request":{},"error_type":"javax.management.InstanceNotFoundException","error":"javax.management.InstanceNotFoundException : No MBean with pattern","status":404}"#;
        assert_eq!(
            queue_size(missing, "q"),
            Err("ActiveMQ has no queue 'q' yet".into())
        );
        let error = br#"{"error":"no such bean","status":404}"#;
        assert!(queue_size(error, "q").unwrap_err().contains("no such bean"));
    }
}
