//! The message inspector: a dead letter's metadata, its body decoded (pretty
//! JSON, UTF-8 text, or a hex dump), and the record the function saw.

use super::panel;
use crate::console::app::App;
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

pub fn draw(frame: &mut Frame, area: Rect, app: &App, index: usize) {
    let letters = app.selected_dead_letters();
    let Some(letter) = letters.get(index) else {
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
        Line::from(format!("moved to     {}", letter.destination)),
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

/// A batch's whole event as the function saw it, then each message's body decoded.
pub fn draw_batch(frame: &mut Frame, area: Rect, app: &App, index: usize) {
    let Some(batch) = app
        .selected_mapping()
        .and_then(|m| app.batches.get(&m.uuid))
        .and_then(|b| b.get(index))
    else {
        return;
    };
    let event = batch.event.as_deref().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(event).unwrap_or_default();
    let mut lines = vec![Line::from(format!(
        "{} message(s), {} bytes, attempt {}",
        batch.messages, batch.bytes, batch.attempt
    ))];
    let filters = app
        .selected_mapping()
        .and_then(|m| m.spec.filters().ok().flatten());
    for (i, body) in crate::event::bodies(event).into_iter().enumerate() {
        lines.push(Line::from(""));
        let matched = match filters.as_ref().and_then(|f| f.matching(&body)) {
            Some(n) => format!(", matched filter {}", n + 1),
            None => String::new(),
        };
        lines.push(Line::from(format!(
            "message {} ({} bytes){matched}",
            i + 1,
            body.len()
        )));
        lines.extend(decode_body(&body).lines().map(|l| Line::from(l.to_owned())));
    }
    lines.push(Line::from(""));
    lines.push(Line::from("the event"));
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
    lines.extend(pretty.lines().map(|l| Line::from(l.to_owned())));
    frame.render_widget(Clear, area);
    let paragraph = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((app.scroll, 0));
    frame.render_widget(
        paragraph.block(panel("Batch: ↑↓ scroll, w saves the event, Esc back", true)),
        area,
    );
}
