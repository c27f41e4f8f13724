//! Waiting in a test: for a condition within a safety limit, for a count
//! for as long as it rises, and for something to listen on an address.

use std::time::Duration;

/// Polls until `done` holds; panics with `what` after a generous safety limit.
pub async fn wait_for<F: FnMut() -> bool>(what: &str, mut done: F) {
    let limit = std::time::Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(
            std::time::Instant::now() < limit,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `count()` reaches `target` for as long as it keeps rising:
/// a loaded machine makes a big flow slow, not wrong, so this gives up only
/// after 90 s without progress. `count` may be costly (it parses the
/// record), so it is read every 250 ms.
pub async fn wait_for_all<F: FnMut() -> usize>(what: &str, target: usize, mut count: F) {
    let stall = Duration::from_secs(90);
    let mut seen = count();
    let mut moved = std::time::Instant::now();
    while seen < target {
        assert!(
            moved.elapsed() < stall,
            "gave up waiting for {what}: {seen} of {target}, none more in {stall:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = count();
        if now != seen {
            seen = now;
            moved = std::time::Instant::now();
        }
    }
}

pub async fn wait_listening(addr: std::net::SocketAddr) {
    wait_for(&format!("something to listen on {addr}"), || {
        std::net::TcpStream::connect(addr).is_ok()
    })
    .await;
}
