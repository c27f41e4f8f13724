//! What the console drives: the engine in this process ([`Control`]), or a
//! `serve` elsewhere (`api::remote::Remote`, over HTTP). The console knows
//! only [`Driver`]; which one it has shows only in the title bar.

use super::view::Choices;
use crate::engine::bulk::{BulkAction, BulkSummary};
use crate::engine::{Control, ControlError, FeedItem};
use crate::mapping::{Mapping, MappingSpec};
use std::future::Future;
use tokio::sync::mpsc;
use uuid::Uuid;

type Result<T> = std::result::Result<T, ControlError>;

/// Told (done, total) after each letter of a bulk action.
pub type Progress = Box<dyn Fn(usize, usize) + Send + Sync>;

/// What the console needs to know about the engine it drives.
#[derive(Debug, Clone, Default)]
pub struct Described {
    /// Where the engine runs, for the title bar: None for this process.
    pub endpoint: Option<String>,
    /// `--readonly`: changes are refused, and the title bar says so.
    pub readonly: bool,
    /// `[engine] max_redeliveries`, for the redeliveries histogram.
    pub max_redeliveries: u32,
    /// What the add-mapping form picks from.
    pub choices: Choices,
    /// Said once at the start (a state directory made just now).
    pub notice: Option<String>,
    /// With a store shared by several instances: the one driven.
    pub instance: Option<Uuid>,
}

/// The mapping a change was made to, for the toast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub uuid: Uuid,
    pub function_name: String,
    pub queue: String,
}

impl From<Mapping> for Changed {
    fn from(m: Mapping) -> Self {
        Changed {
            uuid: m.uuid,
            queue: m.spec.queue().to_owned(),
            function_name: m.spec.function_name,
        }
    }
}

/// The engine, as the console drives it. Every change goes through the
/// engine's own rules (its Control), here or in the service.
pub trait Driver: Clone + Send + Sync + 'static {
    fn describe(&self) -> impl Future<Output = Result<Described>> + Send;
    /// The engine's snapshot, then its events; see [`crate::engine::follow`].
    fn follow(&self) -> mpsc::Receiver<FeedItem>;
    fn enable(&self, uuid: Uuid) -> impl Future<Output = Result<Changed>> + Send;
    fn disable(&self, uuid: Uuid) -> impl Future<Output = Result<Changed>> + Send;
    fn set_batch_size(&self, uuid: Uuid, n: u32) -> impl Future<Output = Result<Changed>> + Send;
    /// None removes the filter.
    fn set_filter_criteria(
        &self,
        uuid: Uuid,
        criteria: Option<crate::mapping::FilterCriteria>,
    ) -> impl Future<Output = Result<Changed>> + Send;
    fn create(&self, spec: MappingSpec) -> impl Future<Output = Result<Changed>> + Send;
    fn delete(&self, uuid: Uuid) -> impl Future<Output = Result<Changed>> + Send;
    /// Invokes the mapping's function with a dead letter's record; its answer.
    fn replay(&self, mapping: Uuid, letter: i64) -> impl Future<Output = Result<String>> + Send;
    /// Invokes the mapping's function with this event; its answer.
    fn replay_event(
        &self,
        mapping: Uuid,
        event: bytes::Bytes,
    ) -> impl Future<Output = Result<String>> + Send;
    /// Puts a dead letter back on its source queue.
    fn republish(&self, mapping: Uuid, letter: i64) -> impl Future<Output = Result<()>> + Send;
    /// Takes no new batch until resumed (see `Control::pause`).
    fn pause(&self, uuid: Uuid) -> impl Future<Output = Result<Changed>> + Send;
    fn resume(&self, uuid: Uuid) -> impl Future<Output = Result<Changed>> + Send;
    /// One batch through a paused mapping, then paused again.
    fn step(&self, uuid: Uuid) -> impl Future<Output = Result<Changed>> + Send;
    /// Does `action` for each of these dead letters of `mapping`, one by
    /// one, telling `progress` (done, total) after each.
    fn bulk(
        &self,
        mapping: Uuid,
        ids: Vec<i64>,
        action: BulkAction,
        progress: Progress,
    ) -> impl Future<Output = Result<BulkSummary>> + Send;
    /// What happened to one message (see `engine::history`).
    fn message_history(
        &self,
        mapping: Uuid,
        id: String,
    ) -> impl Future<Output = Result<crate::engine::history::Timeline>> + Send;
}

impl Driver for Control {
    async fn describe(&self) -> Result<Described> {
        Ok(Described {
            endpoint: None,
            readonly: self.is_readonly(),
            max_redeliveries: self.config().engine.max_redeliveries,
            choices: Choices::from_config(self.config()),
            notice: self.store().is_fresh().then(|| self.store().fresh_notice()),
            instance: self.instance(),
        })
    }

    fn follow(&self) -> mpsc::Receiver<FeedItem> {
        crate::engine::follow(self)
    }

    async fn enable(&self, uuid: Uuid) -> Result<Changed> {
        Control::enable(self, uuid).await.map(Changed::from)
    }

    async fn disable(&self, uuid: Uuid) -> Result<Changed> {
        Control::disable(self, uuid).await.map(Changed::from)
    }

    async fn set_batch_size(&self, uuid: Uuid, n: u32) -> Result<Changed> {
        Control::set_batch_size(self, uuid, n)
            .await
            .map(Changed::from)
    }

    async fn set_filter_criteria(
        &self,
        uuid: Uuid,
        criteria: Option<crate::mapping::FilterCriteria>,
    ) -> Result<Changed> {
        Control::set_filter_criteria(self, uuid, criteria)
            .await
            .map(Changed::from)
    }

    async fn create(&self, spec: MappingSpec) -> Result<Changed> {
        Control::create(self, spec).await.map(Changed::from)
    }

    async fn delete(&self, uuid: Uuid) -> Result<Changed> {
        Control::delete(self, uuid).await.map(Changed::from)
    }

    async fn replay(&self, mapping: Uuid, letter: i64) -> Result<String> {
        Control::replay(self, mapping, letter).await
    }

    async fn replay_event(&self, mapping: Uuid, event: bytes::Bytes) -> Result<String> {
        Control::replay_event(self, mapping, event).await
    }

    async fn republish(&self, mapping: Uuid, letter: i64) -> Result<()> {
        Control::republish(self, mapping, letter).await
    }

    async fn pause(&self, uuid: Uuid) -> Result<Changed> {
        Control::pause(self, uuid).await.map(Changed::from)
    }

    async fn resume(&self, uuid: Uuid) -> Result<Changed> {
        Control::resume(self, uuid).await.map(Changed::from)
    }

    async fn step(&self, uuid: Uuid) -> Result<Changed> {
        Control::step(self, uuid).await.map(Changed::from)
    }

    async fn message_history(
        &self,
        mapping: Uuid,
        id: String,
    ) -> Result<crate::engine::history::Timeline> {
        Control::message_history(self, mapping, &id)
    }

    async fn bulk(
        &self,
        mapping: Uuid,
        ids: Vec<i64>,
        action: BulkAction,
        progress: Progress,
    ) -> Result<BulkSummary> {
        let filter = crate::engine::bulk::LetterFilter {
            ids: Some(ids),
            ..Default::default()
        };
        Control::bulk(self, mapping, &filter, action, progress).await
    }
}
