//! `mqtrigger dead-letters list|replay|republish|delete|export`: a
//! mapping's dead letters, chosen by text, reason and time, through a
//! running instance's API (as `mqtrigger mappings` is).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use mqtrigger::api::remote::Remote;
use mqtrigger::engine::bulk::{BulkAction, LetterFilter, export_line};
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum LettersCommand {
    /// The letters chosen, newest first: when, id, why, error, body.
    List(Chosen),
    /// Invoke the mapping's function with each letter's record, oldest first.
    Replay(Chosen),
    /// Put each letter back on its queue, oldest first.
    Republish(Chosen),
    /// Delete the letters from the journal (the broker's DLQ keeps its copies).
    Delete(Chosen),
    /// The letters as JSON Lines (record and what the journal knows), oldest first.
    Export {
        #[command(flatten)]
        chosen: Chosen,
        /// The file to write; standard output without it.
        #[arg(long)]
        to: Option<PathBuf>,
    },
}

/// Which letters: every one of the mapping's that all the given parts pass.
#[derive(Args)]
pub struct Chosen {
    /// The mapping's UUID.
    #[arg(long)]
    mapping: uuid::Uuid,
    /// Text in the reason, the error, the message id or the body (any case).
    #[arg(long)]
    text: Option<String>,
    /// Why they died: retries, expired or "too large".
    #[arg(long)]
    reason: Option<String>,
    /// Dead at or after this time (RFC 3339, e.g. 2026-12-05T10:00:00Z).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Dead before this time (RFC 3339).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
}

impl Chosen {
    fn filter(&self) -> LetterFilter {
        LetterFilter {
            text: self.text.clone(),
            reason: self.reason.clone(),
            since: self.since,
            until: self.until,
            ids: None,
        }
    }
}

pub async fn dead_letters(endpoint: &str, command: LettersCommand) -> Result<()> {
    let remote = Remote::new(endpoint).await?;
    let (chosen, action) = match &command {
        LettersCommand::List(c) => (c, None),
        LettersCommand::Replay(c) => (c, Some(BulkAction::Replay)),
        LettersCommand::Republish(c) => (c, Some(BulkAction::Republish)),
        LettersCommand::Delete(c) => (c, Some(BulkAction::Delete)),
        LettersCommand::Export { chosen, .. } => (chosen, None),
    };
    if let Some(action) = action {
        let summary = remote
            .bulk(chosen.mapping, &chosen.filter(), action)
            .await?;
        println!("{}", summary.sentence(action));
        for failure in &summary.failed {
            println!("  letter {}: {}", failure.id, failure.why);
        }
        if !summary.failed.is_empty() {
            anyhow::bail!("{} of {} failed", summary.failed.len(), summary.total);
        }
        return Ok(());
    }
    let letters = remote
        .dead_letters(chosen.mapping, &chosen.filter())
        .await?;
    if let LettersCommand::Export { to, .. } = &command {
        let mut text = String::new();
        for letter in letters.iter().rev() {
            text.push_str(&export_line(letter));
            text.push('\n');
        }
        match to {
            Some(path) => {
                std::fs::write(path, &text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!(
                    "{} dead letter(s) written to {}",
                    letters.len(),
                    path.display()
                );
            }
            None => std::io::stdout().write_all(text.as_bytes())?,
        }
        return Ok(());
    }
    println!(
        "{:<6} {:<20} {:<14} {:<9} {:<40} BODY",
        "ID", "DIED", "MESSAGE", "WHY", "ERROR"
    );
    for d in &letters {
        let error = d
            .error
            .as_deref()
            .map(mqtrigger::console::text::error_summary)
            .unwrap_or_default();
        let label = mqtrigger::source::message_label(d.message_id.as_deref(), &d.body);
        let body: String = String::from_utf8_lossy(&d.body)
            .chars()
            .take(60)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        println!(
            "{:<6} {:<20} {:<14} {:<9} {:<40} {body}",
            d.id,
            d.at.format("%Y-%m-%d %H:%M:%S"),
            label,
            mqtrigger::source::DeadLetterReason::word_of(&d.reason),
            error
        );
    }
    eprintln!("{} dead letter(s)", letters.len());
    Ok(())
}
