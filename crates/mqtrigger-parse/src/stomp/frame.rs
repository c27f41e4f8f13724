//! A STOMP frame: its command, headers and body, and how its head is read
//! from the wire.

use super::{StompError, protocol};
use bytes::Bytes;

/// One STOMP frame. Headers keep their order; when a name repeats, the first
/// one counts (STOMP 1.2).
///
/// The command and every header name and value live in one string, and the
/// frame keeps where each starts and ends. A decoded frame therefore costs
/// two allocations (the text and the spans) however many headers it has;
/// with a `String` per name and per value, malloc and free were a fifth of
/// the engine's CPU on ActiveMQ.
#[derive(Clone, Default)]
pub struct Frame {
    /// The command, then the header names and values (unescaped).
    text: String,
    /// Where the command ends in `text`; it starts at 0.
    command_end: u32,
    /// Where each header's name and value are in `text`, in frame order.
    headers: Vec<HeaderSpan>,
    pub body: Bytes,
}

/// One header's place in its frame's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeaderSpan {
    name: (u32, u32),
    value: (u32, u32),
}

impl Frame {
    pub fn new(command: &str) -> Frame {
        Frame {
            text: command.to_owned(),
            command_end: offset(command.len()),
            ..Frame::default()
        }
    }

    /// The frame with one more header, after the others.
    pub fn header(mut self, name: &str, value: &str) -> Frame {
        self.push_header(name, value);
        self
    }

    /// Adds a header after the others.
    pub fn push_header(&mut self, name: &str, value: &str) {
        let name = self.push_text(name);
        let value = self.push_text(value);
        self.headers.push(HeaderSpan { name, value });
    }

    /// Drops every header of this name.
    pub fn remove_header(&mut self, name: &str) {
        let text = &self.text;
        self.headers.retain(|h| slice(text, h.name) != name);
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Frame {
        self.body = body.into();
        self
    }

    pub fn command(&self) -> &str {
        &self.text[..self.command_end as usize]
    }

    /// The first header of this name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Every header as (name, value), in frame order, repeats included.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        self.headers
            .iter()
            .map(|h| (slice(&self.text, h.name), slice(&self.text, h.value)))
    }

    /// CONNECT and CONNECTED frames are exempt from header escaping.
    pub(super) fn escaped(&self) -> bool {
        !unescaped_command(self.command())
    }

    /// About how many bytes the frame takes on the wire, for reserving a
    /// buffer: its text, a colon and a line end per header, and the body.
    pub(super) fn wire_len_hint(&self) -> usize {
        self.text.len() + 2 * self.headers.len() + self.body.len() + 3
    }

    fn push_text(&mut self, text: &str) -> (u32, u32) {
        let start = offset(self.text.len());
        self.text.push_str(text);
        (start, offset(self.text.len()))
    }
}

/// Two frames are equal when they say the same: where their text lies, and
/// what a removed header left behind in it, does not count.
impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.command() == other.command()
            && self.headers().eq(other.headers())
            && self.body == other.body
    }
}

impl Eq for Frame {}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("command", &self.command())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("body", &self.body)
            .finish()
    }
}

/// CONNECT and CONNECTED are the frames whose headers are not escaped.
fn unescaped_command(command: &str) -> bool {
    matches!(command, "CONNECT" | "CONNECTED")
}

fn slice(text: &str, (start, end): (u32, u32)) -> &str {
    &text[start as usize..end as usize]
}

/// A place in a frame's text. The decoder refuses frames over
/// `max_frame_bytes`, and a frame built here holds a few short headers, so a
/// text never reaches 4 GiB.
fn offset(at: usize) -> u32 {
    u32::try_from(at).expect("a STOMP frame's head is under 4 GiB")
}

/// Reads a frame's command and headers from its head, the bytes before the
/// blank line. The body is left empty.
pub(super) fn parse_head(head: &[u8], max_headers: usize) -> Result<Frame, StompError> {
    let mut lines = head.split(|b| *b == b'\n').map(trim_cr);
    let command = std::str::from_utf8(lines.next().unwrap_or_default())
        .map_err(|_| protocol("the command is not UTF-8"))?;
    if command.is_empty() || !command.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(protocol(format!("bad command line {command:?}")));
    }
    let escaped = !unescaped_command(command);
    let lines_after_command = head.iter().filter(|b| **b == b'\n').count();
    let mut frame = Frame {
        text: String::with_capacity(head.len()),
        command_end: offset(command.len()),
        headers: Vec::with_capacity(lines_after_command.min(max_headers)),
        body: Bytes::new(),
    };
    frame.text.push_str(command);
    for line in lines {
        if frame.headers.len() >= max_headers {
            return Err(protocol(format!("more than {max_headers} headers")));
        }
        let line = std::str::from_utf8(line).map_err(|_| protocol("a header is not UTF-8"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| protocol("a header line has no colon"))?;
        let name = frame.push_wire_text(name, escaped)?;
        let value = frame.push_wire_text(value, escaped)?;
        frame.headers.push(HeaderSpan { name, value });
    }
    Ok(frame)
}

impl Frame {
    /// Appends a header name or value as it was on the wire, its escapes
    /// undone when the frame has them.
    fn push_wire_text(&mut self, raw: &str, escaped: bool) -> Result<(u32, u32), StompError> {
        if !escaped || !raw.contains('\\') {
            return Ok(self.push_text(raw));
        }
        let start = offset(self.text.len());
        unescape_into(raw, &mut self.text)?;
        Ok((start, offset(self.text.len())))
    }
}

/// Appends `raw`, a header name or value as it was on the wire, to `out`
/// with its escapes (`\r \n \c \\`) undone.
fn unescape_into(raw: &str, out: &mut String) -> Result<(), StompError> {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('r') => '\r',
            Some('n') => '\n',
            Some('c') => ':',
            Some('\\') => '\\',
            other => {
                return Err(protocol(format!(
                    "undefined header escape \\{}",
                    other.unwrap_or(' ')
                )));
            }
        });
    }
    Ok(())
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}
