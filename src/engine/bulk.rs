//! Dead letters in bulk: the letters a filter selects (text, reason, time
//! range), or those named by id, replayed to the function, republished to
//! their queue, or deleted from the journal, one after the other, with a
//! word after each (for a progress bar) and a summary of what was done and
//! what failed, and why. Exporting is reading: see [`export_line`].

use super::{Control, ControlError};

type Result<T, E = ControlError> = std::result::Result<T, E>;
use crate::store::DeadLetter;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most letters one bulk action takes: the journal's own bound on what
/// a listing returns.
pub const MOST: usize = 100_000;

/// Which dead letters of a mapping a bulk action is about. Every part
/// given must hold; none given selects them all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LetterFilter {
    /// Text found (case-insensitively) in the reason, the error, the
    /// message id or the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The reason in a word: `retries`, `expired` or `too large`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Dead at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Dead before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Only these letters (by the journal's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<i64>>,
}

impl LetterFilter {
    /// A reason word that is not one of the three is a mistake worth saying.
    pub fn check(&self) -> std::result::Result<(), String> {
        match self.reason.as_deref() {
            None | Some("retries" | "expired" | "too large") => Ok(()),
            Some(other) => Err(format!(
                "reason `{other}` is not one of: retries, expired, too large"
            )),
        }
    }

    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let word = crate::source::DeadLetterReason::word_of(&letter.reason);
        self.ids.as_ref().is_none_or(|ids| ids.contains(&letter.id))
            && self.reason.as_deref().is_none_or(|r| r == word)
            && self.since.is_none_or(|t| letter.at >= t)
            && self.until.is_none_or(|t| letter.at < t)
            && self.text.as_deref().is_none_or(|t| holds(letter, t))
    }
}

/// Whether the letter's reason, error, message id or body holds `text`.
fn holds(letter: &DeadLetter, text: &str) -> bool {
    let text = text.to_lowercase();
    let body = String::from_utf8_lossy(&letter.body);
    [
        letter.reason.as_str(),
        letter.error.as_deref().unwrap_or_default(),
        letter.message_id.as_deref().unwrap_or_default(),
        &body,
    ]
    .iter()
    .any(|field| field.to_lowercase().contains(&text))
}

/// What to do with each selected letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BulkAction {
    /// Invoke the mapping's function with the letter's record.
    Replay,
    /// Put the message back on its queue.
    Republish,
    /// Remove the letter from the journal (the broker's DLQ is not touched).
    Delete,
}

impl BulkAction {
    pub fn verb(self) -> &'static str {
        match self {
            BulkAction::Replay => "replayed",
            BulkAction::Republish => "republished",
            BulkAction::Delete => "deleted",
        }
    }
}

/// What a bulk action did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BulkSummary {
    /// Letters selected.
    pub total: usize,
    /// Letters the action was carried out for.
    pub done: usize,
    /// Each letter it failed for, and why.
    pub failed: Vec<Failure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Failure {
    pub id: i64,
    pub why: String,
}

impl BulkSummary {
    /// The summary in a sentence: how many, and the first reason of failure.
    pub fn sentence(&self, action: BulkAction) -> String {
        let mut out = format!("{} of {} {}", self.done, self.total, action.verb());
        if let Some(first) = self.failed.first() {
            out.push_str(&format!(
                "; {} failed (letter {}: {})",
                self.failed.len(),
                first.id,
                first.why
            ));
        }
        out
    }
}

/// One line of an export (JSON Lines): the record the function was given,
/// as JSON, and what the journal knows of the letter beside it. `mqtrigger
/// publish --from FILE` reads the record back.
pub fn export_line(letter: &DeadLetter) -> String {
    let record: serde_json::Value = serde_json::from_slice(&letter.record).unwrap_or_default();
    let line = serde_json::json!({
        "record": record,
        "deadLetter": {
            "id": letter.id,
            "mapping": letter.mapping,
            "queue": letter.queue,
            "at": letter.at,
            "messageId": letter.message_id,
            "attempts": letter.attempts,
            "reason": letter.reason,
            "error": letter.error,
            "destination": letter.destination,
        },
    });
    line.to_string()
}

impl Control {
    /// The mapping's dead letters that `filter` selects, newest first.
    pub fn dead_letters_matching(
        &self,
        mapping: Uuid,
        filter: &LetterFilter,
    ) -> Result<Vec<DeadLetter>> {
        self.get(mapping)?;
        filter
            .check()
            .map_err(|m| ControlError::from(crate::validation::InvalidMapping::new("Reason", m)))?;
        let all = self.store().dead_letters(Some(mapping), MOST)?;
        Ok(all.into_iter().filter(|d| filter.matches(d)).collect())
    }

    /// Does `action` for each dead letter of `mapping` that `filter`
    /// selects, one after the other, telling `progress` (done, total)
    /// after each. A letter that fails does not stop the others.
    pub async fn bulk(
        &self,
        mapping: Uuid,
        filter: &LetterFilter,
        action: BulkAction,
        progress: impl Fn(usize, usize),
    ) -> Result<BulkSummary> {
        self.check_writable()?;
        let letters = self.dead_letters_matching(mapping, filter)?;
        let mut summary = BulkSummary {
            total: letters.len(),
            ..BulkSummary::default()
        };
        // One function for all the replays.
        let invoker = match action {
            BulkAction::Replay if !letters.is_empty() => Some(self.function_of(mapping).await?),
            _ => None,
        };
        // Oldest first: replayed and republished in the order they died.
        for (i, letter) in letters.iter().rev().enumerate() {
            let result = match (action, &invoker) {
                (BulkAction::Replay, Some(f)) => {
                    self.replay_with(&**f, mapping, letter.id).await.map(drop)
                }
                (BulkAction::Replay, None) => unreachable!("built above"),
                (BulkAction::Republish, _) => self.republish(mapping, letter.id).await,
                (BulkAction::Delete, _) => self.delete_dead_letter(mapping, letter.id),
            };
            match result {
                Ok(()) => summary.done += 1,
                Err(e) => summary.failed.push(Failure {
                    id: letter.id,
                    why: crate::error_text::causes(&e),
                }),
            }
            progress(i + 1, summary.total);
        }
        Ok(summary)
    }
}
