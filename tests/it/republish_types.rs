//! A dead letter republished to RabbitMQ through the API is the message it
//! was down to each header's AMQP type, as an independent client (pika,
//! `tests/functions/amqp_types.py`) sees it on the wire: a 32-bit `I` comes
//! back `I`, not widened to a 64-bit `l` (issue #26).

use crate::common::*;
use lapin::types::FieldTable;
use std::process::Command;

/// `amqp_types.py URL WHAT QUEUE`: the headers pika sent or read, each
/// value as [type letter, encoded bytes in hex].
fn pika(what: &str, queue: &str) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/functions/amqp_types.py");
    let out = Command::new(python())
        .args([script, &amqp_url(), what, queue])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "amqp_types.py {what} (pika: python3 -m pip install pika): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A plain HTTP/1.1 POST without a body: the status and the body.
async fn post(api: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
    let request = format!(
        // A change to a keyless API says it is JSON (api::guard's content-type rule).
        "POST {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// pika publishes a message with headers of every type RabbitMQ carries
/// (long string, signed 8/16/32/64-bit integers, boolean, float, double,
/// decimal, timestamp, a nested table, an array, a byte array, void) to a
/// mapping whose function always fails; once it is dead-lettered, the API
/// republishes it, and pika reads the copy: every header has the type and
/// the bytes it was sent with, plus `x-mqtrigger-republished`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_dead_letter_keeps_the_amqp_type_of_every_header() {
    let broker = Broker::connect().await;
    let queue = unique("republish-types");
    broker.declare(&queue, FieldTable::default()).await;
    let sent = pika("publish", &queue);
    assert_eq!(sent["seq"][0], "I", "pika sent a 32-bit int: {sent}");

    let mut setup = Setup::new(&queue);
    setup.function_env = vec![("FAIL".into(), "always".into())];
    setup.max_redeliveries = Some(1);
    let running = Running::start(&setup).await;
    let listener = mqtrigger::api::bind("127.0.0.1:0".parse().unwrap(), &[])
        .await
        .unwrap();
    let api = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mqtrigger::api::serve(
        running.control.clone(),
        listener,
        stop.clone(),
    ));
    let _stop = stop.drop_guard();
    wait_for("the dead letter, moved", || {
        running.dead_letters().iter().any(|d| d.moved)
    })
    .await;
    let uuid = running.mapping().uuid;
    // Off first, so that the copy stays in the queue for pika to read.
    running.control.disable(uuid).await.unwrap();
    let letter = running.dead_letters().remove(0);
    let (status, answer) = post(
        api,
        &format!(
            "/mqtrigger/v1/mappings/{uuid}/dead-letters/{}/republish",
            letter.id
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    let got = pika("read", &queue);
    let mut wrong = Vec::new();
    for (name, value) in sent.as_object().unwrap() {
        if got[name] != *value {
            wrong.push(format!("{name}: sent {value}, came back {}", got[name]));
        }
    }
    assert!(
        wrong.is_empty(),
        "headers changed by the republish:\n{}",
        wrong.join("\n")
    );
    assert_eq!(got["x-mqtrigger-republished"][0], "S", "{got}");
    assert_eq!(
        got.as_object().unwrap().len(),
        sent.as_object().unwrap().len() + 1,
        "nothing else added: {got}"
    );
    running.control.shutdown().await;
    broker.delete(&queue).await;
    broker.delete(&format!("{queue}.dlq")).await;
}
