//! `/metrics` counts what the engine counted, however fast the events came:
//! 20,000 messages at BatchSize 1 through the real RabbitMQ to a fast
//! Lambda endpoint, then every counter exact (issue: it used to add up a
//! lossy event stream and stay low).

use crate::common::*;
use bytes::Bytes;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use mqtrigger::invoke::lambda_server::{LambdaServer, Reply};
use tokio_util::sync::CancellationToken;

const MESSAGES: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_flood_of_20000_messages_the_metrics_say_20000() {
    let broker = Broker::connect().await;
    let queue = unique("flood");
    broker.declare(&queue, FieldTable::default()).await;
    let server =
        LambdaServer::start(|_name: &str, _payload: Bytes| Reply::Ok(Bytes::from_static(b"{}")))
            .await
            .unwrap();
    let mut setup = Setup::new(&queue);
    setup.batch_size = 1;
    setup.mapping_toml = "ScalingConfig = { MaximumConcurrency = 10 }".into();
    setup.lambda_endpoint = Some(server.url.clone());
    let running = Running::start(&setup).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(mqtrigger::metrics::serve(
        running.control.clone(),
        listener,
        shutdown.clone(),
    ));
    for i in 0..MESSAGES {
        broker
            .publish(
                &queue,
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await;
    }
    let uuid = running.mapping().uuid.to_string();
    let value = |text: &str, name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&uuid))
            .unwrap_or_else(|| panic!("no {name} for {uuid} in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    wait_for_all("messages acked by the engine", MESSAGES, || {
        running.control.stats(running.mapping().uuid).succeeded as usize
    })
    .await;
    let text = http_get(metrics, "/metrics").await.unwrap();
    assert_eq!(
        value(&text, "mqtrigger_messages_succeeded_total"),
        MESSAGES as u64
    );
    assert_eq!(
        value(&text, "mqtrigger_messages_received_total"),
        MESSAGES as u64
    );
    assert_eq!(
        value(&text, "mqtrigger_messages_invoked_total"),
        MESSAGES as u64
    );
    assert_eq!(
        value(&text, "mqtrigger_batches_invoked_total"),
        MESSAGES as u64
    );
    assert_eq!(value(&text, "mqtrigger_messages_failed_total"), 0);
    assert_eq!(value(&text, "mqtrigger_messages_in_flight"), 0);
    assert_eq!(value(&text, "mqtrigger_batches_in_flight"), 0);
    assert_eq!(
        server.invocations().len(),
        MESSAGES,
        "each message invoked once"
    );
    assert_eq!(broker.ready(&queue).await, 0);
    shutdown.cancel();
    running.control.shutdown().await;
    broker.delete(&queue).await;
}
