//! "Go ahead?" before a change that stops something or touches a broker
//! or a function.

use crate::console::action::Effect;
use crate::console::view::View;
use crate::console::widgets::{centred, panel};
use ratatui::Frame;
use ratatui::widgets::{Clear, Paragraph, Wrap};

/// The question, naming what it acts on.
pub fn question(effect: &Effect, view: &View) -> String {
    let queue = |uuid: &uuid::Uuid| {
        view.mapping(*uuid)
            .map(|m| m.spec.queue().to_owned())
            .unwrap_or_else(|| uuid.to_string())
    };
    match effect {
        Effect::Bulk(u, ids, action) => {
            let n = ids.len();
            let function = view
                .mapping(*u)
                .map(|m| m.spec.function_name.clone())
                .unwrap_or_default();
            match action {
                crate::engine::bulk::BulkAction::Replay => format!(
                    "Invoke {function} with each of the {n} dead letters listed, one by one? The broker is not touched. (y/n)"
                ),
                crate::engine::bulk::BulkAction::Republish => format!(
                    "Put the {n} dead letters listed back on {}, each once? They go through the mapping again. (y/n)",
                    queue(u)
                ),
                crate::engine::bulk::BulkAction::Delete => format!(
                    "Delete the {n} dead letters listed from the journal? The broker's dead-letter queue keeps its copies. (y/n)"
                ),
            }
        }
        Effect::Disable(u) => format!(
            "Disable the mapping of {}? Its consumer stops; messages stay in the queue. (y/n)",
            queue(u)
        ),
        Effect::Delete(u) => format!(
            "Delete the mapping of {}? Its consumer stops; messages stay in the queue. (y/n)",
            queue(u)
        ),
        Effect::Replay(..) => {
            "Invoke the function again with this dead letter's record? The broker is not touched. (y/n)".into()
        }
        Effect::Republish(u, _) => format!(
            "Publish this dead letter back to {}, its source queue? (y/n)",
            queue(u)
        ),
        Effect::ReplayEvent(..) => {
            "Invoke the function again with this batch's event? The broker is not touched. (y/n)".into()
        }
        Effect::Enable(_)
        | Effect::Pause(_)
        | Effect::Resume(_)
        | Effect::Step(_)
        | Effect::History(..)
        | Effect::SetBatchSize(..)
        | Effect::Create(_)
        | Effect::Save(..)
        | Effect::Dump(_)
        | Effect::SetFilter(..) => "Go ahead? (y/n)".into(),
    }
}

pub fn draw(frame: &mut Frame, effect: &Effect, view: &View) {
    let area = centred(frame.area(), 64, 6);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(question(effect, view))
            .wrap(Wrap { trim: true })
            .block(panel("Confirm", true)),
        area,
    );
}
