//! Filling a queue on either broker through mqtrigger's own publisher, the
//! same one `mqtrigger publish` uses, so a test needs no broker-specific
//! client to put messages where a mapping reads them.

/// Publishes each body to `queue` as a persistent message (AMQP
/// `delivery_mode` 2, STOMP `persistent:true`), waiting for the broker to
/// confirm them all.
pub async fn publish_persistent<B: AsRef<[u8]>>(url: &str, queue: &str, bodies: &[B]) {
    let message = mqtrigger::publish::Message {
        properties: if url.starts_with("stomp") {
            vec![("persistent".into(), "true".into())]
        } else {
            vec![("delivery_mode".into(), "2".into())]
        },
        ..Default::default()
    };
    let mut publisher = mqtrigger::publish::Publisher::connect(url, queue, &message, false)
        .await
        .unwrap();
    for body in bodies {
        publisher.send(body.as_ref()).await.unwrap();
    }
    publisher.finish().await.unwrap();
}
