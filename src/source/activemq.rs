//! ActiveMQ over STOMP 1.2.
//!
//! One connection per mapping, subscribed with `ack:client-individual` (or
//! `ack:client` with cumulative ACKs when batches settle in order, see
//! `ack_order`) and the engine's prefetch; the subscription id is the mapping's UUID. A
//! background task owns the socket: it sends heart-beats while the function
//! runs (ActiveMQ drops a silent client, and with it every unacked message),
//! notices a silent broker, writes queued frames together, and matches
//! RECEIPTs to the frames that asked for them. ACKs are not waited for (a
//! refused ACK ends the connection, and the broker redelivers); NACKs and
//! DISCONNECT are. Dead letters are NACKed: ActiveMQ moves a NACKed message
//! to `ActiveMQ.DLQ` at once, so the engine's retries happen before that.

use super::ack_order::InOrderAcks;
use super::stomp::{Frame, Inbound, StompCodec};
use super::{
    DeadLetterReason, Delivery, DeliveryTag, SeenBefore, SettleError, Source, SourceError,
};
use crate::config::Secret;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::Framed;

/// What one mapping needs to consume an ActiveMQ queue.
#[derive(Debug, Clone)]
pub struct StompConfig {
    pub endpoints: Vec<String>,
    /// Extra CA certificates (PEM) for `stomp+ssl://` endpoints.
    pub ca_file: Option<std::path::PathBuf>,
    pub secret: Secret,
    pub queue: String,
    pub subscription: String,
    pub prefetch: u32,
    /// Messages to mark redelivered: ActiveMQ forgets them across its restart.
    pub seen_before: SeenBefore,
    /// The engine settles batches in the order they came (MaximumConcurrency
    /// 1): subscribe with `ack:client` and ACK cumulatively (`ack_order`).
    pub in_order: bool,
}

/// How often we offer and ask for heart-beats, in milliseconds.
const HEARTBEAT_MS: u32 = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Cumulative ACKs (`ack:client`) only up to this prefetch: with more
/// unacked messages than that, ActiveMQ 5.17 stops dispatching to a
/// `client` subscription until an ACK comes (measured, with stomp.py as
/// well as with mqtrigger: batches of 500 drained at 560 msg/s in `client`
/// mode, 4,800 in `client-individual`; 100 and 200 were as fast either
/// way). 600 is BatchSize 200 at MaximumConcurrency 1.
const MAX_CUMULATIVE_PREFETCH: u32 = 600;

type Receipt = oneshot::Sender<Result<(), String>>;

/// The socket, plain or TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}
type Conn = Framed<Box<dyn Io>, StompCodec>;

/// Opens a TLS session that verifies the broker's certificate against the
/// system's roots and `ca_file`. There is no fallback to plain text.
async fn tls(
    tcp: TcpStream,
    host: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<Box<dyn Io>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("ca_file {} is not PEM: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("`{host}` is not a valid TLS server name: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            format!(
                "TLS with {host} failed: {e}; check the endpoint's host name, and the broker's `ca_file` for a private CA"
            )
        })?;
    Ok(Box::new(stream))
}

/// Asks the I/O task to send a frame, optionally waiting for its RECEIPT.
struct Outgoing {
    frame: Frame,
    receipt: Option<(String, Receipt)>,
}

pub struct ActiveMqSource {
    outgoing: mpsc::Sender<Outgoing>,
    messages: mpsc::Receiver<Result<Frame, SourceError>>,
    queue: String,
    endpoint: String,
    next_receipt: u64,
    task: tokio::task::JoinHandle<()>,
    seen_before: SeenBefore,
    /// With `ack:client`: the delivery order, for cumulative ACKs.
    in_order: Option<InOrderAcks>,
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

/// Reads ActiveMQ's ERROR frames: a refused login and a refused read have
/// their own stop codes.
fn classify_error(text: &str, what: &str) -> SourceError {
    if text.contains("password is invalid") || text.contains("User name") {
        SourceError::Authentication(format!("ActiveMQ refused the login {what}: {text}"))
    } else if text.contains("not authorized") {
        SourceError::Authorization(format!("ActiveMQ denied access {what}: {text}"))
    } else {
        SourceError::Connection(format!("ActiveMQ sent an error {what}: {text}"))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl ActiveMqSource {
    /// Connects to the first endpoint that answers and subscribes.
    pub async fn connect(config: StompConfig) -> Result<ActiveMqSource, SourceError> {
        super::first_answering(&config.endpoints, |e| Self::connect_one(e, &config)).await
    }

    async fn connect_one(
        endpoint: &str,
        config: &StompConfig,
    ) -> Result<ActiveMqSource, SourceError> {
        let (host, port, tls) = parse_endpoint(endpoint).map_err(SourceError::Config)?;
        let what = format!(
            "for user '{}' at {host}:{port} (queue '{}')",
            config.secret.username, config.queue
        );
        let stream =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
                .await
                .map_err(|_| {
                    SourceError::Connection(format!(
                        "cannot reach ActiveMQ {what}: connect timed out"
                    ))
                })?
                .map_err(|e| {
                    SourceError::Connection(format!("cannot reach ActiveMQ {what}: {e}"))
                })?;
        let _ = stream.set_nodelay(true);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let stream: Box<dyn Io> = if tls {
            // A certificate problem is the user's to fix, not a reason to retry.
            self::tls(stream, &host, config.ca_file.as_deref())
                .await
                .map_err(|e| SourceError::Config(format!("{e} ({what})")))?
        } else {
            Box::new(stream)
        };
        let mut framed: Conn = Framed::new(stream, StompCodec::default());
        for (field, value) in [
            ("username", &config.secret.username),
            ("password", &config.secret.password),
        ] {
            if value.contains(['\r', '\n']) {
                return Err(SourceError::Config(format!(
                    "the secret's {field} holds a line break, which STOMP cannot send ({what}); remove it from the secret"
                )));
            }
        }
        let connect = Frame::new("CONNECT")
            .header("accept-version", "1.2")
            .header("host", &host)
            .header("login", &config.secret.username)
            .header("passcode", &config.secret.password)
            .header("heart-beat", &format!("{HEARTBEAT_MS},{HEARTBEAT_MS}"));
        let lost = |e: &dyn std::fmt::Display| {
            SourceError::Connection(format!("connection to ActiveMQ lost {what}: {e}"))
        };
        framed.send(connect).await.map_err(|e| lost(&e))?;
        let connected = read_frame(&mut framed).await.map_err(|e| lost(&e))?;
        match connected.command() {
            "CONNECTED" => {}
            "ERROR" => {
                return Err(classify_error(
                    &super::stomp::error_message(&connected),
                    &what,
                ));
            }
            other => return Err(lost(&format!("expected CONNECTED, got {other}"))),
        }
        let (send_every, expect_within) = super::stomp::negotiate_heartbeat(
            (HEARTBEAT_MS, HEARTBEAT_MS),
            connected.get("heart-beat"),
        );
        let cumulative = config.in_order && config.prefetch <= MAX_CUMULATIVE_PREFETCH;
        let subscribe = Frame::new("SUBSCRIBE")
            .header("id", &config.subscription)
            .header("destination", &format!("/queue/{}", config.queue))
            .header(
                "ack",
                if cumulative {
                    "client"
                } else {
                    "client-individual"
                },
            )
            .header("activemq.prefetchSize", &config.prefetch.max(1).to_string())
            .header("receipt", "subscribed");
        framed.send(subscribe).await.map_err(|e| lost(&e))?;
        let answer = read_frame(&mut framed).await.map_err(|e| lost(&e))?;
        match answer.command() {
            "RECEIPT" => {}
            "ERROR" => return Err(classify_error(&super::stomp::error_message(&answer), &what)),
            other => return Err(lost(&format!("expected RECEIPT, got {other}"))),
        }
        let (outgoing, outgoing_rx) = mpsc::channel(64);
        let (messages_tx, messages) = mpsc::channel(config.prefetch.clamp(1, 20_000) as usize * 2);
        let task = tokio::spawn(io_loop(
            framed,
            fd,
            outgoing_rx,
            messages_tx,
            send_every,
            expect_within,
            what,
        ));
        tracing::info!(queue = %config.queue, endpoint = %format!("{host}:{port}"), "consuming");
        Ok(ActiveMqSource {
            outgoing,
            messages,
            queue: config.queue.clone(),
            endpoint: format!("{host}:{port}"),
            next_receipt: 0,
            task,
            seen_before: config.seen_before.clone(),
            in_order: cumulative.then(InOrderAcks::default),
        })
    }

    fn delivery(&mut self, frame: Frame) -> Delivery {
        let ack = frame
            .get("ack")
            .or(frame.get("message-id"))
            .unwrap_or_default()
            .to_owned();
        if let Some(order) = &mut self.in_order {
            order.delivered(&ack);
        }
        let received = now_ms();
        let mut headers = std::borrow::Cow::Borrowed(&frame.headers);
        let mut redelivered = frame.get("redelivered") == Some("true");
        if !redelivered
            && let Some(id) = frame.get("message-id")
            && self.seen_before.take(id)
        {
            // The first `redelivered` header counts (STOMP 1.2).
            headers
                .to_mut()
                .insert(0, ("redelivered".into(), "true".into()));
            redelivered = true;
        }
        let record = crate::event::mq::record(&headers, &frame.body, received);
        let expires_at = frame
            .get("expires")
            .and_then(|e| e.parse::<u64>().ok())
            .filter(|e| *e > 0)
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        Delivery {
            tag: DeliveryTag::Stomp(ack),
            record,
            redelivered,
            expires_at,
            message_id: frame.get("message-id").map(str::to_owned),
            body: frame.body,
        }
    }

    /// Sends ACK or NACK frames. With `confirm`, the last one asks for a
    /// RECEIPT, which ActiveMQ sends after it has handled all of them.
    async fn settle(
        &mut self,
        command: &str,
        tags: Vec<String>,
        confirm: bool,
    ) -> Result<(), SettleError> {
        let count = tags.len();
        let fail = |reason: String| SettleError { count, reason };
        let mut rx = None;
        for (i, id) in tags.iter().enumerate() {
            let mut frame = Frame::new(command).header("id", id);
            let mut receipt = None;
            if confirm && i + 1 == count {
                self.next_receipt += 1;
                let receipt_id = format!("{}-{}", command.to_lowercase(), self.next_receipt);
                frame = frame.header("receipt", &receipt_id);
                let (tx, r) = oneshot::channel();
                receipt = Some((receipt_id, tx));
                rx = Some(r);
            }
            self.outgoing
                .send(Outgoing { frame, receipt })
                .await
                .map_err(|_| fail("the connection to ActiveMQ is closed".into()))?;
        }
        let Some(rx) = rx else { return Ok(()) };
        match tokio::time::timeout(RECEIPT_TIMEOUT, rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(fail(e)),
            Ok(Err(_)) => Err(fail(
                "the connection to ActiveMQ closed before its receipt".into(),
            )),
            Err(_) => Err(fail("ActiveMQ sent no receipt in time".into())),
        }
    }
}

/// Has the kernel acknowledge what the broker sent us right away, instead of
/// after the delayed-ACK timer. ActiveMQ does not set TCP_NODELAY, so its
/// small RECEIPT frame otherwise waits (Nagle) for that ACK: 40 ms per
/// batch, measured with `mqtrigger bench`.
fn ack_at_once(fd: std::os::fd::RawFd) {
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

async fn read_frame(framed: &mut Conn) -> Result<Frame, String> {
    let read = async {
        loop {
            match framed.next().await {
                Some(Ok(Inbound::Frame(f))) => return Ok(f),
                Some(Ok(Inbound::HeartBeat)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the broker closed the connection".into()),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, read)
        .await
        .map_err(|_| "no answer in time".to_owned())?
}

/// Owns the socket: writes what the source asks, hands MESSAGE frames over,
/// resolves receipts and keeps the heart-beats in both directions.
async fn io_loop(
    mut framed: Conn,
    fd: std::os::fd::RawFd,
    mut outgoing: mpsc::Receiver<Outgoing>,
    messages: mpsc::Sender<Result<Frame, SourceError>>,
    send_every: Option<Duration>,
    expect_within: Option<Duration>,
    what: String,
) {
    let mut receipts: HashMap<String, Receipt> = HashMap::new();
    let mut beat = tokio::time::interval(send_every.unwrap_or(Duration::from_secs(3600)));
    beat.reset();
    let mut last_read = Instant::now();
    let check = Duration::from_secs(1);
    let fatal = |text: String| {
        Err(SourceError::Connection(format!(
            "connection to ActiveMQ lost {what}: {text}"
        )))
    };
    let result: Result<(), SourceError> = loop {
        tokio::select! {
            inbound = framed.next() => {
                last_read = Instant::now();
                let frame = match inbound {
                    Some(Ok(Inbound::HeartBeat)) => continue,
                    Some(Ok(Inbound::Frame(f))) => f,
                    Some(Err(e)) => break fatal(e.to_string()),
                    None => break fatal("the broker closed the connection".into()),
                };
                match frame.command() {
                    "MESSAGE" => {
                        if messages.send(Ok(frame)).await.is_err() {
                            break Ok(());
                        }
                    }
                    "RECEIPT" => {
                        if let Some(tx) = frame.get("receipt-id").and_then(|id| receipts.remove(id)) {
                            let _ = tx.send(Ok(()));
                        }
                    }
                    "ERROR" => {
                        let text = super::stomp::error_message(&frame);
                        match frame.get("receipt-id").and_then(|id| receipts.remove(id)) {
                            Some(tx) => { let _ = tx.send(Err(text)); }
                            None => break Err(classify_error(&text, &what)),
                        }
                    }
                    other => tracing::debug!("ignoring a {other} frame from ActiveMQ"),
                }
            }
            request = outgoing.recv() => {
                let Some(first) = request else {
                    // The source is gone: say goodbye so the broker returns
                    // the unacked messages now rather than at a timeout.
                    let _ = framed.send(Frame::new("DISCONNECT")).await;
                    break Ok(());
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
                    break fatal(e.to_string());
                }
                if wants_receipt {
                    ack_at_once(fd);
                }
                beat.reset();
            }
            _ = beat.tick(), if send_every.is_some() => {
                // A heart-beat is a bare end-of-line between frames; the codec
                // only writes whole frames, and its buffer is empty here.
                let io = framed.get_mut();
                if let Err(e) = async { io.write_all(b"\n").await?; io.flush().await }.await {
                    break fatal(e.to_string());
                }
            }
            _ = tokio::time::sleep(check), if expect_within.is_some() => {
                let limit = expect_within.unwrap_or_default() * 2;
                if last_read.elapsed() > limit {
                    break fatal(format!("no heart-beat from the broker for {limit:?}"));
                }
            }
        }
    };
    if let Err(e) = result {
        let _ = messages.send(Err(e)).await;
    }
}

impl Source for ActiveMqSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, SourceError>> {
        Box::pin(async move {
            match self.messages.recv().await {
                Some(Ok(frame)) => Ok(self.delivery(frame)),
                Some(Err(e)) => Err(e),
                None => Err(SourceError::Connection(format!(
                    "the connection to ActiveMQ at {} closed (queue '{}')",
                    self.endpoint, self.queue
                ))),
            }
        })
    }

    fn ack<'a>(&'a mut self, tags: &'a [DeliveryTag]) -> BoxFuture<'a, Result<(), SettleError>> {
        let mut ids = stomp_ids(tags.iter());
        if let Some(order) = &mut self.in_order {
            // One cumulative ACK, once everything before is settled.
            ids = order.settle(&ids, false).into_iter().collect();
        }
        // Not waited for: an ACK the broker refuses ends the connection
        // with an ERROR, and it delivers those messages again.
        Box::pin(self.settle("ACK", ids, false))
    }

    fn dead_letter<'a>(
        &'a mut self,
        deliveries: &'a [Delivery],
        _reason: &'a DeadLetterReason,
    ) -> BoxFuture<'a, Result<(), super::DeadLetterError>> {
        let ids = stomp_ids(deliveries.iter().map(|d| &d.tag));
        // ActiveMQ moves a NACKed message itself: only a lost connection
        // fails it. A NACK names one message, in either ack mode.
        Box::pin(async move {
            self.settle("NACK", ids.clone(), true).await?;
            let cumulative = self.in_order.as_mut().and_then(|o| o.settle(&ids, true));
            if let Some(id) = cumulative {
                self.settle("ACK", vec![id], false).await?;
            }
            Ok(())
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.next_receipt += 1;
            let (tx, rx) = oneshot::channel();
            let frame = Frame::new("DISCONNECT").header("receipt", "disconnect");
            let sent = self
                .outgoing
                .send(Outgoing {
                    frame,
                    receipt: Some(("disconnect".into(), tx)),
                })
                .await;
            if sent.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
            }
            self.task.abort();
        })
    }

    fn dead_letter_destination(&self) -> String {
        "ActiveMQ.DLQ".into()
    }
}

fn stomp_ids<'a>(tags: impl Iterator<Item = &'a DeliveryTag>) -> Vec<String> {
    tags.filter_map(|t| match t {
        DeliveryTag::Stomp(id) => Some(id.clone()),
        DeliveryTag::Amqp(_) => None,
    })
    .collect()
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

    #[test]
    fn activemq_errors_map_to_stop_codes() {
        let authn = classify_error("User name [app] or password is invalid.", "");
        assert!(matches!(authn, SourceError::Authentication(_)));
        let authz = classify_error("User noread is not authorized to read from: queue://q", "");
        assert!(matches!(authz, SourceError::Authorization(_)));
    }
}
