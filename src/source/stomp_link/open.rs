//! The one STOMP handshake: a socket to the broker (TLS for
//! `stomp+ssl://`), CONNECT as a user, and the broker's CONNECTED or ERROR
//! read as an answer. The engine's shared links (`StompLink::connect`),
//! `mqtrigger publish`, the bench's plain consumer and the tests all open
//! their connections here, so a refused login or a broker at its connection
//! limit reads the same everywhere.

use super::io_loop::{ReadError, read_frame};
use crate::config::Secret;
use crate::source::SourceError;
use crate::source::stomp::{Frame, StompCodec};
use futures::SinkExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A byte stream a STOMP connection runs over: TCP, or TLS over TCP.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A STOMP connection's frames, both ways.
pub type Conn = Framed<Box<dyn Io>, StompCodec>;

/// A connection the broker accepted.
pub struct Opened {
    pub framed: Conn,
    /// The TCP socket under it, to ask the kernel for prompt ACKs.
    pub fd: std::os::fd::RawFd,
    /// The broker's CONNECTED frame (its heart-beat among its headers).
    pub connected: Frame,
    pub host: String,
    pub port: u16,
}

/// Connects to `endpoint` (`stomp://host:port` or `stomp+ssl://…`) and logs
/// in as the secret's user, offering heart-beats every `heart_beat_ms` both
/// ways when given (a connection that does not keep them up must not ask
/// for them). `what` names the user, broker and queue in the errors.
pub async fn open(
    endpoint: &str,
    secret: &Secret,
    ca_file: Option<&std::path::Path>,
    what: &str,
    heart_beat_ms: Option<u32>,
) -> Result<Opened, SourceError> {
    let (host, port, tls) = super::parse_endpoint(endpoint).map_err(SourceError::Config)?;
    for (field, value) in [
        ("username", &secret.username),
        ("password", &secret.password),
    ] {
        if value.contains(['\r', '\n']) {
            return Err(SourceError::Config(format!(
                "the secret's {field} holds a line break, which STOMP cannot send ({what}); remove it from the secret"
            )));
        }
    }
    let stream = tokio::time::timeout(
        super::CONNECT_TIMEOUT,
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        SourceError::Connection(format!("cannot reach ActiveMQ {what}: connect timed out"))
    })?
    .map_err(|e| SourceError::Connection(format!("cannot reach ActiveMQ {what}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let stream: Box<dyn Io> = if tls {
        // A certificate problem is the user's to fix, not a reason to retry.
        self::tls(stream, &host, ca_file)
            .await
            .map_err(|e| SourceError::Config(format!("{e} ({what})")))?
    } else {
        Box::new(stream)
    };
    let mut framed: Conn = Framed::new(stream, StompCodec::default());
    let mut connect = Frame::new("CONNECT")
        .header("accept-version", "1.2")
        .header("host", &host)
        .header("login", &secret.username)
        .header("passcode", &secret.password);
    if let Some(ms) = heart_beat_ms {
        connect = connect.header("heart-beat", &format!("{ms},{ms}"));
    }
    let lost = |e: &dyn std::fmt::Display| {
        SourceError::Connection(format!("connection to ActiveMQ lost {what}: {e}"))
    };
    framed.send(connect).await.map_err(|e| lost(&e))?;
    let connected = match read_frame(&mut framed).await {
        Ok(frame) => frame,
        // ActiveMQ over its `maximumConnections` accepts the socket and
        // closes it at once, without a word.
        Err(ReadError::Closed) => {
            return Err(SourceError::Connection(format!(
                "ActiveMQ closed the connection {what} before answering CONNECT; a broker at its connection limit does that: raise maximumConnections on its transportConnector (Amazon MQ: the broker's connection quota), or have fewer clients connect"
            )));
        }
        Err(e) => return Err(lost(&e)),
    };
    match connected.command() {
        "CONNECTED" => Ok(Opened {
            framed,
            fd,
            connected,
            host,
            port,
        }),
        "ERROR" => Err(super::classify_error(
            &crate::source::stomp::error_message(&connected),
            what,
        )),
        other => Err(lost(&format!("expected CONNECTED, got {other}"))),
    }
}

/// `stomp://user:password@host:port` (the user part percent-encoded, as in
/// any URL) → the endpoint without the user, and the user as a secret.
pub fn split_url(url: &str) -> Result<(String, Secret), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let secret = Secret {
        username: decode(parsed.username()),
        password: decode(parsed.password().unwrap_or_default()),
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("`{url}` names no host"))?;
    let endpoint = match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    };
    Ok((endpoint, secret))
}

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
