//! Dead letters on RabbitMQ: to the queue's own dead-letter exchange when
//! it has one, else published with confirms to `<queue>.dlq`, carrying
//! where they came from and why.

use super::{DeadLetterRoute, RabbitSource};
use crate::source::SettleError;
use crate::source::{DeadLetterError, DeadLetterReason, Delivery, DeliveryTag};
use lapin::Confirmation;
use lapin::options::{
    BasicPublishOptions, BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection};

impl RabbitSource {
    /// A confirming channel to publish dead letters on, with the dead-letter
    /// queue declared (a publish to a queue that does not exist would be
    /// confirmed and silently dropped).
    async fn publisher(&mut self, dlq: &str) -> Result<Channel, String> {
        if let Some(c) = self.publisher.as_ref().filter(|c| c.status().connected()) {
            return Ok(c.clone());
        }
        let declare =
            |e: lapin::Error| format!("cannot declare the dead-letter queue '{dlq}': {e}");
        let connection = self.lease.connection();
        let channel = connection.create_channel().await.map_err(declare)?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        if let Err(e) = channel
            .queue_declare(dlq.into(), durable, FieldTable::default())
            .await
        {
            // Without configure permission the queue must already exist.
            let channel = connection.create_channel().await.map_err(declare)?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            channel
                .queue_declare(dlq.into(), passive, FieldTable::default())
                .await
                .map_err(|_| declare(e))?;
            return self.confirming(channel).await;
        }
        self.confirming(channel).await
    }

    async fn confirming(&mut self, channel: Channel) -> Result<Channel, String> {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("cannot enable publisher confirms: {e}"))?;
        self.publisher = Some(channel.clone());
        Ok(channel)
    }

    pub(super) async fn dead_letter_all(
        &mut self,
        deliveries: &[Delivery],
        reason: &DeadLetterReason,
    ) -> Result<(), DeadLetterError> {
        let fail = |count, reason: String| DeadLetterError::Lost(SettleError { count, reason });
        // The consumer still holds the messages: the move can be tried again.
        let refused = |_count: usize, reason: String| DeadLetterError::Refused(reason);
        if let DeadLetterRoute::Exchange(_) = self.route {
            let mut lost = 0;
            for d in deliveries {
                let DeliveryTag::Amqp(tag) = d.tag else {
                    continue;
                };
                self.properties.remove(&tag);
                let acker = self.ackers.remove(&tag);
                let rejected = match acker {
                    Some(a) => a.reject(BasicRejectOptions { requeue: false }).await,
                    None => Ok(false),
                };
                if !matches!(rejected, Ok(true)) {
                    lost += 1;
                }
            }
            return if lost > 0 {
                Err(fail(lost, "the channel closed before the reject".into()))
            } else {
                Ok(())
            };
        }
        let DeadLetterRoute::Queue(dlq) = self.route.clone() else {
            unreachable!()
        };
        // A message whose channel is gone will be redelivered; copying it to
        // the dead-letter queue now would leave a second copy there.
        if deliveries
            .iter()
            .any(|d| !matches!(d.tag, DeliveryTag::Amqp(t) if self.ackers.contains_key(&t)))
        {
            return Err(fail(
                deliveries.len(),
                "the channel closed; the broker redelivers these".into(),
            ));
        }
        let queue = self.config.queue.clone();
        let publisher = self
            .publisher(&dlq)
            .await
            .map_err(|e| refused(deliveries.len(), e))?;
        let mut confirms = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let DeliveryTag::Amqp(tag) = d.tag else {
                continue;
            };
            let props = self.properties.get(&tag).cloned().unwrap_or_default();
            let props = with_death_headers(props, &queue, reason);
            let confirm = publisher
                .basic_publish(
                    "".into(),
                    dlq.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &d.original_body(),
                    props,
                )
                .await
                .map_err(|e| {
                    refused(deliveries.len(), format!("cannot publish to '{dlq}': {e}"))
                })?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            match confirm.await {
                Ok(Confirmation::Ack(None)) => {}
                Ok(Confirmation::Nack(_)) => {
                    return Err(refused(
                        deliveries.len(),
                        format!(
                            "RabbitMQ refused the dead letters in '{dlq}' (a full queue with x-overflow=reject-publish, or a policy)"
                        ),
                    ));
                }
                Ok(Confirmation::Ack(Some(_))) => {
                    return Err(refused(
                        deliveries.len(),
                        format!(
                            "RabbitMQ could not route the dead letters to '{dlq}' (does the queue exist?)"
                        ),
                    ));
                }
                Ok(other) => {
                    return Err(refused(
                        deliveries.len(),
                        format!("RabbitMQ did not confirm the dead letters in '{dlq}': {other:?}"),
                    ));
                }
                Err(e) => {
                    return Err(refused(
                        deliveries.len(),
                        format!("dead letters to '{dlq}' not confirmed: {e}"),
                    ));
                }
            }
        }
        let tags: Vec<DeliveryTag> = deliveries.iter().map(|d| d.tag.clone()).collect();
        Ok(self.ack_all(&tags).await?)
    }
}

/// Records on the dead letter where it came from and why, like RabbitMQ's own
/// `x-death`, so a person looking at `<queue>.dlq` can tell.
fn with_death_headers(
    props: BasicProperties,
    queue: &str,
    reason: &DeadLetterReason,
) -> BasicProperties {
    let mut headers = props.headers().clone().unwrap_or_default();
    headers.insert(
        "x-mqtrigger-queue".into(),
        AMQPValue::LongString(LongString::from(queue)),
    );
    headers.insert(
        "x-mqtrigger-reason".into(),
        AMQPValue::LongString(LongString::from(reason.to_string())),
    );
    if let DeadLetterReason::RetriesExhausted { attempts, .. } = reason {
        headers.insert(
            "x-mqtrigger-attempts".into(),
            AMQPValue::LongLongInt(i64::from(*attempts)),
        );
    }
    // The dead letter must outlive a broker restart even if the original was
    // transient, and must not expire in the dead-letter queue: every property
    // is copied but delivery mode and expiration.
    let mut copy = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(2);
    macro_rules! keep {
        ($($get:ident => $set:ident),*) => {
            $(if let Some(v) = props.$get() { copy = copy.$set(v.clone()); })*
        };
    }
    keep!(content_type => with_content_type, content_encoding => with_content_encoding,
        priority => with_priority, correlation_id => with_correlation_id, reply_to => with_reply_to,
        message_id => with_message_id, timestamp => with_timestamp, kind => with_type,
        user_id => with_user_id, app_id => with_app_id, cluster_id => with_cluster_id);
    copy
}

/// Finds out whether the queue has a dead-letter exchange.
///
/// AMQP 0-9-1 cannot read a queue's arguments, but RabbitMQ checks a
/// redeclaration against them and names the first argument that differs. A
/// declaration with no `x-dead-letter-exchange` therefore fails naming that
/// argument when the queue has one. Each other difference it names (durable,
/// the queue type, a length limit) is copied into the next try. A user
/// without configure permission cannot probe; then dead letters are published
/// to `<queue>.dlq`.
pub(super) async fn probe_dead_letter_route(
    connection: &Connection,
    queue: &str,
) -> DeadLetterRoute {
    let fallback = DeadLetterRoute::Queue(format!("{queue}.dlq"));
    let mut durable = true;
    let mut args = FieldTable::default();
    for _ in 0..8 {
        let Ok(channel) = connection.create_channel().await else {
            return fallback;
        };
        let result = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable,
                    ..Default::default()
                },
                args.clone(),
            )
            .await;
        let _ = channel.close(200, "probe done".into()).await;
        let err = match result {
            Ok(_) => return fallback,
            Err(e) => e,
        };
        let lapin::ErrorKind::ProtocolError(amqp) = err.kind() else {
            return fallback;
        };
        let text = amqp.get_message().as_str();
        let Some(arg) = between(text, "inequivalent arg '", "'") else {
            return fallback;
        };
        match arg {
            "x-dead-letter-exchange" => {
                let exchange = between(text, "current is the value '", "'").unwrap_or_default();
                return DeadLetterRoute::Exchange(exchange.to_owned());
            }
            "durable" => durable = !durable,
            other => match current_value(text) {
                Some(value) => {
                    args.insert(other.into(), value);
                }
                None => return fallback,
            },
        }
    }
    fallback
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// Reads "current is the value 'V' of type 'T'" out of RabbitMQ's message.
fn current_value(text: &str) -> Option<AMQPValue> {
    let value = between(text, "current is the value '", "'")?;
    let kind = between(text, "' of type '", "'")?;
    Some(match kind {
        "longstr" => AMQPValue::LongString(value.into()),
        "signedint" | "long" | "short" | "byte" => AMQPValue::LongLongInt(value.parse().ok()?),
        "bool" => AMQPValue::Boolean(value == "true"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rabbitmq_precondition_messages_are_read() {
        let text = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received none but current is the value 'quorum' of type 'longstr'";
        assert_eq!(
            between(text, "inequivalent arg '", "'"),
            Some("x-queue-type")
        );
        assert_eq!(
            current_value(text),
            Some(AMQPValue::LongString("quorum".into()))
        );
        let text = "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received none but current is the value '10' of type 'signedint'";
        assert_eq!(current_value(text), Some(AMQPValue::LongLongInt(10)));
    }
}
