//! The socket's task: it reads frames and routes each MESSAGE to its
//! subscription, answers RECEIPTs and ERRORs, writes queued frames
//! together, and keeps heart-beats both ways, until the link ends.

use super::{CONNECT_TIMEOUT, Conn, Outgoing, Receipt, Routes, classify_error};
use crate::source::SourceError;
use crate::source::stomp::{Frame, Inbound};
use crate::sync::Unpoisoned;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("the broker closed the connection")]
    Closed,
    #[error("no answer in time")]
    Timeout,
    #[error("{0}")]
    Codec(String),
}

pub(super) async fn read_frame(framed: &mut Conn) -> Result<Frame, ReadError> {
    let read = async {
        loop {
            match framed.next().await {
                Some(Ok(Inbound::Frame(f))) => return Ok(f),
                Some(Ok(Inbound::HeartBeat)) => continue,
                Some(Err(e)) => return Err(ReadError::Codec(e.to_string())),
                None => return Err(ReadError::Closed),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, read)
        .await
        .map_err(|_| ReadError::Timeout)?
}

/// Has the kernel acknowledge what the broker sent us right away, instead of
/// after the delayed-ACK timer. ActiveMQ does not set TCP_NODELAY, so its
/// small RECEIPT frame otherwise waits (Nagle) for that ACK: 40 ms per
/// batch, measured with `mqtrigger bench`.
pub(super) fn ack_at_once(fd: std::os::fd::RawFd) {
    let on: libc::c_int = 1;
    // SAFETY: fd is the connection's socket, open while io_loop owns it.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

pub(super) struct IoLoop {
    /// The connected socket, framed by our STOMP codec.
    pub(super) framed: Conn,
    /// The socket's descriptor, to ask the kernel for quick ACKs.
    pub(super) fd: std::os::fd::RawFd,
    /// Which subscription each MESSAGE goes to, by its `subscription`.
    pub(super) routes: Routes,
    /// Cleared when the loop ends, so that the pool hands the link out no
    /// more.
    pub(super) open: Arc<AtomicBool>,
    /// How often we must send a heart-beat, as negotiated; None: never.
    pub(super) send_every: Option<Duration>,
    /// How often the broker promised to send; silent for twice as long,
    /// it counts as gone. None: the broker sends no heart-beats.
    pub(super) expect_within: Option<Duration>,
    /// Where the link goes, for the words of its errors.
    pub(super) what: String,
}

/// Why the link ended, told to every subscription on it.
pub(super) enum End {
    /// The source side let go: nobody to tell.
    Released,
    Lost(String),
    /// An ERROR that answers no frame of ours.
    Error(String),
}

/// Owns the socket: writes what the sources ask, routes MESSAGE frames,
/// resolves receipts and keeps the heart-beats in both directions.
pub(super) async fn io_loop(mut io: IoLoop, mut outgoing: mpsc::Receiver<Outgoing>) {
    let mut receipts: HashMap<String, Receipt> = HashMap::new();
    let mut beat = tokio::time::interval(io.send_every.unwrap_or(Duration::from_secs(3600)));
    beat.reset();
    let mut last_read = Instant::now();
    let check = Duration::from_secs(1);
    let framed = &mut io.framed;
    let end = loop {
        tokio::select! {
            inbound = framed.next() => {
                last_read = Instant::now();
                let frame = match inbound {
                    Some(Ok(Inbound::HeartBeat)) => continue,
                    Some(Ok(Inbound::Frame(f))) => f,
                    Some(Err(e)) => break End::Lost(e.to_string()),
                    None => break End::Lost("the broker closed the connection".into()),
                };
                match frame.command() {
                    "MESSAGE" => route(&io.routes, frame),
                    "RECEIPT" => {
                        if let Some(tx) = frame.get("receipt-id").and_then(|id| receipts.remove(id)) {
                            let _ = tx.send(Ok(()));
                        }
                    }
                    "ERROR" => {
                        let text = crate::source::stomp::error_message(&frame);
                        match frame.get("receipt-id").and_then(|id| receipts.remove(id)) {
                            Some(tx) => { let _ = tx.send(Err(text)); }
                            None => break End::Error(text),
                        }
                    }
                    other => tracing::debug!("ignoring a {other} frame from ActiveMQ"),
                }
            }
            request = outgoing.recv() => {
                let Some(first) = request else {
                    // Every mapping let go: say goodbye so the broker returns
                    // any unacked messages now rather than at a timeout.
                    let _ = framed.send(Frame::new("DISCONNECT")).await;
                    break End::Released;
                };
                // Whatever else is queued goes out in the same write.
                let mut wants_receipt = false;
                let mut sent = Ok(());
                for Outgoing { frame, receipt } in std::iter::once(first).chain(std::iter::from_fn(|| outgoing.try_recv().ok())) {
                    if let Some((id, tx)) = receipt {
                        receipts.insert(id, tx);
                        wants_receipt = true;
                    }
                    sent = framed.feed(frame).await;
                    if sent.is_err() {
                        break;
                    }
                }
                if let Err(e) = sent.and(framed.flush().await) {
                    break End::Lost(e.to_string());
                }
                if wants_receipt {
                    ack_at_once(io.fd);
                }
                beat.reset();
            }
            _ = beat.tick(), if io.send_every.is_some() => {
                // A heart-beat is a bare end-of-line between frames; the codec
                // only writes whole frames, and its buffer is empty here.
                let socket = framed.get_mut();
                if let Err(e) = async { socket.write_all(b"\n").await?; socket.flush().await }.await {
                    break End::Lost(e.to_string());
                }
            }
            _ = tokio::time::sleep(check), if io.expect_within.is_some() => {
                let limit = io.expect_within.unwrap_or_default() * 2;
                if last_read.elapsed() > limit {
                    break End::Lost(format!("no heart-beat from the broker for {limit:?}"));
                }
            }
        }
    };
    io.open.store(false, Ordering::Relaxed);
    let routes = std::mem::take(&mut *io.routes.locked());
    for (_, route) in routes {
        let what = format!("{} (queue '{}')", io.what, route.queue);
        let error = match &end {
            End::Released => continue,
            End::Lost(text) => {
                SourceError::Connection(format!("connection to ActiveMQ lost {what}: {text}"))
            }
            End::Error(text) => classify_error(text, &what),
        };
        let _ = route.messages.send(Err(error));
    }
}

/// Hands a MESSAGE to its subscription. One for a subscription that is
/// gone (unsubscribed while it was on the way) is dropped: it was not
/// acked, so the broker delivers it again.
pub(super) fn route(routes: &Routes, frame: Frame) {
    let mut routes = routes.locked();
    let sent = match frame.get("subscription").and_then(|id| routes.get(id)) {
        Some(route) => route.messages.send(Ok(frame)),
        None => {
            tracing::debug!(
                subscription = frame.get("subscription"),
                "a message for a closed subscription; the broker redelivers it"
            );
            return;
        }
    };
    // The source is gone without unsubscribing: stop routing to it.
    if let Err(mpsc::error::SendError(Ok(frame))) = sent
        && let Some(id) = frame.get("subscription")
    {
        routes.remove(id);
    }
}
