//! ActiveMQ's connection goes bad: an ERROR frame out of nowhere, and
//! heart-beats that stop. A proxy between mqtrigger and the broker does both.

use super::*;
use mqtrigger::engine::EngineEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards 127.0.0.1:port to the broker; can freeze traffic or send every
/// client a frame of its own and hang up.
struct Proxy {
    port: u16,
    frozen: Arc<AtomicBool>,
    inject: tokio::sync::broadcast::Sender<Vec<u8>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let (inject, _) = tokio::sync::broadcast::channel(4);
        let (f, i) = (frozen.clone(), inject.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(pump(client, server, f.clone(), i.subscribe()));
            }
        });
        Proxy {
            port,
            frozen,
            inject,
        }
    }
}

async fn pump(
    client: TcpStream,
    server: TcpStream,
    frozen: Arc<AtomicBool>,
    mut inject: tokio::sync::broadcast::Receiver<Vec<u8>>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up_frozen = frozen.clone();
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            while up_frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if sw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::select! {
            read = sr.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            },
            Ok(frame) = inject.recv() => {
                let _ = cw.write_all(&frame).await;
                break;
            }
        }
    }
    up.abort();
}

async fn run_with(fault: impl AsyncFnOnce(&Proxy), what: &str) {
    const TOTAL: usize = 400;
    let queue = unique("fault-stomp");
    let upstream = stomp_endpoint().trim_start_matches("stomp://").to_owned();
    let proxy = Proxy::start(upstream).await;
    fill(&stomp_url(), &queue, TOTAL).await;
    let mut setup = Setup::activemq(&queue);
    setup.endpoints = vec![format!("stomp://127.0.0.1:{}", proxy.port)];
    setup.batch_size = 20;
    setup.window_secs = Some(0);
    setup.function_env = vec![("SLEEP".into(), "0.05".into())];
    let running = Running::start(&setup).await;
    let mut events = running.control.subscribe();
    wait_for("some progress", || running.events().len() >= 2).await;
    fault(&proxy).await;
    wait_for_all("every message at the function", TOTAL, || {
        tally(&running.events()).0.len()
    })
    .await;
    let mut lost_connection = false;
    while let Ok(e) = events.try_recv() {
        if let EngineEvent::MappingChanged(m) = e
            && m.last_processing_result
                .starts_with("PROBLEM: Connection error")
        {
            lost_connection = true;
        }
    }
    let (counts, unmarked) = tally(&running.events());
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!("{what}: {TOTAL} messages invoked, {duplicates} duplicates");
    assert!(lost_connection, "the mapping showed the lost connection");
    assert_eq!(unmarked, 0, "duplicates are marked redelivered");
    assert_eq!(running.mapping().state, mqtrigger::mapping::State::Enabled);
    running.control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_frame_from_activemq_loses_nothing() {
    run_with(
        async |proxy: &Proxy| {
            let frame = b"ERROR\nmessage:injected by the test\ncontent-type:text/plain\n\nsomething went wrong\0".to_vec();
            proxy.inject.send(frame).unwrap();
        },
        "an ERROR frame",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_beats_that_stop_are_noticed_and_nothing_is_lost() {
    run_with(
        async |proxy: &Proxy| {
            // Silence both ways, longer than twice the 10 s heart-beat.
            proxy.frozen.store(true, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_secs(25)).await;
            proxy.frozen.store(false, Ordering::SeqCst);
        },
        "25 s without heart-beats",
    )
    .await;
}
