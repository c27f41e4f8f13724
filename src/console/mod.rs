//! The operations console: a ratatui app on an engine, its own or a service's.
//!
//! State lives in [`app::App`] and changes only through actions
//! ([`action::Action`]); keys become actions in [`keys`], by where the
//! operator is; drawing is a pure function of the state ([`ui::draw`]).
//! The engine is driven through one [`driver::Driver`]: the engine in this
//! process, or a service attached to. From the bottom up: [`text`] and
//! [`table`] (how things are worded and fitted), [`view`] (the engine as
//! the console sees it), [`lists`] (each panel's rows), [`popup`] (each
//! popup), [`app`] (routing), [`ui`] (drawing).

pub mod action;
pub mod app;
pub mod driver;
pub mod feed;
pub mod keys;
pub mod layout;
pub mod lists;
pub mod popup;
mod remote;
pub mod table;
pub mod text;
pub mod ui;
pub mod view;
pub mod widgets;

#[cfg(test)]
mod tests;

use action::{Action, Effect};
use anyhow::Result;
use app::App;
use crossterm::event::{Event, EventStream, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use driver::Driver;
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

/// Runs the console on `driver` until the user quits; the terminal is
/// restored on the way out. Quitting never stops a service attached to.
pub async fn run(driver: impl Driver) -> Result<()> {
    needs_a_terminal()?;
    // Before the screen is taken: a wrong URL or a refused signature is a
    // message on the terminal, not a blank console.
    let described = driver.describe().await?;
    let mut terminal = ratatui::try_init().map_err(|e| {
        anyhow::anyhow!(
            "cannot start the console on this terminal: {e}; run `mqtrigger serve` to run without one"
        )
    })?;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    let result = event_loop(&mut terminal, &driver, App::for_engine(described)).await;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    result
}

fn mouse(event: MouseEvent, screen: ratatui::layout::Rect, app: &App) -> Option<Action> {
    match event.kind {
        MouseEventKind::ScrollUp => Some(Action::Up),
        MouseEventKind::ScrollDown => Some(Action::Down),
        MouseEventKind::Down(MouseButton::Left) => {
            ui::mapping_row_at(screen, app, event.column, event.row).map(Action::Select)
        }
        _ => None,
    }
}

/// At most this many frames a second: a flood of engine events is drawn
/// as it stands after each burst, not once per event.
const FRAMES_PER_SECOND: u64 = 30;

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    driver: &impl Driver,
    mut app: App,
) -> Result<()> {
    let mut feed = EngineFeed::start(driver);
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
                Event::Key(key) if key.kind == KeyEventKind::Press => keys::action(app.context(), key),
                Event::Mouse(m) if matches!(app.mode, popup::Mode::Normal) => {
                    let size = terminal.size()?;
                    mouse(m, ratatui::layout::Rect::new(0, 0, size.width, size.height), &app)
                }
                _ => None,
            },
            Some(item) = feed.recv() => {
                feed.apply(&mut app, item);
                None
            }
            _ = tick.tick() => Some(Action::Tick),
            Some(done) = done_rx.recv() => Some(done),
        };
        // Something happened (a key, a resize, an event, a tick): draw it.
        dirty = true;
        if let Some(effect) = action.and_then(|a| app.update(a)) {
            if let Effect::Dump(file) = &effect {
                // The screen is the terminal's, not the engine's: written here.
                let said = dump(terminal, &app, file);
                let _ = done_tx.send(Action::Done(said));
                continue;
            }
            let driver = driver.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let _ = done.send(apply(&driver, effect, done.clone()).await);
            });
        }
    }
    Ok(())
}

/// Carries out an effect; what came of it, as the action that tells the
/// app (a toast, or what was fetched).
async fn apply(
    driver: &impl Driver,
    effect: Effect,
    tell: mpsc::UnboundedSender<Action>,
) -> Action {
    let result = match effect {
        Effect::Bulk(mapping, ids, action) => {
            let progress = Box::new(move |done, total| {
                let _ = tell.send(Action::Progress(done, total));
            });
            driver
                .bulk(mapping, ids, action, progress)
                .await
                .map(|summary| summary.sentence(action))
        }
        Effect::History(mapping, id) => {
            let fetched = driver.message_history(mapping, id).await;
            return Action::Timeline(Box::new(
                fetched.map(|t| (t, mapping)).map_err(|e| e.to_string()),
            ));
        }
        Effect::Enable(uuid) => driver
            .enable(uuid)
            .await
            .map(|m| format!("enabled {}", m.queue)),
        Effect::Disable(uuid) => driver
            .disable(uuid)
            .await
            .map(|m| format!("disabled {}", m.queue)),
        Effect::Pause(uuid) => driver.pause(uuid).await.map(|m| {
            format!(
                "paused {}: no new batch (p resumes, . lets one batch through)",
                m.queue
            )
        }),
        Effect::Resume(uuid) => driver
            .resume(uuid)
            .await
            .map(|m| format!("resumed {}", m.queue)),
        Effect::Step(uuid) => driver
            .step(uuid)
            .await
            .map(|m| format!("one batch through {}, then paused", m.queue)),
        Effect::Create(spec) => driver.create(*spec).await.map(|m| {
            format!(
                "created mapping {} of {} to {}",
                m.uuid, m.function_name, m.queue
            )
        }),
        Effect::Save(name, bytes) => {
            save(&name, &bytes).map_err(|e| crate::engine::ControlError::failed(format!("{e:#}")))
        }
        Effect::SetFilter(uuid, criteria) => {
            let removed = criteria.is_none();
            driver.set_filter_criteria(uuid, criteria).await.map(|m| {
                if removed {
                    format!("filter of {} removed", m.queue)
                } else {
                    format!("filter of {} applied", m.queue)
                }
            })
        }
        Effect::ReplayEvent(uuid, event) => driver.replay_event(uuid, event).await.map(|r| {
            format!(
                "replayed the batch; the function answered {}",
                crate::error_text::first_line(&r, 80)
            )
        }),
        Effect::Delete(uuid) => driver
            .delete(uuid)
            .await
            .map(|m| format!("mapping of {} deleted", m.queue)),
        Effect::Replay(mapping, id) => driver.replay(mapping, id).await.map(|r| {
            format!(
                "replayed; the function answered {}",
                crate::error_text::first_line(&r, 80)
            )
        }),
        Effect::Republish(mapping, id) => driver
            .republish(mapping, id)
            .await
            .map(|()| "republished to the source queue".to_owned()),
        Effect::SetBatchSize(uuid, n) => driver
            .set_batch_size(uuid, n)
            .await
            .map(|m| format!("BatchSize of {} is now {n}", m.queue)),
        Effect::Dump(file) => Ok(format!("{file}: the screen is written by the console")),
    };
    Action::Done(result.map_err(|e| e.to_string()))
}

/// `:dump FILE`: draws the screen once more and writes it as text.
fn dump(terminal: &mut ratatui::DefaultTerminal, app: &App, file: &str) -> Result<String, String> {
    let frame = terminal
        .draw(|frame| ui::draw(frame, app))
        .map_err(|e| format!("cannot draw the screen: {e}"))?;
    let text = screen_text(frame.buffer);
    std::fs::write(file, &text).map_err(|e| format!("cannot write {file}: {e}"))?;
    Ok(format!(
        "the screen ({} lines) is in {file}",
        text.lines().count()
    ))
}

/// A screen as text: one line per row, without trailing spaces.
pub fn screen_text(buffer: &ratatui::buffer::Buffer) -> String {
    let width = usize::from(buffer.area.width.max(1));
    let mut out = String::new();
    for row in buffer.content.chunks(width) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Writes bytes to a file in the working directory.
fn save(name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let path = std::env::current_dir()?.join(name);
    std::fs::write(&path, bytes)?;
    Ok(format!("saved {} bytes to {}", bytes.len(), path.display()))
}
