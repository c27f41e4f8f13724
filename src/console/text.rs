//! How the console words what the engine reports: a function's error as
//! `errorType: errorMessage`, a body in one line, a message's short id, a
//! dead letter's reason in a word, sizes, and the filter editor's text.
//! Pure functions of their input, so the panels, the inspector and the
//! tests agree on each rule.

use crate::filter::Filters;
use crate::mapping::FilterCriteria;

/// A function's answer to a failed invocation, as a person reads it:
/// `errorType: errorMessage` from Lambda's error shape, else the answer's
/// first line. The raw answer stays in the inspector.
pub fn error_summary(answer: &str) -> String {
    let trimmed = answer.trim();
    if let Ok(serde_json::Value::Object(error)) = serde_json::from_str(trimmed) {
        let field = |name: &str| error.get(name).and_then(|v| v.as_str()).map(str::trim);
        match (field("errorType"), field("errorMessage")) {
            (Some(kind), Some(message)) if !message.is_empty() => {
                return one_line(&format!("{kind}: {message}"));
            }
            (Some(kind), _) => return kind.to_owned(),
            (None, Some(message)) => return one_line(message),
            (None, None) => {}
        }
    }
    one_line(trimmed.lines().next().unwrap_or_default())
}

/// Newlines and tabs as spaces, runs of spaces as one.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A body in one line: text as it came (JSON keeps its key order), its
/// runs of white space as one space; anything else as the hex of its
/// first bytes.
pub fn body_preview(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(text) => one_line(text),
        Err(_) => {
            let hex: Vec<String> = body.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!(
                "0x{}{}",
                hex.join(""),
                if body.len() > 16 { "…" } else { "" }
            )
        }
    }
}

/// A message's id as the broker gave it, else a short stable id of its body
/// (the first 8 hex digits of its SHA-256), marked as such: the same body
/// always gets the same id, and two bodies differ in it.
pub fn message_label(message_id: Option<&str>, body: &[u8]) -> String {
    crate::source::message_label(message_id, body)
}

/// Why a message was dead-lettered, in a word.
pub fn reason_word(reason: &str) -> &'static str {
    crate::source::DeadLetterReason::word_of(reason)
}

/// The last error a dead letter's reason names (`…; last error Type: message`).
pub fn last_error_of(reason: &str) -> Option<&str> {
    reason.split_once("; last error ").map(|(_, e)| e.trim())
}

/// Bytes in B, KB, MB (powers of 1024), one decimal.
pub fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1}MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1}KB", n as f64 / 1024.0),
        n => format!("{n}B"),
    }
}

/// An age in seconds as the shortest honest words: 42s, 3m12s, 2h05m, 4d.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d", s / 86_400),
    }
}

/// Cuts text to `width` characters, ending in `…` when it was cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// The editor's text as FilterCriteria and the matcher it makes: one
/// pattern (a JSON object), or a JSON list of up to five; empty removes the
/// filter (None). The error is the first thing wrong with the text.
pub fn criteria_from_text(text: &str) -> Result<Option<(FilterCriteria, Filters)>, String> {
    let Some(criteria) = filter_criteria_of_text(text)? else {
        return Ok(None);
    };
    Ok(criteria.compile()?.map(|filters| (criteria, filters)))
}

/// The FilterCriteria of one pattern or a list of patterns as typed, not
/// yet compiled; an error only when the text is not JSON.
pub fn filter_criteria_of_text(text: &str) -> Result<Option<FilterCriteria>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON yet: {e}"))?;
    let patterns: Vec<String> = match value {
        serde_json::Value::Array(list) => list.iter().map(|p| p.to_string()).collect(),
        one => vec![one.to_string()],
    };
    Ok(FilterCriteria::of_patterns(patterns).non_empty())
}

/// FilterCriteria as the editor shows it: the patterns, pretty.
pub fn patterns_text(criteria: &FilterCriteria) -> String {
    let parsed: Vec<serde_json::Value> = criteria
        .patterns()
        .into_iter()
        .filter_map(|p| serde_json::from_str(p).ok())
        .collect();
    let shown = if parsed.len() == 1 {
        parsed[0].clone()
    } else {
        serde_json::Value::Array(parsed)
    };
    serde_json::to_string_pretty(&shown).unwrap_or_default()
}

/// Lambda's rule for BatchSize (crate::validation), as the sentence shown under the prompt.
pub fn batch_size_error(text: &str) -> Option<String> {
    crate::validation::parse_batch_size(text)
        .err()
        .map(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reads_as_its_type_and_message() {
        let answer = r#"{"errorType": "OrderError", "errorMessage": "order 13 is bad", "stackTrace": ["a"]}"#;
        assert_eq!(error_summary(answer), "OrderError: order 13 is bad");
        assert_eq!(error_summary(r#"{"errorType":"Timeout"}"#), "Timeout");
        assert_eq!(error_summary("boom\nat line 2"), "boom");
        assert_eq!(error_summary("  Runtime.ExitError  "), "Runtime.ExitError");
    }

    #[test]
    fn a_body_is_one_line_and_its_short_id_is_stable() {
        assert_eq!(
            body_preview(b"{\n \"order\": 13,\n \"bad\": true\n}"),
            r#"{ "order": 13, "bad": true }"#
        );
        assert_eq!(body_preview(b"two\nlines"), "two lines");
        assert_eq!(body_preview(&[0xff, 0x00]), "0xff00");
        let id = message_label(None, b"{\"order\":13}");
        assert!(id.starts_with("sha:") && id.len() == 12, "{id}");
        assert_eq!(id, message_label(Some(""), b"{\"order\":13}"));
        assert_ne!(id, message_label(None, b"{\"order\":4}"));
        assert_eq!(message_label(Some("ID:7"), b"x"), "ID:7");
    }

    #[test]
    fn ages_and_cuts() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(192), "3m12s");
        assert_eq!(age(7500), "2h05m");
        assert_eq!(fit("local-activemq", 14), "local-activemq");
        assert_eq!(fit("local-activemq", 8), "local-a…");
    }
}
