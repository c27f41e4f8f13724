//! The message inspector: a dead letter's metadata, its body decoded (pretty
//! JSON, UTF-8 text, or a hex dump), and the record the function saw.

use super::panel;
use crate::console::app::{App, BatchKey, InspectedBatch};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

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

pub fn draw(frame: &mut Frame, area: Rect, app: &App, id: i64) {
    let Some(letter) = app.dead_letters.iter().find(|d| d.id == id) else {
        return;
    };
    let mut lines = vec![
        Line::from(format!("queue        {}", letter.queue)),
        Line::from(format!(
            "message id   {}",
            letter.message_id.as_deref().unwrap_or("-")
        )),
        Line::from(format!("dead at      {}", letter.at.to_rfc3339())),
        Line::from(format!("attempts     {}", letter.attempts)),
        Line::from(format!("reason       {}", letter.reason)),
        Line::from(if letter.moved {
            format!("moved to     {}", letter.destination)
        } else {
            format!(
                "moving to    {} (the broker has not taken it yet)",
                letter.destination
            )
        }),
        Line::from(format!(
            "error        {}",
            letter.error.as_deref().unwrap_or("-")
        )),
        Line::from(""),
        Line::from(format!("body ({} bytes)", letter.body.len())),
    ];
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
            .block(panel("Dead letter", true)),
        area,
    );
}

/// What the batch inspector shows of an event: each message's body
/// decoded (with the filter it matched), then the whole event, pretty.
/// Worked out once, when the inspector opens: the event may be 6 MB.
pub fn inspected_batch_lines(
    event: &[u8],
    filters: Option<&crate::filter::Filters>,
) -> Vec<String> {
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
    for (i, body) in crate::event::bodies_of(&json).into_iter().enumerate() {
        lines.push(String::new());
        let matched = match filters.and_then(|f| f.matching(&body)) {
            Some(n) => format!(", matched filter {}", n + 1),
            None => String::new(),
        };
        lines.push(format!("message {} ({} bytes){matched}", i + 1, body.len()));
        if let Some(record) = records.get(i) {
            lines.extend(header_lines(record));
        }
        lines.extend(decode_body(&body).lines().map(str::to_owned));
    }
    lines.push(String::new());
    lines.push("the event".into());
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
    lines.extend(pretty.lines().map(str::to_owned));
    lines
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
pub fn draw_batch(frame: &mut Frame, area: Rect, app: &App, inspected: &InspectedBatch) {
    let row = app
        .selected_batches()
        .iter()
        .find(|r| BatchKey::of(r) == inspected.key);
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
            inspected.key.batch,
            inspected.key.attempt,
            inspected.event.len()
        ),
    })];
    lines.extend(inspected.lines.iter().map(|l| Line::from(l.as_str())));
    frame.render_widget(Clear, area);
    let paragraph = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((app.scroll, 0));
    frame.render_widget(
        paragraph.block(panel("Batch: ↑↓ scroll, w saves the event, Esc back", true)),
        area,
    );
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
