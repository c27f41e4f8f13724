//! One mapping's task: connect, then consume until the session ends; again.
//!
//! A session is one flat loop over four stages: gather (the batcher reads
//! the source), invoke (the session's [`Runner`] runs each batch as a task
//! of its own, at most MaximumConcurrency at once, see `attempts.rs`),
//! settle (ack or dead letters, see `settle.rs`), and the session's end
//! (stop, new settings, a lost connection). A stop code ends the task with the reason in the
//! mapping; a broker that goes away is retried with back-off.

use super::RunSettings;
use super::attempts::{self, Delivered};
use super::batch::{Batch, Batcher, Gathered};
use super::context::TaskEnv;
use super::context::{Context, SessionEnd};
use super::events::BatchId;
use super::retry::Backoff;
use super::settle;
use super::turns::Turns;
use super::wiring::Consumer;
use crate::invoke::{InvokeError, Invoker};
use crate::mapping::{Mapping, StateTransitionReason};
use crate::source::{DeadLetterReason, Source, SourceError};
use crate::stamps::{self, Stage};
use crate::telemetry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use std::time::SystemTime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

pub(super) async fn run(
    env: Arc<TaskEnv>,
    uuid: Uuid,
    cancel: CancellationToken,
    settings: watch::Receiver<RunSettings>,
    stepped: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mapping = env.mappings.get(uuid)?;
    let span = tracing::info_span!("mapping", %uuid, function = %mapping.spec.function_name, queue = %mapping.spec.queue());
    let on_failure = crate::validation::on_failure(&mapping.spec, env.config());
    let mut ctx = Context::new(env, uuid, mapping.spec.queue().to_owned(), cancel);
    match on_failure {
        Ok(destination) => ctx.on_failure = destination,
        // The config changed under a stored mapping: say what to fix.
        Err(e) => return ctx.stop(StateTransitionReason::EsmConfigNotValid, e.to_string()),
    }
    sessions(Arc::new(ctx), settings, stepped)
        .instrument(span)
        .await
}

/// Connects and consumes, again and again, until cancelled or stopped.
async fn sessions(
    ctx: Arc<Context>,
    mut settings: watch::Receiver<RunSettings>,
    stepped: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let env = &ctx.env;
    let mapping = env.mappings.get(ctx.uuid)?;
    let invoker = match env.wiring.invoker(env.wires(), &mapping).await {
        Ok(i) => i,
        Err(InvokeError::ConfigNotValid(m)) => {
            return ctx.stop(StateTransitionReason::FunctionConfigNotValid, m);
        }
        Err(e) => return ctx.stop(StateTransitionReason::FunctionConfigNotValid, e.to_string()),
    };
    let mut reconnect = Backoff::new(Duration::from_secs(1), env.config().engine.reconnect_max());
    // Read a refused Secrets Manager secret again once, not forever.
    let mut reread_secret = false;
    loop {
        if ctx.cancel.is_cancelled() {
            return Ok(());
        }
        let mapping = env.mappings.get(ctx.uuid)?;
        let current = settings.borrow_and_update().clone();
        // Steps asked for before the task was started are not taken: a
        // restart must not let batches through a paused mapping.
        let step = current.paused && current.steps > stepped.load(Ordering::Relaxed);
        if current.paused && !step {
            // Paused: no consumer at all, so the broker keeps every message
            // for the queue (and for other consumers) until the operator
            // resumes or steps.
            tokio::select! {
                _ = ctx.cancel.cancelled() => return Ok(()),
                changed = settings.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return Ok(()),
                },
            }
        }
        let consumer = Consumer {
            mapping: &mapping,
            prefetch: super::prefetch(current.batch_size, current.concurrency),
            seen_before: ctx.unsettled.seen_before(),
            large_frames: ctx.large_frames.clone(),
            in_order: current.concurrency <= 1,
        };
        let connected = tokio::select! {
            _ = ctx.cancel.cancelled() => return Ok(()),
            s = env.wiring.connect(env.wires(), consumer) => s,
        };
        let mut source = match connected {
            Ok(s) => s,
            Err(e) => match e.stop_code() {
                None => {
                    let delay = reconnect.next_delay();
                    tracing::warn!("{e}; retrying in {delay:?}");
                    ctx.note_result(format!("PROBLEM: Connection error. {e}"));
                    tokio::select! {
                        _ = ctx.cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
                // A refused login may be a secret rotated since it was read:
                // read it once more before stopping.
                Some(_)
                    if e.is_refused_login()
                        && !reread_secret
                        && env.wiring.forget_secret(env.wires(), &mapping) =>
                {
                    tracing::warn!("{e}; reading the secret again");
                    reread_secret = true;
                    continue;
                }
                Some(code) => return ctx.stop(code, e.to_string()),
            },
        };
        reread_secret = false;
        let mut session = Session::new(&ctx, invoker.clone(), &mapping, &current);
        if step {
            session.batches_left = Some(1);
        }
        let (end, progressed) = session.consume(&mut *source, &mut settings).await?;
        source.close().await;
        ctx.unsettled.session_ended();
        // A connection that fails again right away is no reason to try
        // every second: the back-off starts over only once a session got
        // something done.
        if progressed {
            reconnect.reset();
        }
        match end {
            SessionEnd::Cancelled => return Ok(()),
            SessionEnd::SettingsChanged => continue,
            SessionEnd::Stepped => {
                stepped.fetch_add(1, Ordering::Relaxed);
            }
            SessionEnd::Stop(code, m) => return ctx.stop(code, m),
            SessionEnd::Lost(m) => {
                let delay = reconnect.next_delay();
                tracing::warn!("{m}; reconnecting in {delay:?}");
                ctx.note_result(format!("PROBLEM: Connection error. {m}"));
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// One connected session's stages and what is between them.
struct Session {
    ctx: Arc<Context>,
    batcher: Batcher,
    /// At most this many batches with the function at once.
    slots: usize,
    /// Batches gathered ahead of those with the function (`batches_ahead`).
    ahead: usize,
    /// The invoke stage: batches go in, their outcomes come back.
    runner: Runner,
    end: Option<SessionEnd>,
    /// Something came from the broker in this session.
    progressed: bool,
    /// How many more batches this session may hand to the function: one
    /// for a step through a paused mapping, else no limit.
    batches_left: Option<usize>,
}

impl Session {
    fn new(
        ctx: &Arc<Context>,
        invoker: Arc<dyn Invoker>,
        mapping: &Mapping,
        settings: &RunSettings,
    ) -> Session {
        let frame = super::event_frame(ctx.env.config(), mapping);
        let slots = settings.concurrency.max(1) as usize;
        Session {
            ctx: ctx.clone(),
            runner: Runner::start(
                ctx.clone(),
                invoker,
                Arc::new(attempts::Invocation {
                    frame: frame.clone(),
                    item_failures: mapping.spec.reports_item_failures(),
                }),
                slots,
            ),
            batcher: Batcher::new(
                frame,
                settings.batch_size as usize,
                settings.window,
                mapping.spec.filters().ok().flatten(),
            )
            .naming_records(mapping.spec.reports_item_failures()),
            slots,
            ahead: super::batches_ahead(settings.batch_size) as usize,
            end: None,
            progressed: false,
            batches_left: None,
        }
    }

    /// Gathers batches, has the runner invoke up to MaximumConcurrency of
    /// them at once, and settles each as it finishes, until the session
    /// ends and every batch under way is settled. Batches gathered ahead
    /// (`batches_ahead`) wait with the runner, so one starts the moment a
    /// slot frees, even while the loop settles the last or the broker is
    /// slow to deliver the next. Says how it ended, and whether anything came from the broker.
    async fn consume(
        mut self,
        source: &mut dyn Source,
        settings: &mut watch::Receiver<RunSettings>,
    ) -> anyhow::Result<(SessionEnd, bool)> {
        loop {
            self.hand_over_due();
            if let Some(end) = &self.end {
                // Nothing new starts; what is under way finishes and is
                // settled. A step's batch is under way even before its turn
                // comes: it goes to the function.
                if !matches!(end, SessionEnd::Stepped) {
                    self.runner.close();
                }
                if self.runner.outstanding == 0 {
                    return Ok((end.clone(), self.progressed));
                }
            }
            let slot_free = self.runner.outstanding < self.slots;
            let may_gather =
                self.end.is_none() && self.runner.outstanding < self.slots + self.ahead;
            let ended = tokio::select! {
                // Settling first keeps the broker's unacked count low.
                biased;
                done = self.runner.finished(), if self.runner.outstanding > 0 => match done? {
                    Some(done) => settled(&self.ctx, source, done).await?,
                    None => None,
                },
                _ = self.ctx.cancel.cancelled(), if self.end.is_none() => Some(SessionEnd::Cancelled),
                changed = settings.changed(), if self.end.is_none() => Some(match changed {
                    Ok(()) => SessionEnd::SettingsChanged,
                    Err(_) => SessionEnd::Cancelled,
                }),
                gathered = self.batcher.gather(source, !slot_free), if may_gather => {
                    self.gathered(source, gathered).await?
                }
            };
            if let Some(end) = ended {
                self.end.get_or_insert(end);
            }
        }
    }

    /// What the gather stage produced goes where it belongs.
    async fn gathered(
        &mut self,
        source: &mut dyn Source,
        gathered: Result<Gathered, SourceError>,
    ) -> anyhow::Result<Option<SessionEnd>> {
        self.progressed |= gathered.is_ok();
        let ctx = &self.ctx;
        Ok(match gathered {
            Err(e) => Some(match e.stop_code() {
                Some(code) => SessionEnd::Stop(code, e.to_string()),
                None => SessionEnd::Lost(e.to_string()),
            }),
            Ok(Gathered::Batch(batch)) => {
                ctx.received(&batch.deliveries);
                self.hand_over(batch)
            }
            Ok(Gathered::Filtered(d)) => {
                ctx.received(std::slice::from_ref(&d));
                settle::ack_filtered(ctx, source, d).await
            }
            Ok(Gathered::TooLarge(d)) => {
                ctx.received(std::slice::from_ref(&d));
                let reason = DeadLetterReason::TooLarge {
                    bytes: d.record.len(),
                };
                settle::dead_letter(ctx, source, vec![d], &reason, 0, None, None).await?
            }
        })
    }

    /// A partial batch whose window has closed goes to a free slot.
    fn hand_over_due(&mut self) {
        if self.end.is_some() || self.runner.outstanding >= self.slots {
            return;
        }
        if let Some(due) = self.batcher.take_due() {
            self.ctx.received(&due.deliveries);
            if let Some(end) = self.hand_over(due) {
                self.end = Some(end);
            }
        }
    }

    /// A gathered batch goes to the runner; the session ends once it has
    /// handed over the batches it may (a step's one).
    fn hand_over(&mut self, batch: Batch) -> Option<SessionEnd> {
        self.runner.invoke(batch);
        let left = self.batches_left.as_mut()?;
        *left = left.saturating_sub(1);
        (*left == 0).then_some(SessionEnd::Stepped)
    }
}

/// Settles a batch (`settle::settle`), as a span of its own.
async fn settled(
    ctx: &Context,
    source: &mut dyn Source,
    done: Delivered,
) -> anyhow::Result<Option<SessionEnd>> {
    let traces = telemetry::distinct(done.deliveries().filter_map(|d| d.trace.as_ref()));
    let (batch, messages) = (done.batch_id.0, done.deliveries().count());
    let start = SystemTime::now();
    stamps::mark(batch, Stage::Finished);
    let end = settle::settle(ctx, source, done).await;
    stamps::mark(batch, Stage::Settled);
    let about = telemetry::About {
        mapping: ctx.uuid,
        queue: &ctx.queue,
        batch,
        messages,
        traces: &traces,
    };
    let failed = match &end {
        Ok(Some(SessionEnd::Lost(why))) => Some(why.clone()),
        Err(e) => Some(e.to_string()),
        _ => None,
    };
    telemetry::record(
        "settle",
        &about,
        start,
        SystemTime::now(),
        failed.as_deref(),
    );
    end
}

/// The invoke stage's driver: a task that starts each batch the moment it
/// is handed over, in order, at most MaximumConcurrency of them with the
/// function at once and the next one ready to go (`turns.rs`), then
/// reports how each ended. It runs on the invoker's lane when it has one
/// (`invoke::lanes`): from a function's answer to the next request,
/// nothing waits for another thread.
struct Runner {
    batches: Option<mpsc::UnboundedSender<(BatchId, Batch)>>,
    finished: mpsc::UnboundedReceiver<Delivered>,
    /// Batches handed over and not yet reported: running or about to.
    outstanding: usize,
    ctx: Arc<Context>,
}

impl Runner {
    fn start(
        ctx: Arc<Context>,
        invoker: Arc<dyn Invoker>,
        invocation: Arc<attempts::Invocation>,
        slots: usize,
    ) -> Runner {
        let (batches, queued) = mpsc::unbounded_channel();
        let (report, finished) = mpsc::unbounded_channel();
        let lane = invoker.lane();
        let work = run_batches(ctx.clone(), invoker, invocation, slots, queued, report)
            .instrument(tracing::Span::current());
        match lane {
            Some(lane) => lane.spawn(work),
            None => drop(tokio::spawn(work)),
        }
        Runner {
            batches: Some(batches),
            finished,
            outstanding: 0,
            ctx,
        }
    }

    fn invoke(&mut self, batch: Batch) {
        let id = self.ctx.env.hub.next_batch_id();
        if let Some(opened) = batch.opened {
            stamps::mark_at(id.0, Stage::Opened, opened);
            stamps::mark(id.0, Stage::Handed);
            let traces = batch.traces();
            let about = telemetry::About {
                mapping: self.ctx.uuid,
                queue: &self.ctx.queue,
                batch: id.0,
                messages: batch.len(),
                traces: &traces,
            };
            telemetry::record("gather", &about, opened, SystemTime::now(), None);
        }
        self.ctx
            .env
            .hub
            .batched(self.ctx.uuid, id, &batch.deliveries);
        if let Some(to) = &self.batches
            && to.send((id, batch)).is_ok()
        {
            self.outstanding += 1;
        }
    }

    /// Batches not with the function yet are let go (they report
    /// `Cancelled`, and the broker has them back when the session's source
    /// closes); those with it finish.
    fn close(&mut self) {
        self.batches = None;
    }

    /// The next batch whose invocations ended; None once the runner,
    /// closed, has reported all it ran (what was queued was let go).
    async fn finished(&mut self) -> anyhow::Result<Option<Delivered>> {
        match self.finished.recv().await {
            Some(done) => {
                self.outstanding -= 1;
                Ok(Some(done))
            }
            None if self.batches.is_none() => {
                self.outstanding = 0;
                Ok(None)
            }
            None => anyhow::bail!("the task invoking the function ended unexpectedly"),
        }
    }
}

async fn run_batches(
    ctx: Arc<Context>,
    invoker: Arc<dyn Invoker>,
    invocation: Arc<attempts::Invocation>,
    slots: usize,
    mut queued: mpsc::UnboundedReceiver<(BatchId, Batch)>,
    report: mpsc::UnboundedSender<Delivered>,
) {
    let turns = Turns::new(slots);
    let mut running = JoinSet::new();
    let mut open = true;
    loop {
        if !open && running.is_empty() {
            return;
        }
        tokio::select! {
            biased;
            Some(done) = running.join_next(), if !running.is_empty() => {
                let Ok(done) = done else {
                    tracing::error!("an invocation task panicked; its batch returns to the broker");
                    return;
                };
                if report.send(done).is_err() {
                    return;
                }
            }
            next = queued.recv(), if open => match next {
                // Started at once, in order: it builds its event and
                // request while the batches before it are with the
                // function, then waits for its turn (`turns.rs`).
                Some((id, batch)) => {
                    let turn = turns.join();
                    let attempts = attempts::invoke_batch(
                        ctx.clone(),
                        invoker.clone(),
                        invocation.clone(),
                        turn,
                        id,
                        batch,
                    );
                    running.spawn(attempts);
                }
                None => {
                    open = false;
                    turns.close();
                }
            },
        }
    }
}
