//! One STOMP connection, shared by the subscriptions of several mappings.
//!
//! A background task owns the socket: it sends heart-beats while the
//! functions run (ActiveMQ drops a silent client, and with it every unacked
//! message), notices a silent broker, writes queued frames together, hands
//! each MESSAGE to the subscription its `subscription` header names, and
//! matches RECEIPTs and ERRORs to the frames that asked for them.
//!
//! What an error ends (ActiveMQ 5.17, checked with a raw socket): an ERROR
//! that answers a frame with a `receipt` header carries its `receipt-id`,
//! and ActiveMQ keeps the connection open, unlike the STOMP spec says; so a
//! refused SUBSCRIBE or UNSUBSCRIBE is that subscription's alone. An ERROR
//! without a `receipt-id` (a refused ACK) names no subscription: the link
//! ends for all of them, the broker redelivers what was unacked, and each
//! mapping reconnects.

mod io_loop;
mod open;

pub use open::{Conn, Io, Opened, open, split_url};

use super::SourceError;
use super::shared::{Connections, Shareable};
use super::stomp::Frame;
use crate::config::Secret;
use crate::sync::Unpoisoned;
use io_loop::{IoLoop, io_loop};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Reads ActiveMQ's ERROR frames: a refused login and a refused read have
/// their own stop codes.
pub(crate) fn classify_error(text: &str, what: &str) -> SourceError {
    if text.contains("password is invalid") || text.contains("User name") {
        SourceError::Authentication(format!("ActiveMQ refused the login {what}: {text}"))
    } else if text.contains("not authorized") {
        SourceError::Authorization(format!("ActiveMQ denied access {what}: {text}"))
    } else {
        SourceError::Connection(format!("ActiveMQ sent an error {what}: {text}"))
    }
}

/// How often we offer and ask for heart-beats, in milliseconds.
const HEARTBEAT_MS: u32 = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What makes two mappings' STOMP connections interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StompKey {
    pub endpoint: String,
    pub username: String,
    pub password: String,
    pub ca_file: Option<std::path::PathBuf>,
}

/// The engine's STOMP connections.
pub type StompConnections = Connections<StompKey, StompLink>;

pub type Receipt = oneshot::Sender<Result<(), String>>;

/// What a subscription receives: its MESSAGE frames, or why they stopped.
pub type Messages = mpsc::UnboundedReceiver<Result<Frame, SourceError>>;

/// Asks the I/O task to send a frame, optionally waiting for its RECEIPT.
pub struct Outgoing {
    pub frame: Frame,
    pub receipt: Option<(String, Receipt)>,
}

/// Where one subscription's frames go. Its queue names it in errors.
struct Route {
    messages: mpsc::UnboundedSender<Result<Frame, SourceError>>,
    queue: String,
}

type Routes = Arc<Mutex<HashMap<String, Route>>>;

/// A connected STOMP session. Dropping the last handle ends it with a
/// DISCONNECT.
pub struct StompLink {
    outgoing: mpsc::Sender<Outgoing>,
    routes: Routes,
    next_id: AtomicU64,
    open: Arc<AtomicBool>,
    /// `host:port`, for messages.
    pub endpoint: String,
}

impl Shareable for StompLink {
    fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }
}

/// `stomp://host:port` → (host, port, tls).
pub fn parse_endpoint(endpoint: &str) -> Result<(String, u16, bool), String> {
    let (tls, rest) = if let Some(r) = endpoint.strip_prefix("stomp+ssl://") {
        (true, r)
    } else if let Some(r) = endpoint.strip_prefix("stomp://") {
        (false, r)
    } else {
        return Err(format!(
            "endpoint `{endpoint}` is not a stomp:// or stomp+ssl:// URL"
        ));
    };
    let hostport = rest.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse()
                .map_err(|_| format!("endpoint `{endpoint}` has a bad port"))?,
        ),
        None => (hostport, if tls { 61614 } else { 61613 }),
    };
    if host.is_empty() {
        return Err(format!("endpoint `{endpoint}` has no host"));
    }
    Ok((host.trim_matches(['[', ']']).to_owned(), port, tls))
}

/// A link to `endpoint` as the secret's user from the pool the mappings
/// share, connected and logged in if there is none: the one way mqtrigger
/// connects to ActiveMQ.
pub async fn lease(
    connections: &StompConnections,
    endpoint: &str,
    secret: &Secret,
    ca_file: Option<&std::path::Path>,
    (user, what): (&str, &str),
) -> Result<super::shared::Lease<StompLink>, SourceError> {
    let key = StompKey {
        endpoint: endpoint.to_owned(),
        username: secret.username.clone(),
        password: secret.password.clone(),
        ca_file: ca_file.map(ToOwned::to_owned),
    };
    connections
        .lease(&key, || {
            StompLink::connect(endpoint, secret, ca_file, (user, what))
        })
        .await
}

impl StompLink {
    /// Connects and logs in. `what` names the user, broker and the first
    /// mapping's queue in this connect's errors; `user` names the user and
    /// broker in the link's, beside each subscription's queue.
    pub async fn connect(
        endpoint: &str,
        secret: &Secret,
        ca_file: Option<&std::path::Path>,
        (user, what): (&str, &str),
    ) -> Result<StompLink, SourceError> {
        let Opened {
            framed,
            fd,
            connected,
            host,
            port,
        } = open(endpoint, secret, ca_file, what, Some(HEARTBEAT_MS)).await?;
        let (send_every, expect_within) = super::stomp::negotiate_heartbeat(
            (HEARTBEAT_MS, HEARTBEAT_MS),
            connected.get("heart-beat"),
        );
        let (outgoing, outgoing_rx) = mpsc::channel(64);
        let routes = Routes::default();
        let open = Arc::new(AtomicBool::new(true));
        tokio::spawn(io_loop(
            IoLoop {
                framed,
                fd,
                routes: routes.clone(),
                open: open.clone(),
                send_every,
                expect_within,
                what: user.to_owned(),
            },
            outgoing_rx,
        ));
        Ok(StompLink {
            outgoing,
            routes,
            next_id: AtomicU64::new(0),
            open,
            endpoint: format!("{host}:{port}"),
        })
    }

    /// A number no other frame or subscription on this link has.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Starts receiving `id`'s MESSAGE frames. The route is in place before
    /// the SUBSCRIBE goes out, so no early message is missed.
    pub fn route(&self, id: &str, queue: &str) -> Messages {
        let (tx, rx) = mpsc::unbounded_channel();
        // Unbounded, yet bounded by the subscription's prefetch: the broker
        // sends no more than that many unacked messages.
        self.routes.locked().insert(
            id.to_owned(),
            Route {
                messages: tx,
                queue: queue.to_owned(),
            },
        );
        rx
    }

    pub fn unroute(&self, id: &str) {
        self.routes.locked().remove(id);
    }

    /// Queues a frame; false when the link has ended.
    pub async fn send(&self, request: Outgoing) -> bool {
        self.outgoing.send(request).await.is_ok()
    }

    /// Queues a frame without waiting (for `Drop`): false when it could not.
    pub fn try_send(&self, frame: Frame) -> bool {
        self.outgoing
            .try_send(Outgoing {
                frame,
                receipt: None,
            })
            .is_ok()
    }

    /// Sends `frame` with a receipt header and waits for the broker's
    /// answer: Err holds the text of its ERROR, or why none came.
    pub async fn request(&self, frame: Frame, timeout: Duration) -> Result<(), String> {
        let id = format!("r-{}", self.next_id());
        let (tx, rx) = oneshot::channel();
        let frame = frame.header("receipt", &id);
        if !self
            .send(Outgoing {
                frame,
                receipt: Some((id, tx)),
            })
            .await
        {
            return Err("the connection to ActiveMQ is closed".into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the connection to ActiveMQ closed before its receipt".into()),
            Err(_) => Err("ActiveMQ sent no receipt in time".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_read_with_stomps_default_ports() {
        assert_eq!(
            parse_endpoint("stomp://127.0.0.1:61613").unwrap(),
            ("127.0.0.1".into(), 61613, false)
        );
        assert_eq!(
            parse_endpoint("stomp+ssl://b-1.mq.amazonaws.com").unwrap(),
            ("b-1.mq.amazonaws.com".into(), 61614, true)
        );
        assert!(parse_endpoint("amqp://x").is_err());
    }
}
