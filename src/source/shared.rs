//! Broker connections shared by mappings.
//!
//! Brokers cap connections (Amazon MQ per instance type, RabbitMQ by file
//! descriptors: Debian's runs with 1,024, and a thousand mappings with a
//! connection each took it down), and each connection costs a socket, an
//! I/O task (lapin: a thread) and its buffers. So mappings to the same
//! endpoint with the same credentials (and, for AMQP, virtual host and
//! frame size) share a connection, up to [`MAPPINGS_PER_CONNECTION`] of
//! them. Each mapping keeps what is its own on it: AMQP channels (its
//! consumer with its prefetch, its dead-letter publisher), a STOMP
//! subscription with its prefetch; an error there (a deleted queue, a
//! refused SUBSCRIBE) ends only that mapping's part. A connection that fails
//! is replaced by whichever mapping reconnects first; the others then join
//! it.

use crate::sync::Unpoisoned;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Mappings on one connection at most: enough that a thousand idle
/// mappings hold a handful of connections, few enough that one connection's
/// I/O task is not every busy mapping's bottleneck.
pub const MAPPINGS_PER_CONNECTION: usize = 200;

/// A connection that can be handed to one more mapping while it is open.
pub trait Shareable: Send + Sync + 'static {
    fn is_open(&self) -> bool;
}

impl Shareable for lapin::Connection {
    fn is_open(&self) -> bool {
        self.status().connected()
    }
}

/// What makes two mappings' AMQP connections interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionKey {
    pub endpoint: String,
    pub username: String,
    pub password: String,
    pub vhost: String,
    pub large_frames: bool,
    pub ca_file: Option<std::path::PathBuf>,
}

/// The engine's AMQP connections.
pub type AmqpConnections = Connections<ConnectionKey, lapin::Connection>;

struct Pooled<C> {
    connection: C,
    mappings: AtomicUsize,
}

type Slot<C> = Arc<tokio::sync::Mutex<Vec<Weak<Pooled<C>>>>>;

/// The engine's shared connections of one kind, one pool for all its
/// mappings.
pub struct Connections<K, C> {
    slots: Arc<Mutex<HashMap<K, Slot<C>>>>,
}

impl<K, C> Clone for Connections<K, C> {
    fn clone(&self) -> Self {
        Connections {
            slots: self.slots.clone(),
        }
    }
}

impl<K, C> Default for Connections<K, C> {
    fn default() -> Self {
        Connections {
            slots: Arc::default(),
        }
    }
}

/// One mapping's use of a shared connection; the connection closes when
/// the last mapping on it lets go.
pub struct Lease<C>(Arc<Pooled<C>>);

impl<C> Lease<C> {
    pub fn connection(&self) -> &C {
        &self.0.connection
    }
}

impl<C> Drop for Lease<C> {
    fn drop(&mut self) {
        self.0.mappings.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<K, C> std::fmt::Debug for Connections<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connections({} open)", self.open_connections())
    }
}

impl<K: Clone + Eq + Hash, C: Shareable> Connections<K, C> {
    /// An open connection for `key` with room for one more mapping, or a
    /// new one from `connect`. Mappings asking for the same key wait for
    /// each other, so a thousand starting at once open a handful.
    pub async fn lease<F, Fut, E>(&self, key: &K, connect: F) -> Result<Lease<C>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, E>>,
    {
        let slot = self.slots.locked().entry(key.clone()).or_default().clone();
        let mut open = slot.lock().await;
        open.retain(|w| w.strong_count() > 0);
        for pooled in open.iter().filter_map(Weak::upgrade) {
            if pooled.connection.is_open()
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
}

impl<K, C> Connections<K, C> {
    /// Connections open now (in `Debug`).
    pub fn open_connections(&self) -> usize {
        let slots = self.slots.locked();
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
