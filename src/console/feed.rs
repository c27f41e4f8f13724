//! The console's side of the engine's stream ([`crate::engine::follow`]):
//! a snapshot, then every event applied to the console's copy the way the
//! engine applies them. When the console falls behind (a flood of small
//! batches) or the service comes back, a new snapshot replaces what it had
//! instead of adding up what it still has: a number on the screen is the
//! engine's number.

use super::action::Action;
use super::app::App;
use super::driver::Driver;
use crate::engine::FeedItem;
use tokio::sync::mpsc;

/// Items applied between two looks at the keyboard.
const ITEMS_PER_TURN: usize = 4096;

pub struct EngineFeed {
    items: mpsc::Receiver<FeedItem>,
    /// Snapshots taken after the first: times the console fell behind or
    /// the service came back.
    resyncs: u64,
    synced: bool,
}

impl EngineFeed {
    pub fn start(driver: &impl Driver) -> EngineFeed {
        EngineFeed {
            items: driver.follow(),
            resyncs: 0,
            synced: false,
        }
    }

    /// Waits for the next item (cancel-safe). None once the engine is gone.
    pub async fn recv(&mut self) -> Option<FeedItem> {
        self.items.recv().await
    }

    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Applies `first` and whatever is queued behind it (up to a turn's
    /// worth), so the next frame shows them all.
    pub fn apply(&mut self, app: &mut App, first: FeedItem) {
        let mut next = Some(first);
        let mut applied = 0;
        while let Some(item) = next.take() {
            if matches!(item, FeedItem::Synced(_)) {
                self.resyncs += u64::from(self.synced);
                self.synced = true;
            }
            app.update(Action::Feed(item));
            applied += 1;
            if applied < ITEMS_PER_TURN {
                next = self.items.try_recv().ok();
            }
        }
    }
}
