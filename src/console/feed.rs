//! The console's side of the engine's stream: a snapshot of the counts,
//! then every event after it applied to the console's copy, the way the
//! engine applies them. When the console falls behind (a flood of small
//! batches), it takes the counts from the engine again instead of adding up
//! what it still has: a number on the screen is the engine's number.

use super::action::Action;
use super::app::App;
use crate::engine::{Control, EngineEvent};
use anyhow::Result;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// Engine events applied between two looks at the keyboard.
const EVENTS_PER_TURN: usize = 4096;

/// Dead letters the console lists.
const DEAD_LETTERS_SHOWN: usize = 200;

/// The mappings and dead letters from the store.
pub fn load(control: &Control) -> Result<Action> {
    Ok(Action::Loaded {
        mappings: control.list()?,
        dead_letters: control.store().dead_letters(None, DEAD_LETTERS_SHOWN)?,
    })
}

pub struct EngineFeed {
    events: broadcast::Receiver<EngineEvent>,
    /// Times the console fell behind and took the counts again.
    resyncs: u64,
}

impl EngineFeed {
    /// Starts `app` from the engine as it is now.
    pub fn start(control: &Control, app: &mut App) -> Result<EngineFeed> {
        // Subscribed and counted in one step: the events after the snapshot.
        let (stats, events) = control.watch();
        app.update(Action::Synced(stats));
        app.update(load(control)?);
        Ok(EngineFeed { events, resyncs: 0 })
    }

    /// Waits for the engine's next event (cancel-safe). None once the engine is gone.
    pub async fn recv(&mut self) -> Option<Result<EngineEvent, u64>> {
        match self.events.recv().await {
            Ok(event) => Some(Ok(event)),
            Err(RecvError::Lagged(n)) => Some(Err(n)),
            Err(RecvError::Closed) => None,
        }
    }

    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Applies `first` and whatever is queued behind it (up to a turn's
    /// worth), so the next frame shows them all.
    pub fn apply(
        &mut self,
        control: &Control,
        app: &mut App,
        first: Result<EngineEvent, u64>,
    ) -> Result<()> {
        let mut next = Some(first);
        let mut reload = false;
        let mut applied = 0;
        while let Some(event) = next.take() {
            match event {
                Ok(event) => {
                    reload |= matches!(event, EngineEvent::DeadLettered { .. });
                    app.update(Action::Engine(event));
                }
                Err(_missed) => {
                    self.resyncs += 1;
                    let (stats, events) = control.watch();
                    self.events = events;
                    app.update(Action::Synced(stats));
                    reload = true;
                }
            }
            applied += 1;
            if applied < EVENTS_PER_TURN {
                next = match self.events.try_recv() {
                    Ok(e) => Some(Ok(e)),
                    Err(TryRecvError::Lagged(n)) => Some(Err(n)),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => None,
                };
            }
        }
        if reload {
            app.update(load(control)?);
        }
        Ok(())
    }
}
