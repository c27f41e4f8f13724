//! Two changes of one mapping through two instances at the same moment are
//! both kept (issue #26).

use super::instance;
use crate::common::*;

/// A plain HTTP/1.1 request to one instance's API (no signature: an API
/// without access keys on loopback takes any): the status and the JSON body.
async fn call(
    api: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let json = response.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(json).unwrap_or_default())
}

/// Two `serve` processes on one database, one mapping: 30 times, at the
/// same moment, BatchSize=N through A and MaximumBatchingWindowInSeconds=M
/// through B. Both answer 202, and after each pair either instance shows N
/// and M: a write through one instance never puts back what the other
/// changed (issue #26: 29 of 30 pairs lost one before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_changes_of_one_mapping_through_two_instances_at_once_are_both_kept() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let queue = unique("pg-race");
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(&queue);
    let apis = [free_port(), free_port()];
    let mut started = Vec::new();
    for (name, api) in ["a", "b"].into_iter().zip(apis) {
        started.push(instance(
            dir.path(),
            name,
            &setup,
            &db,
            &["--api".into(), api.to_string()],
        ));
        wait_listening(api).await;
    }
    let mappings = "/2015-03-31/event-source-mappings/";
    let (_, list) = call(apis[0], "GET", mappings, "").await;
    let uuid = list["EventSourceMappings"][0]["UUID"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{mappings}{uuid}");
    let mut lost = Vec::new();
    for n in 0..30u64 {
        let (batch, window) = (104 + n, 1 + n);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let put = |api: std::net::SocketAddr, body: String| {
            let (barrier, path) = (barrier.clone(), path.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                call(api, "PUT", &path, &body).await
            })
        };
        let through_a = put(apis[0], format!(r#"{{"BatchSize":{batch}}}"#));
        let through_b = put(
            apis[1],
            format!(r#"{{"MaximumBatchingWindowInSeconds":{window}}}"#),
        );
        let (a, b) = (through_a.await.unwrap(), through_b.await.unwrap());
        assert_eq!((a.0, b.0), (202, 202), "both accepted: {a:?} {b:?}");
        let mut shown = Vec::new();
        for api in apis {
            let (status, got) = call(api, "GET", &path, "").await;
            assert_eq!(status, 200, "{got}");
            shown.push((
                got["BatchSize"].as_u64(),
                got["MaximumBatchingWindowInSeconds"].as_u64(),
            ));
        }
        if shown.iter().any(|s| *s != (Some(batch), Some(window))) {
            lost.push(format!(
                "pair {n}: wanted BatchSize {batch} and window {window}; A and B show {shown:?}"
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of 30 pairs lost a change:\n{}",
        lost.len(),
        lost.join("\n")
    );
    // The last pair's changes reached the owner too: it settles Enabled
    // with both (the state a get shows once the restart is done).
    wait_for_state(apis[1], &path, "Enabled").await;
}

/// Waits (a minute at most) for the mapping at `path` to show `state`.
async fn wait_for_state(api: std::net::SocketAddr, path: &str, state: &str) {
    for _ in 0..600 {
        let (_, got) = call(api, "GET", path, "").await;
        if got["State"] == state {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the mapping at {path} never showed {state}");
}
