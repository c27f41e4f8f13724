//! The service's own operations on a mapping's flow and dead letters, as
//! the attached console and the CLI call them: pause, resume and step, a
//! message's history, dead letters listed, acted on in bulk, and deleted
//! one by one.

use super::{PREFIX, Remote, Result};
use crate::api::EventSourceMappingConfiguration;
use crate::engine::bulk::{BulkAction, BulkSummary, LetterFilter};
use crate::store::DeadLetter;
use bytes::Bytes;
use hyper::Method;
use uuid::Uuid;

impl Remote {
    /// Pauses the mapping, resumes it, or lets one batch through
    /// (`what`: "pause", "resume" or "step").
    pub async fn operate(
        &self,
        mapping: Uuid,
        what: &str,
    ) -> Result<EventSourceMappingConfiguration> {
        let path = format!("{PREFIX}/mappings/{mapping}/{what}");
        self.call(Method::POST, &path, Bytes::new()).await
    }

    /// One mapping as the service holds it, with mqtrigger's own fields
    /// (`Mqtrigger.Paused`), which aws-sdk-lambda would pass over: `drain`
    /// needs them to know whether the mapping's consumer is off.
    pub async fn mapping(&self, uuid: Uuid) -> Result<EventSourceMappingConfiguration> {
        let path = format!("{}{uuid}", super::MAPPINGS);
        self.call(Method::GET, &path, Bytes::new()).await
    }

    /// The mappings an operator paused (the SDKs drop the `Mqtrigger` part
    /// of Lambda's answers, so `mappings list` asks for it here).
    pub async fn paused(&self) -> Result<std::collections::BTreeSet<Uuid>> {
        let path = format!("{}?MaxItems=10000", super::MAPPINGS);
        let page: crate::api::ListEventSourceMappings =
            self.call(Method::GET, &path, Bytes::new()).await?;
        Ok(page
            .event_source_mappings
            .into_iter()
            .filter(|m| m.mqtrigger.as_ref().is_some_and(|x| x.paused))
            .map(|m| m.uuid)
            .collect())
    }

    /// Deletes a dead letter from the service's journal.
    pub async fn delete_dead_letter(&self, mapping: Uuid, letter: i64) -> Result<()> {
        let path = format!("{PREFIX}/mappings/{mapping}/dead-letters/{letter}");
        let _: serde_json::Value = self.call(Method::DELETE, &path, Bytes::new()).await?;
        Ok(())
    }

    /// What happened to one message of a mapping.
    pub async fn message_history(
        &self,
        mapping: Uuid,
        id: &str,
    ) -> Result<crate::engine::history::Timeline> {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let path = format!("{PREFIX}/mappings/{mapping}/messages/{id}");
        self.call(Method::GET, &path, Bytes::new()).await
    }

    /// The mapping's dead letters that `filter` selects, newest first.
    pub async fn dead_letters(
        &self,
        mapping: Uuid,
        filter: &LetterFilter,
    ) -> Result<Vec<DeadLetter>> {
        let path = format!("{PREFIX}/mappings/{mapping}/dead-letters{}", query(filter));
        self.call(Method::GET, &path, Bytes::new()).await
    }

    /// Does `action` for every dead letter `filter` selects, on the service.
    pub async fn bulk(
        &self,
        mapping: Uuid,
        filter: &LetterFilter,
        action: BulkAction,
    ) -> Result<BulkSummary> {
        let path = format!("{PREFIX}/mappings/{mapping}/dead-letters/bulk");
        let body = serde_json::json!({ "Action": action, "Filter": filter });
        self.call(Method::POST, &path, Bytes::from(body.to_string()))
            .await
    }
}

/// A filter as the query string of a dead-letter listing.
fn query(filter: &LetterFilter) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(t) = &filter.text {
        q.append_pair("text", t);
    }
    if let Some(r) = &filter.reason {
        q.append_pair("reason", r);
    }
    if let Some(t) = filter.since {
        q.append_pair("since", &t.to_rfc3339());
    }
    if let Some(t) = filter.until {
        q.append_pair("until", &t.to_rfc3339());
    }
    match q.finish() {
        q if q.is_empty() => String::new(),
        q => format!("?{q}"),
    }
}
