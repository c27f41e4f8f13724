//! AMQP connections shared by mappings.
//!
//! Brokers cap connections (Amazon MQ per instance type, RabbitMQ by file
//! descriptors: Debian's runs with 1,024, and a thousand mappings with a
//! connection each took it down), and each lapin connection costs an I/O
//! thread and its buffers. So mappings to the same endpoint with the same
//! credentials, virtual host and frame size share a connection, up to
//! [`MAPPINGS_PER_CONNECTION`] of them; each mapping has channels of its own
//! (its consumer with its prefetch, its dead-letter publisher), and a
//! channel error (a deleted queue, a refused declare) closes only that
//! mapping's channel. A connection that fails is replaced by whichever
//! mapping reconnects first; the others then join it.

use lapin::Connection;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Mappings on one connection at most: enough that a thousand idle
/// mappings hold a handful of connections, few enough that one connection's
/// I/O thread is not every busy mapping's bottleneck.
pub const MAPPINGS_PER_CONNECTION: usize = 200;

/// What makes two mappings' connections interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionKey {
    pub endpoint: String,
    pub username: String,
    pub password: String,
    pub vhost: String,
    pub large_frames: bool,
    pub ca_file: Option<std::path::PathBuf>,
}

struct Pooled {
    connection: Connection,
    mappings: AtomicUsize,
}

type Slot = Arc<tokio::sync::Mutex<Vec<Weak<Pooled>>>>;

/// The engine's shared connections, one pool for all its mappings.
#[derive(Clone, Default)]
pub struct AmqpConnections {
    slots: Arc<Mutex<HashMap<ConnectionKey, Slot>>>,
}

/// One mapping's use of a shared connection; the connection closes when
/// the last mapping on it lets go.
pub struct Lease(Arc<Pooled>);

impl Lease {
    pub fn connection(&self) -> &Connection {
        &self.0.connection
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.mappings.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for AmqpConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AmqpConnections({} open)", self.open_connections())
    }
}

impl AmqpConnections {
    /// A connected connection for `key` with room for one more mapping, or
    /// a new one from `connect`. Mappings asking for the same key wait for
    /// each other, so a thousand starting at once open a handful.
    pub async fn lease<F, Fut, E>(&self, key: &ConnectionKey, connect: F) -> Result<Lease, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Connection, E>>,
    {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let mut open = slot.lock().await;
        open.retain(|w| w.strong_count() > 0);
        for pooled in open.iter().filter_map(Weak::upgrade) {
            if pooled.connection.status().connected()
                && pooled.mappings.load(Ordering::Relaxed) < MAPPINGS_PER_CONNECTION
            {
                pooled.mappings.fetch_add(1, Ordering::Relaxed);
                return Ok(Lease(pooled));
            }
        }
        let pooled = Arc::new(Pooled {
            connection: connect().await?,
            mappings: AtomicUsize::new(1),
        });
        open.push(Arc::downgrade(&pooled));
        Ok(Lease(pooled))
    }

    /// Connections open now (in `Debug`).
    pub fn open_connections(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .values()
            .filter_map(|s| {
                s.try_lock()
                    .ok()
                    .map(|v| v.iter().filter(|w| w.strong_count() > 0).count())
            })
            .sum()
    }
}
