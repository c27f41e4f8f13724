//! The operations console: a ratatui app that contains the engine.
//!
//! State lives in [`app::App`] and changes only through actions
//! ([`action::Action`]); keys become actions in [`keys`]; drawing is a pure
//! function of the state ([`ui::draw`]). Changes to mappings go through the
//! engine's Control handle, like everything else.

pub mod action;
pub mod app;
pub mod feed;
pub mod form;
pub mod keys;
pub mod ui;

#[cfg(test)]
mod tests;

use crate::engine::Control;
use action::{Action, Effect};
use anyhow::Result;
use app::App;
use crossterm::event::{Event, EventStream, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use feed::EngineFeed;
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;

/// The console draws on its standard output: without a terminal there, say
/// so before anything starts.
pub fn needs_a_terminal() -> Result<()> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!(
            "the console needs a terminal (its output is not one); run `mqtrigger serve` to run without one"
        );
    }
    Ok(())
}

/// Runs the console until the user quits; the terminal is restored on the way out.
pub async fn run(control: Control) -> Result<()> {
    needs_a_terminal()?;
    let mut terminal = ratatui::try_init().map_err(|e| {
        anyhow::anyhow!(
            "cannot start the console on this terminal: {e}; run `mqtrigger serve` to run without one"
        )
    })?;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    let result = event_loop(&mut terminal, &control).await;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    result
}

fn mouse(event: MouseEvent, screen: ratatui::layout::Rect, app: &App) -> Option<Action> {
    match event.kind {
        MouseEventKind::ScrollUp => Some(Action::Up),
        MouseEventKind::ScrollDown => Some(Action::Down),
        MouseEventKind::Down(MouseButton::Left) => {
            ui::mapping_row_at(screen, app.selected, event.column, event.row).map(Action::Select)
        }
        _ => None,
    }
}

/// At most this many frames a second: a flood of engine events is drawn
/// as it stands after each burst, not once per event.
const FRAMES_PER_SECOND: u64 = 30;

async fn event_loop(terminal: &mut ratatui::DefaultTerminal, control: &Control) -> Result<()> {
    let mut app = App::new(
        form::Choices::from_config(control.config()),
        control.config().engine.max_redeliveries,
    );
    let mut feed = EngineFeed::start(control, &mut app)?;
    if control.store().is_fresh() {
        app.toast = Some(control.store().fresh_notice());
    }
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut frame = tokio::time::interval(Duration::from_millis(1000 / FRAMES_PER_SECOND));
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = true;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    while !app.quit {
        let action = tokio::select! {
            _ = frame.tick(), if dirty => {
                terminal.draw(|frame| ui::draw(frame, &app))?;
                dirty = false;
                continue;
            }
            Some(event) = keys.next() => match event? {
                Event::Key(key) if key.kind == KeyEventKind::Press => keys::action(&app.mode, key),
                Event::Mouse(m) if matches!(app.mode, app::Mode::Normal) => {
                    let size = terminal.size()?;
                    mouse(m, ratatui::layout::Rect::new(0, 0, size.width, size.height), &app)
                }
                _ => None,
            },
            Some(event) = feed.recv() => {
                feed.apply(control, &mut app, event)?;
                None
            }
            _ = tick.tick() => Some(Action::Tick),
            Some(done) = done_rx.recv() => Some(Action::Done(done)),
        };
        // Something happened (a key, a resize, an event, a tick): draw it.
        dirty = true;
        if let Some(effect) = action.and_then(|a| app.update(a)) {
            let control = control.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let _ = done.send(apply(&control, effect).await);
            });
        }
    }
    Ok(())
}

async fn apply(control: &Control, effect: Effect) -> Result<String, String> {
    let result = match effect {
        Effect::Enable(uuid) => control
            .enable(uuid)
            .await
            .map(|m| format!("enabled {}", m.spec.queue())),
        Effect::Disable(uuid) => control
            .disable(uuid)
            .await
            .map(|m| format!("disabled {}", m.spec.queue())),
        Effect::Create(spec) => control.create(*spec).await.map(|m| {
            format!(
                "created mapping {} of {} to {}",
                m.uuid,
                m.spec.function_name,
                m.spec.queue()
            )
        }),
        Effect::Save(name, bytes) => {
            save(&name, &bytes).map_err(|e| crate::engine::ControlError::Failed(format!("{e:#}")))
        }
        Effect::SetFilter(uuid, criteria) => {
            let removed = criteria.is_none();
            control.set_filter_criteria(uuid, criteria).await.map(|m| {
                if removed {
                    format!("filter of {} removed", m.spec.queue())
                } else {
                    format!("filter of {} applied", m.spec.queue())
                }
            })
        }
        Effect::ReplayEvent(uuid, event) => control.replay_event(uuid, event).await.map(|r| {
            format!(
                "replayed the batch; the function answered {}",
                crate::error_text::first_line(&r, 80)
            )
        }),
        Effect::Delete(uuid) => control
            .delete(uuid)
            .await
            .map(|m| format!("mapping of {} deleted", m.spec.queue())),
        Effect::Replay(mapping, id) => control.replay(mapping, id).await.map(|r| {
            format!(
                "replayed; the function answered {}",
                crate::error_text::first_line(&r, 80)
            )
        }),
        Effect::Republish(mapping, id) => control
            .republish(mapping, id)
            .await
            .map(|()| "republished to the source queue".to_owned()),
        Effect::SetBatchSize(uuid, n) => control
            .set_batch_size(uuid, n)
            .await
            .map(|m| format!("BatchSize of {} is now {n}", m.spec.queue())),
    };
    result.map_err(|e| e.to_string())
}

/// Writes bytes to a file in the working directory.
fn save(name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let path = std::env::current_dir()?.join(name);
    std::fs::write(&path, bytes)?;
    Ok(format!("saved {} bytes to {}", bytes.len(), path.display()))
}
