//! The console on a service attached to (`console --endpoint URL`): the
//! [`Driver`] of [`Remote`], the API's client of a running mqtrigger.

use super::driver::{Changed, Described, Driver, Progress};
use super::view::Choices;
use crate::api::EventSourceMappingConfiguration;
use crate::api::remote::Remote;
use crate::engine::bulk::{BulkAction, BulkSummary, Failure};
use crate::engine::{ControlError, FeedItem};
use crate::mapping::MappingSpec;
use bytes::Bytes;
use tokio::sync::mpsc;
use uuid::Uuid;

type Result<T> = std::result::Result<T, ControlError>;

impl Driver for Remote {
    async fn describe(&self) -> Result<Described> {
        let info = self.service().await?;
        Ok(Described {
            endpoint: Some(self.endpoint().to_owned()),
            readonly: info.readonly,
            max_redeliveries: info.max_redeliveries,
            choices: Choices::from_config(&info.config()),
            notice: None,
            instance: info.instance,
        })
    }

    fn follow(&self) -> mpsc::Receiver<FeedItem> {
        Remote::follow(self)
    }

    async fn enable(&self, uuid: Uuid) -> Result<Changed> {
        let m = self
            .update(uuid, serde_json::json!({ "Enabled": true }))
            .await?;
        Ok(changed(m))
    }

    async fn disable(&self, uuid: Uuid) -> Result<Changed> {
        let m = self
            .update(uuid, serde_json::json!({ "Enabled": false }))
            .await?;
        Ok(changed(m))
    }

    async fn set_batch_size(&self, uuid: Uuid, n: u32) -> Result<Changed> {
        let m = self
            .update(uuid, serde_json::json!({ "BatchSize": n }))
            .await?;
        Ok(changed(m))
    }

    async fn set_filter_criteria(
        &self,
        uuid: Uuid,
        criteria: Option<crate::mapping::FilterCriteria>,
    ) -> Result<Changed> {
        // Lambda reads an empty FilterCriteria as "no filter".
        let criteria = criteria.unwrap_or_default();
        let m = self
            .update(uuid, serde_json::json!({ "FilterCriteria": criteria }))
            .await?;
        Ok(changed(m))
    }

    async fn create(&self, spec: MappingSpec) -> Result<Changed> {
        Ok(changed(Remote::create(self, &spec).await?))
    }

    async fn delete(&self, uuid: Uuid) -> Result<Changed> {
        Ok(changed(Remote::delete(self, uuid).await?))
    }

    async fn replay(&self, mapping: Uuid, letter: i64) -> Result<String> {
        Remote::replay(self, mapping, letter).await
    }

    async fn replay_event(&self, mapping: Uuid, event: Bytes) -> Result<String> {
        Remote::replay_event(self, mapping, event).await
    }

    async fn republish(&self, mapping: Uuid, letter: i64) -> Result<()> {
        Remote::republish(self, mapping, letter).await
    }

    async fn pause(&self, uuid: Uuid) -> Result<Changed> {
        Ok(changed(self.operate(uuid, "pause").await?))
    }

    async fn resume(&self, uuid: Uuid) -> Result<Changed> {
        Ok(changed(self.operate(uuid, "resume").await?))
    }

    async fn step(&self, uuid: Uuid) -> Result<Changed> {
        Ok(changed(self.operate(uuid, "step").await?))
    }

    /// One request a letter (the service's own replay, republish and
    /// delete), so the bar moves as they go.
    async fn bulk(
        &self,
        mapping: Uuid,
        ids: Vec<i64>,
        action: BulkAction,
        progress: Progress,
    ) -> Result<BulkSummary> {
        let mut summary = BulkSummary {
            total: ids.len(),
            ..BulkSummary::default()
        };
        for (i, id) in ids.iter().enumerate() {
            let done = match action {
                BulkAction::Replay => Remote::replay(self, mapping, *id).await.map(drop),
                BulkAction::Republish => Remote::republish(self, mapping, *id).await,
                BulkAction::Delete => self.delete_dead_letter(mapping, *id).await,
            };
            match done {
                Ok(()) => summary.done += 1,
                Err(e) => summary.failed.push(Failure {
                    id: *id,
                    why: e.to_string(),
                }),
            }
            progress(i + 1, summary.total);
        }
        Ok(summary)
    }

    async fn message_history(
        &self,
        mapping: Uuid,
        id: String,
    ) -> Result<crate::engine::history::Timeline> {
        Remote::message_history(self, mapping, &id).await
    }
}

/// The mapping a change was made to, from the API's answer.
fn changed(m: EventSourceMappingConfiguration) -> Changed {
    Changed {
        uuid: m.uuid,
        function_name: m
            .function_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned(),
        queue: m.queues.into_iter().next().unwrap_or_default(),
    }
}
