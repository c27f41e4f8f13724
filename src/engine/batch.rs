//! Where messages become batches.
//!
//! A batch flushes at BatchSize records, when MaximumBatchingWindowInSeconds
//! has passed since its first message, or before the next record would push
//! the event past 6 MB; whichever comes first. A record that could never fit
//! an event on its own is handed back to be dead-lettered, and so is a
//! message that matches no filter (to be acked): the batcher reads the
//! source, it never settles anything.

use super::events::CloseReason;
use crate::event::{EventFrame, MAX_EVENT_BYTES};
use crate::filter::Filters;
use crate::source::{Delivery, Source, SourceError};
use std::time::Duration;
use tokio::time::Instant;

/// The messages of one invocation.
#[derive(Debug, Default)]
pub struct Batch {
    pub deliveries: Vec<Delivery>,
    record_bytes: usize,
    /// Which limit closed it.
    pub closed_by: CloseReason,
    /// When its first message was gathered (the gathering span's start).
    pub opened: Option<std::time::SystemTime>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.deliveries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }

    /// Its messages' traces, each once (the first is the parent of its spans).
    pub fn traces(&self) -> Vec<crate::trace::TraceParent> {
        crate::telemetry::distinct(self.deliveries.iter().filter_map(|d| d.trace.as_ref()))
    }

    /// Size of the event this batch makes.
    pub fn event_bytes(&self, frame: &EventFrame) -> usize {
        frame.event_size(self.deliveries.len(), self.record_bytes)
    }

    /// The event of this batch. A retry (`redelivered`) marks every record
    /// redelivered: the function saw these messages before.
    pub fn event(&self, frame: &EventFrame, redelivered: bool) -> Vec<u8> {
        fn queue(d: &Delivery) -> Option<&str> {
            d.queue.as_deref()
        }
        if !redelivered {
            return frame.assemble_by_queue(
                self.deliveries
                    .iter()
                    .map(|d| (queue(d), d.record.as_slice())),
            );
        }
        let marked: Vec<_> = self
            .deliveries
            .iter()
            .map(|d| crate::event::mark_redelivered(&d.record))
            .collect();
        frame.assemble_by_queue(
            self.deliveries
                .iter()
                .zip(&marked)
                .map(|(d, r)| (queue(d), r.as_ref())),
        )
    }

    fn fits(&self, frame: &EventFrame, d: &Delivery) -> bool {
        frame.event_size(
            self.deliveries.len() + 1,
            self.record_bytes + d.record.len(),
        ) <= MAX_EVENT_BYTES
    }

    fn push(&mut self, mut d: Delivery) {
        self.opened.get_or_insert_with(std::time::SystemTime::now);
        self.record_bytes += d.record.len();
        // The filters have seen it; the record keeps it.
        d.body = bytes::Bytes::new();
        d.record.shrink_to_fit();
        self.deliveries.push(d);
    }

    /// Keeps the messages that `keep` accepts and returns the others.
    pub fn split_off(&mut self, mut keep: impl FnMut(&Delivery) -> bool) -> Vec<Delivery> {
        let (kept, removed): (Vec<_>, Vec<_>) = self.deliveries.drain(..).partition(|d| keep(d));
        self.record_bytes = kept.iter().map(|d| d.record.len()).sum();
        self.deliveries = kept;
        removed
    }
}

/// What the batcher produced.
#[derive(Debug)]
pub enum Gathered {
    Batch(Batch),
    /// One record larger than any event may be.
    TooLarge(Delivery),
    /// A message that matched no filter.
    Filtered(Delivery),
}

/// Gathers batches from a source, holding back the record that did not fit.
pub struct Batcher {
    pub frame: EventFrame,
    pub batch_size: usize,
    pub window: Duration,
    held: Option<Delivery>,
    /// The batch being gathered and when its window closes.
    partial: Option<(Batch, Instant)>,
    filters: Option<Filters>,
    /// A record whose message the broker gave no id carries the id the
    /// engine gave it (`mqtriggerMessageId`), so a function that reports
    /// batch item failures can name it.
    name_records: bool,
}

impl Batcher {
    pub fn new(
        frame: EventFrame,
        batch_size: usize,
        window: Duration,
        filters: Option<Filters>,
    ) -> Self {
        Self {
            frame,
            batch_size: batch_size.max(1),
            window,
            held: None,
            partial: None,
            filters,
            name_records: false,
        }
    }

    /// See [`Batcher::name_records`]: on for a function that reports batch
    /// item failures.
    pub fn naming_records(mut self, on: bool) -> Self {
        self.name_records = on;
        self
    }

    /// A delivery with an id, taken while its body is at hand (and written
    /// into its record when [`Self::name_records`]).
    fn identified(&self, mut d: Delivery) -> Delivery {
        crate::stamps::mark(0, crate::stamps::Stage::Received);
        if d.identify() && self.name_records {
            d.record = crate::event::with_field(&d.record, "mqtriggerMessageId", d.label());
        }
        d
    }

    fn passes(&self, d: &Delivery) -> bool {
        self.filters.as_ref().is_none_or(|f| f.matches(&d.body))
    }

    fn too_large(&self, d: &Delivery) -> bool {
        self.frame.event_size(1, d.record.len()) > MAX_EVENT_BYTES
    }

    /// Waits for the next batch. Cancel-safe: what was gathered stays in the
    /// batcher for the next call, so the engine can stop waiting to settle
    /// another batch and come back.
    ///
    /// With `hold_open` the window does not close the batch: no slot is
    /// free to invoke it yet, so it keeps filling until it is full or the
    /// caller takes it with [`Self::take_due`].
    pub async fn gather(
        &mut self,
        source: &mut dyn Source,
        hold_open: bool,
    ) -> Result<Gathered, SourceError> {
        if self.partial.is_none() {
            let first = match self.held.take() {
                Some(d) => d,
                None => self.identified(source.next().await?),
            };
            if !self.passes(&first) {
                return Ok(Gathered::Filtered(first));
            }
            if self.too_large(&first) {
                return Ok(Gathered::TooLarge(first));
            }
            let mut batch = Batch::default();
            batch.push(first);
            self.partial = Some((batch, Instant::now() + self.window));
        }
        // One timer for the whole window, not one per message.
        let window = tokio::time::sleep_until(self.partial.as_ref().expect("set above").1);
        tokio::pin!(window);
        let closed_by = loop {
            let Some((batch, _)) = &self.partial else {
                unreachable!("set above")
            };
            if batch.len() >= self.batch_size {
                break CloseReason::Count;
            }
            let next = if hold_open {
                self.identified(source.next().await?)
            } else {
                tokio::select! {
                    biased;
                    next = source.next() => self.identified(next?),
                    _ = &mut window => break CloseReason::Window,
                }
            };
            if !self.passes(&next) {
                // The batch so far stays here for the next call.
                return Ok(Gathered::Filtered(next));
            }
            let too_large = self.too_large(&next);
            let Some((batch, _)) = &mut self.partial else {
                unreachable!("set above")
            };
            if too_large || !batch.fits(&self.frame, &next) {
                self.held = Some(next);
                break CloseReason::Size;
            }
            batch.push(next);
        };
        let (mut batch, _) = self.partial.take().expect("set above");
        batch.closed_by = closed_by;
        Ok(Gathered::Batch(batch))
    }

    /// The batch being gathered, if its window has closed.
    pub fn take_due(&mut self) -> Option<Batch> {
        match &self.partial {
            Some((_, deadline)) if Instant::now() >= *deadline => {
                self.partial.take().map(|(mut batch, _)| {
                    batch.closed_by = CloseReason::Window;
                    batch
                })
            }
            _ => None,
        }
    }

    /// Takes the held-back record, if any (when the batcher is dropped, the
    /// caller must know it still owns one unsettled message).
    pub fn take_held(&mut self) -> Option<Delivery> {
        self.held.take()
    }
}
