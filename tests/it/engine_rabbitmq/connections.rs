//! The broker's endpoints: an unreachable first endpoint fails over to the
//! next, and a broker that is down is retried and reported, not a stop.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use mqtrigger::mapping::State;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_first_endpoint_fails_over_to_the_next() {
    let broker = Broker::connect().await;
    let queue = unique("failover");
    broker.declare(&queue, FieldTable::default()).await;
    broker
        .publish(&queue, b"via standby", BasicProperties::default())
        .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut setup = Setup::new(&queue);
    setup.endpoints = vec![format!("amqp://{closed}"), amqp_endpoint()];
    let running = Running::start(&setup).await;
    wait_for("delivery through the second endpoint", || {
        !running.events().is_empty()
    })
    .await;
    running.control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_is_retried_and_reported() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut setup = Setup::new(&unique("down"));
    setup.endpoints = vec![format!("amqp://{closed}")];
    let running = Running::start(&setup).await;
    wait_for("the problem to show", || {
        running
            .mapping()
            .last_processing_result
            .contains("Connection error")
    })
    .await;
    let m = running.mapping();
    assert_eq!(
        m.state,
        State::Enabled,
        "a broker outage is not a stop code: it keeps retrying"
    );
    assert!(
        m.last_processing_result.contains(&closed.to_string()),
        "{}",
        m.last_processing_result
    );
    running.control.shutdown().await;
}
