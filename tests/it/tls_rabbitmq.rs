//! amqps:// to RabbitMQ: the certificate is checked against the system's
//! roots and the broker's `ca_file`; a certificate that is not trusted, or
//! not for the host connected to, stops the mapping with a reason. There is
//! no fallback to plain text. Runs against scripts/brokers' TLS node.

use crate::common::*;
use mqtrigger::mapping::StateTransitionReason;

/// The TLS node's plain listener, for setting up queues.
const PLAIN: &str = "amqp://guest:guest@127.0.0.1:5674/%2f";
const CA: &str = "/etc/rabbitmq/mqt-tls/ca.pem";

fn tls_setup(queue: &str, endpoint: &str, ca: bool) -> Setup {
    let mut setup = Setup::new(queue);
    setup.endpoints = vec![endpoint.into()];
    setup.ca_file = ca.then(|| CA.into());
    setup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_the_brokers_ca_delivers() {
    let broker = Broker::connect_to(PLAIN).await;
    let queue = unique("amqps");
    broker.declare(&queue, Default::default()).await;
    broker
        .publish(&queue, b"over TLS", Default::default())
        .await;
    let running = Running::start(&tls_setup(&queue, "amqps://localhost:5671", true)).await;
    wait_for("the message at the function", || {
        !running.events().is_empty()
    })
    .await;
    assert_eq!(messages(&running.events()[0])[0].0, b"over TLS");
    running.control.shutdown().await;
    assert_eq!(broker.ready(&queue).await, 0);
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_stops_the_mapping_with_the_fix() {
    let queue = unique("amqps-untrusted");
    let running = Running::start(&tls_setup(&queue, "amqps://localhost:5671", false)).await;
    let (reason, detail) = running.stopped().await;
    assert_eq!(reason, StateTransitionReason::EsmConfigNotValid);
    assert!(
        detail.contains("not signed by a trusted CA") && detail.contains("ca_file"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_stops_the_mapping() {
    let queue = unique("amqps-host");
    // The certificate names "localhost" only.
    let running = Running::start(&tls_setup(&queue, "amqps://127.0.0.1:5671", true)).await;
    let (reason, detail) = running.stopped().await;
    assert_eq!(reason, StateTransitionReason::EsmConfigNotValid);
    assert!(detail.contains("not for this host name"), "{detail}");
}
