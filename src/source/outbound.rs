//! Putting one message on a queue, over the connections the mappings
//! share (`shared`): how a dead letter is republished. Each message is
//! confirmed by the broker before this answers (an AMQP publisher confirm,
//! a STOMP receipt), so a republish that says it is done is done.

use super::SourceError;
use super::message::{Message, properties};
use super::rabbitmq::{AmqpTarget, classify};
use super::shared::AmqpConnections;
use super::stomp_link::{StompConnections, classify_error};
use crate::config::Secret;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use std::time::Duration;

/// How long the broker may take to confirm a message.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Publishes `message` to `queue` through the default exchange, confirmed.
pub async fn publish_amqp(
    connections: &AmqpConnections,
    target: AmqpTarget<'_>,
    queue: &str,
    message: &Message,
) -> Result<(), SourceError> {
    let what = format!(
        "for user '{}' (vhost '{}', queue '{queue}')",
        target.secret.username, target.vhost
    );
    let props = properties(message).map_err(|e| SourceError::Config(format!("{e:#}")))?;
    let lease = super::rabbitmq::lease(connections, target, &what).await?;
    let channel = lease
        .connection()
        .create_channel()
        .await
        .map_err(|e| classify(&e, &what))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| classify(&e, &what))?;
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            // Mandatory: a message no queue takes comes back instead of
            // being dropped, and the publish fails below.
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &message.body,
            props,
        )
        .await
        .map_err(|e| classify(&e, &what))?;
    let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
        .await
        .map_err(|_| {
            SourceError::Connection(format!(
                "RabbitMQ confirmed nothing {what} within {CONFIRM_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| classify(&e, &what))?;
    // The channel is this publish's own; closing it is tidiness, not safety.
    let _ = channel.close(200, "published".into()).await;
    match confirmed {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => Err(SourceError::Config(format!(
            "RabbitMQ returned the message {what}: no queue takes it ({}); declare queue '{queue}'",
            returned.reply_text
        ))),
        other => Err(SourceError::Connection(format!(
            "RabbitMQ did not take the message {what}: {other:?}"
        ))),
    }
}

/// Sends `message` to `queue` and waits for ActiveMQ's receipt.
pub async fn publish_stomp(
    connections: &StompConnections,
    endpoint: &str,
    secret: &Secret,
    ca_file: Option<&std::path::Path>,
    queue: &str,
    (message, bytes_message): (&Message, bool),
) -> Result<(), SourceError> {
    let user = format!("for user '{}' at {endpoint}", secret.username);
    let what = format!("{user} (queue '{queue}')");
    let link =
        super::stomp_link::lease(connections, endpoint, secret, ca_file, (&user, &what)).await?;
    link.connection()
        .request(message.stomp_frame(queue, bytes_message), CONFIRM_TIMEOUT)
        .await
        .map_err(|text| classify_error(&text, &what))
}
