//! Following the engine from outside it: a snapshot to start from, then
//! every event, and a fresh snapshot whenever the follower fell behind.
//!
//! The console in this process and every console attached to `serve`
//! (through `api::watch`'s event stream) follow the engine with the same
//! [`follow`], so both see the same sequence and apply it the same way.

use super::{Control, EngineEvent, EngineStats};
use crate::mapping::Mapping;
use crate::store::DeadLetter;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Dead letters a follower is given, newest first.
pub const DEAD_LETTERS_SHOWN: usize = 200;

/// Items queued for a follower before the engine's stream is left to lag
/// (and the follower is given a snapshot instead).
const FOLLOWER_QUEUE: usize = 1024;

/// Everything a follower starts from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub stats: EngineStats,
    pub mappings: Vec<Mapping>,
    pub dead_letters: Vec<DeadLetter>,
}

/// What a follower is given, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FeedItem {
    /// The engine as it is now: replace everything with it. The first item,
    /// and again after the follower fell behind or reconnected.
    Synced(Box<Snapshot>),
    /// The next event, to be applied to the last snapshot.
    Event(EngineEvent),
    /// The dead letters, after a burst of events that made some.
    DeadLetters(Vec<DeadLetter>),
    /// The engine cannot be reached (only a remote follower says this);
    /// what is shown is the last picture. A `Synced` follows when it is back.
    Lost(String),
}

impl Control {
    /// The counts, the mappings and the dead letters, and a subscription to
    /// the events after those counts.
    pub fn snapshot(
        &self,
    ) -> anyhow::Result<(Snapshot, tokio::sync::broadcast::Receiver<EngineEvent>)> {
        let (mut stats, events) = self.watch();
        // Read after the counts: an event between the two is in the stream
        // and in the list, and applying it again changes nothing.
        let mappings = self.list()?;
        // Every mapping has counts, zeros until something happens.
        for m in &mappings {
            stats.mappings.entry(m.uuid).or_default();
        }
        let snapshot = Snapshot {
            stats,
            mappings,
            dead_letters: self.store().dead_letters(None, DEAD_LETTERS_SHOWN)?,
        };
        Ok((snapshot, events))
    }
}

/// Starts following `control`: items arrive on the receiver until it is
/// dropped or the engine stops.
pub fn follow(control: &Control) -> mpsc::Receiver<FeedItem> {
    let (tx, rx) = mpsc::channel(FOLLOWER_QUEUE);
    let control = control.clone();
    tokio::spawn(async move {
        if let Err(e) = forward(&control, &tx).await {
            let _ = tx.send(FeedItem::Lost(format!("{e:#}"))).await;
        }
    });
    rx
}

/// Ok when the follower went away or the engine stopped.
async fn forward(control: &Control, tx: &mpsc::Sender<FeedItem>) -> anyhow::Result<()> {
    let (snapshot, mut events) = control.snapshot()?;
    if tx.send(FeedItem::Synced(Box::new(snapshot))).await.is_err() {
        return Ok(());
    }
    let mut dead_letters_changed = false;
    loop {
        let received = tokio::select! {
            received = events.recv() => received,
            // The follower went away while nothing happened: stop now, not at the next event.
            () = tx.closed() => return Ok(()),
        };
        let item = match received {
            Ok(event) => {
                dead_letters_changed |= matches!(event, EngineEvent::DeadLettered { .. });
                FeedItem::Event(event)
            }
            // The follower was too slow to take what the engine sent:
            // counting on from here would be wrong, so it starts over.
            Err(RecvError::Lagged(_)) => {
                let (snapshot, fresh) = control.snapshot()?;
                events = fresh;
                dead_letters_changed = false;
                FeedItem::Synced(Box::new(snapshot))
            }
            Err(RecvError::Closed) => return Ok(()),
        };
        if tx.send(item).await.is_err() {
            return Ok(());
        }
        // Read the journal once per burst, not once per dead letter.
        if dead_letters_changed && events.is_empty() {
            dead_letters_changed = false;
            let letters = control.store().dead_letters(None, DEAD_LETTERS_SHOWN)?;
            if tx.send(FeedItem::DeadLetters(letters)).await.is_err() {
                return Ok(());
            }
        }
    }
}
