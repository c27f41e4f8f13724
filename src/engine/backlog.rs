//! The BACKLOG of a running mapping: the broker is asked how many messages
//! wait in its queue every `[engine] backlog_interval_ms` (the wiring knows
//! how, `source::backlog`), and each new answer goes to the hub as an
//! event, so the counts, the console and `/metrics` have it. Only what
//! changed is told: a steady queue costs its watchers nothing.

use super::context::TaskEnv;
use super::events::EngineEvent;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Asks until `cancel` (the mapping's task ends); paused mappings too,
/// since their queue is what an operator watches then.
pub(super) async fn watch(env: Arc<TaskEnv>, uuid: Uuid, cancel: CancellationToken) {
    let every = env.config().engine.backlog_interval_ms;
    if every == 0 {
        return;
    }
    let mut last = None;
    loop {
        let Ok(mapping) = env.mappings.get(uuid) else {
            return;
        };
        let backlog = tokio::select! {
            _ = cancel.cancelled() => return,
            backlog = env.wiring.backlog(env.wires(), &mapping) => backlog,
        };
        if last.as_ref() != Some(&backlog) {
            last = Some(backlog.clone());
            env.hub.emit(EngineEvent::Backlog {
                mapping: uuid,
                backlog,
                at: Utc::now(),
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(every)) => {}
        }
    }
}
