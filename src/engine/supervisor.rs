//! A mapping's task under supervision: a poller that fails or panics is
//! started again, with back-off. One mapping's trouble must neither take
//! the others down nor leave this one silently dead.

use super::context::TaskEnv;
use super::{RunSettings, poller, retry};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(super) async fn supervise(
    env: Arc<TaskEnv>,
    uuid: Uuid,
    cancel: CancellationToken,
    settings: watch::Receiver<RunSettings>,
    steps_taken: u64,
) {
    // The queue's backlog is watched as long as the mapping runs here, and
    // the watcher has ended when this task ends: it holds the engine's parts
    // (the store among them), which a stopped engine must let go of.
    let watching = cancel.child_token();
    let backlog = tokio::spawn(super::backlog::watch(env.clone(), uuid, watching.clone()));
    supervised(env, uuid, cancel, settings, steps_taken).await;
    watching.cancel();
    let _ = backlog.await;
}

async fn supervised(
    env: Arc<TaskEnv>,
    uuid: Uuid,
    cancel: CancellationToken,
    settings: watch::Receiver<RunSettings>,
    steps_taken: u64,
) {
    let mut backoff = retry::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    // Kept across restarts of the poller, so no step is taken twice.
    let stepped = Arc::new(AtomicU64::new(steps_taken));
    loop {
        let poller = tokio::spawn(poller::run(
            env.clone(),
            uuid,
            cancel.clone(),
            settings.clone(),
            stepped.clone(),
        ));
        let why = match poller.await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) if e.is_panic() => format!("it panicked: {e}"),
            Err(_) => return,
        };
        if cancel.is_cancelled() {
            return;
        }
        tracing::error!(mapping = %uuid, "mapping task failed ({why}); restarting it");
        let _ = env.mappings.modify(uuid, |m| {
            m.last_processing_result = format!("PROBLEM: mqtrigger restarts this mapping: {why}");
            Ok(())
        });
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}
