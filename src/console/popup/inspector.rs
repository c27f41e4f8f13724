//! The message inspector: a dead letter's metadata, its body decoded
//! (pretty JSON, UTF-8 text, or a hex dump) and the record the function
//! saw; or one attempt of a batch: what the function logged, each message
//! decoded, and the whole event.

use super::{PAGE, Reaction};
use crate::console::action::{Action, Effect};
use crate::console::text::{error_summary, message_label, reason_word};
use crate::console::view::{BatchKey, View};
use crate::console::widgets::panel;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};
use uuid::Uuid;

/// A dead letter open in the inspector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterInspector {
    pub id: i64,
    pub scroll: u16,
}

/// One attempt of a batch, its event taken apart once when the inspector
/// opened (the event may be 6 MB): the lines shown, and the event itself
/// to save or replay.
#[derive(Debug, Clone)]
pub struct BatchInspector {
    pub mapping: Uuid,
    pub key: BatchKey,
    pub event: bytes::Bytes,
    pub lines: Vec<String>,
    pub scroll: u16,
    /// Each message's id and the line its section starts on.
    pub messages: Vec<(String, usize)>,
    /// The message `]`, `[` and Enter are about.
    pub selected: usize,
}

impl BatchInspector {
    pub fn open(
        view: &View,
        mapping: &crate::mapping::Mapping,
        key: BatchKey,
    ) -> Option<BatchInspector> {
        let event = view.event(mapping.uuid, key)?;
        let filters = mapping.spec.filters().ok().flatten();
        let mut lines = function_log(view.log(mapping.uuid, key));
        let first = lines.len();
        let (more, ids) = inspected_batch(&event, filters.as_ref());
        lines.extend(more);
        let mut ids = ids.into_iter();
        let messages = lines
            .iter()
            .enumerate()
            .skip(first)
            .filter(|(_, l)| l.starts_with("message "))
            .filter_map(|(i, _)| Some((ids.next()?, i)))
            .collect();
        Some(BatchInspector {
            mapping: mapping.uuid,
            key,
            event,
            lines,
            scroll: 0,
            messages,
            selected: 0,
        })
    }
}

/// Moves a page's scroll by `delta` lines, never above its top.
pub fn scroll(at: &mut u16, delta: i32) {
    *at = (i32::from(*at) + delta).clamp(0, i32::from(u16::MAX)) as u16;
}

/// Scrolls a page by the action's lines, if it is a move.
pub fn scroll_by(at: &mut u16, action: &Action) {
    match action {
        Action::Up => scroll(at, -1),
        Action::Down => scroll(at, 1),
        Action::PageUp => scroll(at, -PAGE),
        Action::PageDown => scroll(at, PAGE),
        _ => {}
    }
}

impl LetterInspector {
    pub fn on(&mut self, action: Action, view: &View) -> Reaction {
        let Some(letter) = view.dead_letter(self.id) else {
            return Reaction::Close;
        };
        match action {
            Action::Save => Reaction::Run(Effect::Save(
                format!("dead-letter-{}.body", self.id),
                bytes::Bytes::from(letter.body.clone()),
            )),
            Action::AskReplay => Reaction::Ask(Effect::Replay(letter.mapping, self.id)),
            Action::AskRepublish => Reaction::Ask(Effect::Republish(letter.mapping, self.id)),
            Action::History => Reaction::Run(Effect::History(
                letter.mapping,
                message_label(letter.message_id.as_deref(), &letter.body),
            )),
            other => {
                scroll_by(&mut self.scroll, &other);
                Reaction::Stay
            }
        }
    }
}

impl BatchInspector {
    pub fn on(&mut self, action: Action) -> Reaction {
        match action {
            Action::Save => Reaction::Run(Effect::Save(
                format!("batch-{}-{}.json", self.key.batch.0, self.key.attempt),
                self.event.clone(),
            )),
            Action::AskReplay => {
                Reaction::Ask(Effect::ReplayEvent(self.mapping, self.event.clone()))
            }
            Action::AskRepublish => Reaction::Say(
                "a batch is not republished; its dead letters are (R in the dead letters)".into(),
            ),
            Action::NextMessage | Action::PreviousMessage => {
                let last = self.messages.len().saturating_sub(1);
                self.selected = match action {
                    Action::NextMessage => (self.selected + 1).min(last),
                    _ => self.selected.saturating_sub(1),
                };
                if let Some((_, line)) = self.messages.get(self.selected) {
                    // The batch's own line comes first, above these.
                    self.scroll = u16::try_from(line + 1).unwrap_or(u16::MAX);
                }
                Reaction::Stay
            }
            Action::History => match self.messages.get(self.selected) {
                Some((id, _)) => Reaction::Run(Effect::History(self.mapping, id.clone())),
                None => Reaction::Say("this batch's event holds no message".into()),
            },
            other => {
                scroll_by(&mut self.scroll, &other);
                Reaction::Stay
            }
        }
    }
}

/// The inspector's first lines: what the function logged, if it was kept.
fn function_log(lines: Option<&[String]>) -> Vec<String> {
    let Some(lines) = lines else {
        return Vec::new();
    };
    let mut out = vec![String::new(), "the function's log".to_owned()];
    // Lambda's lines hold tabs; awslambdaric keeps a traceback in one
    // record by ending its lines with \r.
    for line in lines {
        for part in line.split('\r') {
            out.push(format!("  {}", part.replace('\t', "  ")));
        }
    }
    out
}

pub fn draw_letter(frame: &mut Frame, area: Rect, view: &View, open: &LetterInspector) {
    let Some(letter) = view.dead_letter(open.id) else {
        return;
    };
    let label = message_label(letter.message_id.as_deref(), &letter.body);
    let id_line = match &letter.message_id {
        Some(id) if !id.is_empty() => format!("message id   {id}"),
        _ => format!("message id   none; {label} is the first 8 hex digits of the body's SHA-256"),
    };
    let mut lines = vec![
        Line::from(format!("queue        {}", letter.queue)),
        Line::from(id_line),
        Line::from(format!("dead at      {}", letter.at.to_rfc3339())),
        Line::from(format!("attempts     {}", letter.attempts)),
        Line::from(format!(
            "reason       {}: {}",
            reason_word(&letter.reason),
            letter.reason
        )),
        Line::from(if letter.moved {
            format!("moved to     {}", letter.destination)
        } else {
            format!(
                "moving to    {} (the broker has not taken it yet)",
                letter.destination
            )
        }),
    ];
    match letter.error.as_deref() {
        Some(raw) => {
            lines.push(Line::from(format!("error        {}", error_summary(raw))));
            lines.push(Line::from(format!("answer       {raw}")));
        }
        None => lines.push(Line::from("error        -")),
    }
    lines.push(Line::from(""));
    lines.push(Line::from(format!("body ({} bytes)", letter.body.len())));
    lines.extend(
        decode_body(&letter.body)
            .lines()
            .map(|l| Line::from(l.to_owned())),
    );
    lines.push(Line::from(""));
    lines.push(Line::from("record in the Lambda event"));
    lines.push(Line::from(
        String::from_utf8_lossy(&letter.record).into_owned(),
    ));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((open.scroll, 0))
            .block(panel(format!("Dead letter {label}"), true)),
        area,
    );
}

/// The body as a person wants to read it.
pub fn decode_body(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        return serde_json::to_string_pretty(&value).unwrap_or_default();
    }
    if let Ok(text) = std::str::from_utf8(body) {
        return text.to_owned();
    }
    body.chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String = chunk
                .iter()
                .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
                .collect();
            format!("{:08x}  {:<47}  {ascii}", i * 16, hex.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the batch inspector shows of an event: each message's body
/// decoded (with the filter it matched), then the whole event, pretty.
/// Worked out once, when the inspector opens: the event may be 6 MB.
pub fn inspected_batch_lines(
    event: &[u8],
    filters: Option<&crate::filter::Filters>,
) -> Vec<String> {
    inspected_batch(event, filters).0
}

/// [`inspected_batch_lines`], and each message's id as the engine names it
/// (its message id, else its body's `sha:` id), in the event's order.
fn inspected_batch(
    event: &[u8],
    filters: Option<&crate::filter::Filters>,
) -> (Vec<String>, Vec<String>) {
    let json: serde_json::Value = serde_json::from_slice(event).unwrap_or_default();
    let records: Vec<&serde_json::Value> = match json["rmqMessagesByQueue"].as_object() {
        Some(by_queue) => by_queue
            .values()
            .filter_map(|v| v.as_array())
            .flatten()
            .collect(),
        None => json["messages"].as_array().into_iter().flatten().collect(),
    };
    let mut lines = Vec::new();
    let mut ids = Vec::new();
    for (i, body) in crate::event::bodies_of(&json).into_iter().enumerate() {
        let given = records.get(i).and_then(|r| {
            r["messageID"]
                .as_str()
                .or_else(|| r["basicProperties"]["messageId"].as_str())
        });
        ids.push(message_label(given, &body));
        lines.push(String::new());
        let matched = match filters.and_then(|f| f.matching(&body)) {
            Some(n) => format!(", matched filter {}", n + 1),
            None => String::new(),
        };
        lines.push(format!(
            "message {} {} ({} bytes){matched}",
            i + 1,
            ids[i],
            body.len()
        ));
        if let Some(record) = records.get(i) {
            lines.extend(header_lines(record));
        }
        lines.extend(decode_body(&body).lines().map(str::to_owned));
    }
    lines.push(String::new());
    lines.push("the event".into());
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
    lines.extend(pretty.lines().map(str::to_owned));
    (lines, ids)
}

/// A record's headers (`aws:rmq`) or properties (`aws:mq`), one a line; a
/// string header, which the event carries as `{"bytes": [...]}`, as text.
fn header_lines(record: &serde_json::Value) -> Vec<String> {
    let rmq = record["basicProperties"]["headers"].as_object();
    let mq = record["properties"].as_object();
    let mut lines = Vec::new();
    for (name, value) in rmq.into_iter().chain(mq).flatten() {
        let bytes: Option<Vec<u8>> = value["bytes"].as_array().and_then(|list| {
            list.iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect()
        });
        lines.push(match (bytes, value) {
            (Some(bytes), _) => format!(
                "  header {name} = {:?} (bytes {value})",
                String::from_utf8_lossy(&bytes)
            ),
            (None, serde_json::Value::String(text)) => format!("  header {name} = {text:?}"),
            (None, other) => format!("  header {name} = {other}"),
        });
    }
    lines
}

/// A batch's whole event as the function saw it, then each message's body decoded.
pub fn draw_batch(frame: &mut Frame, area: Rect, view: &View, open: &BatchInspector) {
    let row = view
        .stats_of(open.mapping)
        .recent
        .iter()
        .find(|r| BatchKey::of(r) == open.key);
    let mut lines = vec![Line::from(match row {
        Some(b) => format!(
            "batch {} · {} message(s), {} bytes, attempt {}, closed by {}",
            b.batch,
            b.messages,
            b.bytes,
            b.attempt,
            b.closed_by.label()
        ),
        None => format!(
            "batch {} · attempt {}, {} bytes",
            open.key.batch,
            open.key.attempt,
            open.event.len()
        ),
    })];
    let selected = open.messages.get(open.selected).map(|(_, line)| *line);
    lines.extend(open.lines.iter().enumerate().map(|(i, l)| {
        if Some(i) == selected {
            Line::from(format!("▶ {l}  (Enter: its history)"))
        } else {
            Line::from(l.as_str())
        }
    }));
    frame.render_widget(Clear, area);
    let paragraph = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((open.scroll, 0));
    frame.render_widget(paragraph.block(panel("Batch", true)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_headers_show_as_text_beside_their_bytes() {
        let event = br#"{"eventSource":"aws:rmq","rmqMessagesByQueue":{"q::/":[{"basicProperties":{"headers":{"source":{"bytes":[100,101,109,111]},"retries":3}},"redelivered":false,"data":"e30="}]}}"#;
        let lines = inspected_batch_lines(event, None);
        assert!(
            lines.contains(
                &"  header source = \"demo\" (bytes {\"bytes\":[100,101,109,111]})".to_owned()
            ),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&"  header retries = 3".to_owned()),
            "{lines:#?}"
        );
    }
}
