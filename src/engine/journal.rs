//! The thread that writes batch outcomes to the store, off the hot path: a
//! disk write never sits between two invocations. The batch history is for
//! people; a crash may lose its last entries, never a message (dead letters
//! are written before they are settled, by the poller itself).

use crate::store::{BatchRecord, Store};
use std::sync::Arc;

pub(super) struct Journal {
    records: std::sync::mpsc::Sender<BatchRecord>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Journal {
    pub(super) fn start(store: Arc<Store>) -> Journal {
        let (records, rx) = std::sync::mpsc::channel::<BatchRecord>();
        let thread = std::thread::Builder::new()
            .name("mqtrigger-journal".into())
            .spawn(move || {
                // Ends when the engine stops sending.
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter().take(999));
                    if let Err(e) = store.add_batches(&batch) {
                        tracing::warn!("cannot journal {} batch(es): {e:#}", batch.len());
                    }
                }
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("no batch history: cannot start its thread: {e}");
                None
            }
        };
        Journal { records, thread }
    }

    pub(super) fn record(&self, record: BatchRecord) {
        let _ = self.records.send(record);
    }

    /// Writes what is queued and lets the store go.
    pub(super) async fn finish(self) {
        drop(self.records);
        if let Some(thread) = self.thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
