//! Where HTTP invocations run: a few threads, each with a runtime of its own.
//!
//! On tokio's work-stealing runtime one invocation wakes threads on every
//! step (the engine's task, hyper's connection task, the I/O driver), and on
//! a busy two-core machine each wake-up waits for a core: measured with
//! aws-sdk-lambda against a local endpoint, 440 µs and 330 µs of CPU per
//! round trip, against 200 µs and 150 µs when the request and its
//! connection live on one single-threaded runtime. So each invoker is given
//! a lane (one thread per core, shared round-robin), and its requests, and
//! the pooled connections they open, stay on that lane.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::{Builder, Handle};

/// One lane's runtime. Kept for as long as the process runs.
#[derive(Clone, Debug)]
pub struct Lane(Handle, usize);

std::thread_local! {
    /// The lane this thread runs, if it is one.
    static THIS_LANE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

fn lanes() -> &'static [Lane] {
    static LANES: OnceLock<Vec<Lane>> = OnceLock::new();
    LANES.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n).filter_map(|i| start(i).ok()).collect()
    })
}

fn start(i: usize) -> std::io::Result<Lane> {
    let runtime = Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("mqtrigger-invoke-{i}"))
        .spawn(move || {
            THIS_LANE.set(Some(i));
            runtime.block_on(std::future::pending::<()>())
        })?;
    Ok(Lane(handle, i))
}

impl Lane {
    /// The next lane, round-robin (None if no thread could be started:
    /// then invocations run where they are called).
    pub fn next() -> Option<Lane> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let all = lanes();
        (!all.is_empty()).then(|| all[NEXT.fetch_add(1, Ordering::Relaxed) % all.len()].clone())
    }

    /// Whether the caller runs on this lane.
    pub fn is_current(&self) -> bool {
        THIS_LANE.get() == Some(self.1)
    }

    /// Starts `work` on this lane.
    pub fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.0.spawn(work));
    }

    /// Runs `work` on this lane and waits for it. Dropping the wait does
    /// not cancel the work: an invocation under way is never abandoned.
    pub async fn run<F>(&self, work: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(work).await.ok()
    }
}
