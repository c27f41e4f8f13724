//! The real console binary in a real terminal: tmux runs it, send-keys types,
//! capture-pane reads the screen. Needs tmux (scripts/test installs it).
//! This file holds the terminal and how a test reads a cell of the
//! mappings table off its screen.

mod attached;
mod flow;
mod keys;
mod local;

use crate::common::*;
use std::process::Command;

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        Tmux::sized(command, 150, 34)
    }

    fn sized(command: &str, width: u16, height: u16) -> Tmux {
        let (width, height) = (width.to_string(), height.to_string());
        let session = unique("console");
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &width,
                "-y",
                &height,
                command,
            ])
            .status()
            .expect("tmux must be installed (scripts/test installs it)");
        assert!(status.success());
        Tmux { session }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// The value in the mappings table's `column` on the row of `queue` (its
/// first 20 characters), read under the column's name: numbers end where
/// their name ends, text starts where its name starts.
fn cell_of(screen: &str, queue: &str, column: &str) -> String {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let text = |l: &Vec<char>| l.iter().collect::<String>();
    let Some(header) = lines.iter().find(|l| {
        let t = text(l);
        t.contains("STATE") && t.contains("QUEUE")
    }) else {
        return String::new();
    };
    // A table row, not the toast that names the queue too.
    let Some(row) = lines
        .iter()
        .find(|l| l.first() == Some(&'│') && text(l).contains(&queue[..20]))
    else {
        return String::new();
    };
    let header_text = text(header);
    let Some(at) = header_text
        .find(&format!(" {column} "))
        .map(|i| i + 1)
        .or_else(|| {
            header_text
                .find(&format!("│{column} "))
                .map(|i| i + "│".len())
        })
    else {
        return String::new();
    };
    let start = header_text[..at].chars().count();
    let end = start + column.chars().count();
    let numeric = [
        "BACKLOG",
        "BATCH",
        "OK",
        "FAILED",
        "DEAD",
        "MSG/S",
        "IN FLIGHT",
        "FILTERED",
    ]
    .contains(&column);
    if numeric {
        let before: String = row[..end.min(row.len())].iter().collect();
        before
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned()
    } else {
        let after: String = row[start.min(row.len())..].iter().collect();
        after
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

fn cell(tmux: &Tmux, queue: &str, column: &str) -> String {
    cell_of(&tmux.screen(), queue, column)
}
