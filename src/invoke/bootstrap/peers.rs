//! Who may speak to an execution environment's Runtime API.
//!
//! On Lambda the Runtime API is private to its sandbox. Here every
//! environment listens on loopback, where any local process can connect:
//! another function's runtime could take this environment's invocation and
//! answer it, and its messages would be acked unseen. So each connection is
//! checked once, when it is accepted: the socket it comes from must be held
//! by a process of the environment's session. The environment's process is
//! started as the leader of a session of its own, and only its descendants
//! can be in that session (the kernel moves no process into another
//! session), so no outside process can pass the check, whatever it knows.
//!
//! The peer socket is found in `/proc/net/tcp` (or `tcp6`) by its two
//! addresses, which gives its inode; the session's processes are then
//! searched for a descriptor of that socket. A refused connection is
//! answered 403 in the Runtime API's error shape, and closed.

use crate::invoke::process_tree::{Pid, session_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The processes that may connect; none until they are known (the
/// environment's process is started after its API listens).
#[derive(Debug, Clone, Default)]
pub struct Admission {
    admitted: Arc<OnceLock<Admitted>>,
    /// Set once the first refusal was logged: a runtime that keeps trying
    /// is said once at warn, then at debug.
    warned: Arc<OnceLock<()>>,
}

impl Admission {
    /// Admits the processes of the session `pid` belongs to. Only the first
    /// call counts: an environment never changes its session.
    ///
    /// An environment's process leads a session of its own, so its session
    /// is always visible. A process whose session leader lives outside this
    /// PID namespace (getsid answers 0, as for a process a container's
    /// supervisor started without a session) is admitted alone: its
    /// session would name every such process on the machine.
    pub fn admit_session_of(&self, pid: u32) {
        let Ok(pid) = Pid::try_from(pid) else {
            return;
        };
        let admitted = session_of(pid).map_or(Admitted::Process(pid), Admitted::Session);
        let _ = self.admitted.set(admitted);
    }

    /// Whether the connection from `peer` to `local` comes from a process
    /// of the admitted session. Reads /proc: call it off the async threads.
    fn admits(&self, peer: SocketAddr, local: SocketAddr) -> bool {
        let Some(&admitted) = self.admitted.get() else {
            return false;
        };
        match socket_inode(peer, local) {
            Some(inode) => admitted_hold(admitted, inode),
            None => false,
        }
    }
}

/// Whose descriptors count as the environment's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admitted {
    /// Every process of this session.
    Session(Pid),
    /// This one process, whose session is not visible here.
    Process(Pid),
}

impl Admitted {
    fn includes(self, pid: Pid) -> bool {
        match self {
            Admitted::Session(session) => session_of(pid) == Some(session),
            Admitted::Process(only) => pid == only,
        }
    }
}

/// The inode of the socket bound to `peer` and connected to `local`.
fn socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines()
                .skip(1)
                .find_map(|row| row_inode(row, peer, local))
        })
}

/// One row of /proc/net/tcp: `sl local rem st tx:rx tr:when retrnsmt uid
/// timeout inode …`; its inode if its local end is `peer` and its remote
/// end `local`.
fn row_inode(row: &str, peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let fields: Vec<&str> = row.split_whitespace().collect();
    let (from, to, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
    (parse_address(from)? == peer && parse_address(to)? == local)
        .then(|| inode.parse().ok())
        .flatten()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6), as the kernel
/// prints them: each 32-bit word of the address in the machine's byte
/// order. An IPv4 address mapped into IPv6 reads as the IPv4 address, which
/// is how the listener sees such a peer.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| {
        let hex = address.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether an admitted process holds a descriptor of socket `inode`.
fn admitted_hold(admitted: Admitted, inode: u64) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let target = format!("socket:[{inode}]");
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<Pid>().ok())
        .filter(|&pid| admitted.includes(pid))
        .any(|pid| {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == &*target)
            })
        })
}

/// A listener that yields only the connections [`Admission`] admits.
pub struct Guarded {
    listener: TcpListener,
    admission: Admission,
    /// The function, for the refusal's words.
    function: Arc<str>,
}

impl Guarded {
    pub fn new(listener: TcpListener, admission: Admission, function: &str) -> Guarded {
        Guarded {
            listener,
            admission,
            function: function.into(),
        }
    }
}

impl axum::serve::Listener for Guarded {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // As axum's own listener does: out of descriptors or
                    // memory passes; a connection that failed is the peer's.
                    tracing::debug!("the Runtime API could not accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            let admission = self.admission.clone();
            let admitted = tokio::task::spawn_blocking(move || admission.admits(peer, local)).await;
            if admitted.unwrap_or(false) {
                return (stream, peer);
            }
            let first = self.admission.warned.set(()).is_ok();
            if first {
                tracing::warn!(function = %self.function, %peer, "refused a Runtime API connection from a process outside the function's execution environment");
            } else {
                tracing::debug!(function = %self.function, %peer, "refused a Runtime API connection");
            }
            tokio::spawn(refuse(stream, self.function.clone()));
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Answers a refused connection with 403 and closes it. The request is
/// read first (a little of it, briefly), so the client sees the answer
/// rather than a reset.
async fn refuse(mut stream: TcpStream, function: Arc<str>) {
    let mut request = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut request)).await;
    let body = serde_json::json!({
        "errorType": "AccessDenied",
        "errorMessage": format!(
            "this Runtime API serves only the processes of function {function}'s execution environment; the connection came from a process outside it"
        ),
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_addresses_are_read_in_the_machines_byte_order() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let word = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(parse_address(&format!("{word:08X}:1F90")), Some(v4));
        let mapped = format!(
            "0000000000000000{:08X}{word:08X}:1F90",
            u32::from_ne_bytes([0, 0, 0xff, 0xff])
        );
        assert_eq!(parse_address(&mapped), Some(v4));
        assert_eq!(parse_address("zz:1"), None);
    }

    #[tokio::test]
    async fn this_process_is_admitted_once_its_session_is_and_not_before() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let client = TcpStream::connect(local).await.unwrap();
        let peer = client.local_addr().unwrap();
        let admission = Admission::default();
        let check = |a: Admission| tokio::task::spawn_blocking(move || a.admits(peer, local));
        assert!(
            !check(admission.clone()).await.unwrap(),
            "no session admitted yet"
        );
        admission.admit_session_of(std::process::id());
        assert!(check(admission.clone()).await.unwrap(), "our own socket");
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a = admission.clone();
        let unknown = tokio::task::spawn_blocking(move || a.admits(other, local));
        assert!(!unknown.await.unwrap(), "a socket nobody holds");
    }

    #[test]
    fn a_process_admitted_alone_admits_no_other() {
        let me = Pid::try_from(std::process::id()).unwrap();
        let alone = Admitted::Process(me);
        assert!(alone.includes(me));
        assert!(!alone.includes(1), "not even the machine's first process");
    }
}
