//! A STOMP 1.2 frame codec for tokio-util's `Framed`.
//!
//! Frames are `COMMAND EOL headers EOL EOL body NUL`. Header names and
//! values are escaped (`\r \n \c \\`) except in CONNECT and CONNECTED frames.
//! A body is `content-length` bytes when the header is present (it may then
//! hold NULs), else it runs to the first NUL. A bare EOL between frames is a
//! heart-beat. Limits keep a hostile peer from making the buffer grow without
//! bound.

use bytes::{Buf, BufMut, BytesMut};
use std::time::Duration;
use tokio_util::codec::{Decoder, Encoder};

mod frame;

pub use frame::Frame;
use frame::parse_head;

/// What arrives from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Frame(Frame),
    HeartBeat,
}

#[derive(Debug, thiserror::Error)]
pub enum StompError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("STOMP protocol error: {0}")]
    Protocol(String),
    #[error("STOMP frame larger than {limit} bytes")]
    FrameTooLarge { limit: usize },
}

/// The codec, with its limits.
#[derive(Debug, Clone)]
pub struct StompCodec {
    pub max_frame_bytes: usize,
    pub max_headers: usize,
    /// Where the search for the end of the headers resumes, so a large frame
    /// arriving in pieces is scanned once, not once per piece.
    scanned: usize,
    /// The same for the NUL that ends a body without content-length.
    body_scanned: usize,
}

impl Default for StompCodec {
    fn default() -> Self {
        // A Lambda event is at most 6 MB; a frame of several times that is not a message we could send anyway.
        StompCodec {
            max_frame_bytes: 16 * 1024 * 1024,
            max_headers: 1000,
            scanned: 0,
            body_scanned: 0,
        }
    }
}

fn protocol(text: impl Into<String>) -> StompError {
    StompError::Protocol(text.into())
}

fn escape(text: &str, escaped: bool, out: &mut BytesMut) {
    if !escaped {
        out.put_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        match c {
            '\r' => out.put_slice(b"\\r"),
            '\n' => out.put_slice(b"\\n"),
            ':' => out.put_slice(b"\\c"),
            '\\' => out.put_slice(b"\\\\"),
            c => {
                let mut buf = [0u8; 4];
                out.put_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

impl Decoder for StompCodec {
    type Item = Inbound;
    type Error = StompError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, StompError> {
        // Heart-beats, and the EOLs ActiveMQ puts after each frame's NUL.
        if src.first() == Some(&b'\n') {
            src.advance(1);
            return Ok(Some(Inbound::HeartBeat));
        }
        if src.starts_with(b"\r\n") {
            src.advance(2);
            return Ok(Some(Inbound::HeartBeat));
        }
        if src.len() == 1 && src[0] == b'\r' {
            return Ok(None);
        }
        // The head: command and headers, up to an empty line.
        let from = self.scanned.saturating_sub(2);
        let Some((head_len, body_start)) =
            find_head_end(&src[from..]).map(|(h, b)| (h + from, b + from))
        else {
            self.scanned = src.len();
            if src.len() > self.max_frame_bytes {
                return Err(StompError::FrameTooLarge {
                    limit: self.max_frame_bytes,
                });
            }
            return Ok(None);
        };
        self.scanned = head_len;
        let mut frame = parse_head(&src[..head_len], self.max_headers)?;
        let length = frame
            .get("content-length")
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| protocol(format!("bad content-length {v:?}")))
            })
            .transpose()?;
        let body_end = match length {
            Some(n) => {
                // A content-length near usize::MAX must not wrap around.
                let frame_end = body_start.checked_add(n).and_then(|end| end.checked_add(1));
                if frame_end.is_none_or(|end| end > self.max_frame_bytes) {
                    return Err(StompError::FrameTooLarge {
                        limit: self.max_frame_bytes,
                    });
                }
                if src.len() < body_start + n + 1 {
                    src.reserve(body_start + n + 1 - src.len());
                    return Ok(None);
                }
                if src[body_start + n] != 0 {
                    return Err(protocol(
                        "the body does not end with NUL after content-length bytes",
                    ));
                }
                body_start + n
            }
            None => match src[body_start.max(self.body_scanned)..]
                .iter()
                .position(|b| *b == 0)
            {
                Some(p) => body_start.max(self.body_scanned) + p,
                None => {
                    self.body_scanned = src.len();
                    if src.len() > self.max_frame_bytes {
                        return Err(StompError::FrameTooLarge {
                            limit: self.max_frame_bytes,
                        });
                    }
                    return Ok(None);
                }
            },
        };
        let mut frame_bytes = src.split_to(body_end + 1);
        self.scanned = 0;
        self.body_scanned = 0;
        frame_bytes.truncate(body_end);
        frame.body = frame_bytes.split_off(body_start).freeze();
        Ok(Some(Inbound::Frame(frame)))
    }
}

/// Finds the blank line ending a frame's head: (head length, body start).
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|b| *b == b'\n') {
        let nl = i + p;
        let rest = &buf[nl + 1..];
        if rest.first() == Some(&b'\n') {
            return Some((nl, nl + 2));
        }
        if rest.starts_with(b"\r\n") {
            return Some((nl, nl + 3));
        }
        i = nl + 1;
    }
    None
}

impl Encoder<Frame> for StompCodec {
    type Error = StompError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), StompError> {
        let escaped = frame.escaped();
        // CONNECT and CONNECTED headers are sent as they are: a line break
        // would end the header early (or add one), a colon would split it.
        if !escaped
            && let Some((name, _)) = frame
                .headers()
                .find(|(k, v)| k.contains([':', '\r', '\n']) || v.contains(['\r', '\n']))
        {
            let name = name.escape_debug();
            return Err(protocol(format!(
                "the {} header `{name}` holds a line break or a colon, which STOMP cannot send in {}",
                frame.command(),
                frame.command()
            )));
        }
        dst.reserve(frame.wire_len_hint());
        dst.put_slice(frame.command().as_bytes());
        dst.put_u8(b'\n');
        for (k, v) in frame.headers() {
            escape(k, escaped, dst);
            dst.put_u8(b':');
            escape(v, escaped, dst);
            dst.put_u8(b'\n');
        }
        // A body with a NUL in it must say how long it is.
        if frame.body.contains(&0) && frame.get("content-length").is_none() {
            dst.put_slice(format!("content-length:{}\n", frame.body.len()).as_bytes());
        }
        dst.put_u8(b'\n');
        dst.put_slice(&frame.body);
        dst.put_u8(0);
        Ok(())
    }
}

/// One line for a person from an ERROR frame.
pub fn error_message(frame: &Frame) -> String {
    let header = frame.get("message").unwrap_or_default().trim();
    let body = String::from_utf8_lossy(&frame.body);
    let body = body.trim();
    let text = if body.is_empty()
        || body.contains(header) && !header.is_empty() && body.lines().count() > 3
    {
        header.to_owned()
    } else if header.is_empty() || body.starts_with(header) {
        body.lines().next().unwrap_or_default().to_owned()
    } else {
        header.to_owned()
    };
    let text = if text.len() > 300 {
        format!("{}…", &text[..text.floor_char_boundary(300)])
    } else {
        text
    };
    if text.is_empty() {
        "the broker sent an ERROR frame without a message".into()
    } else {
        text
    }
}

/// STOMP heart-beat negotiation: (how often we must send, how soon we must hear).
pub fn negotiate_heartbeat(
    client: (u32, u32),
    server: Option<&str>,
) -> (Option<Duration>, Option<Duration>) {
    let (sx, sy) = server
        .and_then(|h| h.split_once(','))
        .map(|(x, y)| {
            (
                x.trim().parse().unwrap_or(0u32),
                y.trim().parse().unwrap_or(0u32),
            )
        })
        .unwrap_or((0, 0));
    let (cx, cy) = client;
    let send = (cx != 0 && sy != 0).then(|| Duration::from_millis(cx.max(sy).into()));
    let expect = (cy != 0 && sx != 0).then(|| Duration::from_millis(cy.max(sx).into()));
    (send, expect)
}

#[cfg(test)]
mod tests;
