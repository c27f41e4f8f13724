//! A function's output as log lines, within limits.
//!
//! A local program may write anything to its stdout or stderr: a line of
//! 100 MB without a newline, or a flood. Each line keeps at most
//! [`MAX_LINE_BYTES`], and each invocation's log at most [`MAX_LOG_BYTES`]
//! (Lambda also truncates what it keeps of a function's log). What is over
//! a limit is dropped, never held in memory, and the log says so.

/// The most of one line that is kept.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// The most of one invocation's log that is kept.
pub const MAX_LOG_BYTES: usize = 1024 * 1024;

/// Splits a stream of bytes into lines, each cut at [`MAX_LINE_BYTES`].
#[derive(Debug, Default)]
pub struct Lines {
    /// The line being read, less than [`MAX_LINE_BYTES`].
    line: Vec<u8>,
    /// The line being read was cut (and handed over): the rest of it, up
    /// to its newline, is dropped.
    cut: bool,
}

impl Lines {
    /// Reads a chunk of the stream, and hands over each line it completes.
    /// A line that reaches the limit is handed over at once, cut, so a
    /// program that never writes a newline is still seen in the log.
    pub fn push(&mut self, chunk: &[u8], mut line: impl FnMut(String)) {
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            let (text, ended) = match piece.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (piece, false),
            };
            if !self.cut {
                let room = MAX_LINE_BYTES - self.line.len();
                self.line.extend_from_slice(&text[..text.len().min(room)]);
                if text.len() >= room {
                    self.cut = true;
                    let mut cut = self.take();
                    cut.push_str(&format!(
                        " … [cut: mqtrigger keeps the first {} KiB of a log line, and drops the rest of it]",
                        MAX_LINE_BYTES / 1024
                    ));
                    line(cut);
                }
            }
            if ended {
                if self.cut {
                    self.cut = false;
                } else {
                    line(self.take());
                }
            }
        }
    }

    /// Hands over the last line, when the stream ended without a newline.
    pub fn finish(&mut self, mut line: impl FnMut(String)) {
        if !self.line.is_empty() {
            line(self.take());
        }
    }

    fn take(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.line)
            .trim_end_matches('\r')
            .to_owned();
        // The buffer may have grown to the limit once; it is not kept at
        // that size for a process that writes short lines afterwards.
        self.line = Vec::new();
        text
    }
}

/// How much of one invocation's log may still be kept.
#[derive(Debug)]
pub struct Budget {
    left: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            left: MAX_LOG_BYTES,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }
}

impl Budget {
    /// Whether the line may be kept; a line that may not is counted.
    pub fn admit(&mut self, line: &str) -> bool {
        // The newline counts, so a flood of empty lines ends too.
        let cost = line.len() + 1;
        if cost <= self.left {
            self.left -= cost;
            return true;
        }
        self.left = 0;
        self.dropped_lines += 1;
        self.dropped_bytes += cost as u64;
        false
    }

    /// The line that says what was dropped, if anything was.
    pub fn summary(&self) -> Option<String> {
        (self.dropped_lines > 0).then(|| {
            format!(
                "mqtrigger: {} more log lines ({} bytes) dropped: an invocation keeps at most {} MiB of log",
                self.dropped_lines,
                self.dropped_bytes,
                MAX_LOG_BYTES / (1024 * 1024)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            lines.push(chunk, |l| out.push(l));
        }
        lines.finish(|l| out.push(l));
        out
    }

    #[test]
    fn lines_are_split_across_chunks_and_the_last_needs_no_newline() {
        assert_eq!(
            lines_of(&[b"one\ntw", b"o\r\nthr", b"ee"]),
            ["one", "two", "three"]
        );
        assert_eq!(lines_of(&[b"\n\n"]), ["", ""]);
        assert!(lines_of(&[b""]).is_empty());
    }

    #[test]
    fn a_line_over_the_limit_keeps_its_start_and_says_it_was_cut() {
        let long = vec![b'x'; MAX_LINE_BYTES + 1000];
        let out = lines_of(&[
            &long[..MAX_LINE_BYTES / 2],
            &long[MAX_LINE_BYTES / 2..],
            b"\nnext",
        ]);
        assert_eq!(out.len(), 2, "the cut line's rest is no line of its own");
        assert!(out[0].starts_with(&"x".repeat(MAX_LINE_BYTES)));
        assert!(
            out[0].ends_with(" … [cut: mqtrigger keeps the first 256 KiB of a log line, and drops the rest of it]"),
            "{}",
            &out[0][MAX_LINE_BYTES..]
        );
        assert_eq!(out[1], "next");
        // Exactly at the limit, then a newline: one line, cut.
        let exact = [&long[..MAX_LINE_BYTES], b"\nafter"].concat();
        let out = lines_of(&[&exact]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], "after");
    }

    #[test]
    fn a_stream_without_newlines_never_holds_more_than_a_line() {
        let mut lines = Lines::default();
        let chunk = vec![b'y'; 64 * 1024];
        let mut out = Vec::new();
        for _ in 0..1600 {
            // 100 MB in all.
            lines.push(&chunk, |l| out.push(l.len()));
            assert!(lines.line.capacity() <= 2 * MAX_LINE_BYTES);
        }
        lines.finish(|l| out.push(l.len()));
        assert_eq!(out.len(), 1, "one line, handed over when it was cut");
        assert!(out[0] > MAX_LINE_BYTES && out[0] < MAX_LINE_BYTES + 200);
    }

    #[test]
    fn the_budget_keeps_a_megabyte_and_counts_the_rest() {
        let mut budget = Budget::default();
        let line = "z".repeat(1023);
        let kept = (0..2000).filter(|_| budget.admit(&line)).count();
        assert_eq!(kept, 1024, "1 MiB of 1 KiB lines");
        assert_eq!(
            budget.summary().unwrap(),
            "mqtrigger: 976 more log lines (999424 bytes) dropped: an invocation keeps at most 1 MiB of log"
        );
        assert_eq!(Budget::default().summary(), None);
    }
}
