//! One source over several queues: a mapping whose `Queues` names more than
//! one (Lambda takes exactly one) has a consumer on each, and the engine
//! sees one source. Each delivery says its queue (the event keys its record
//! by it), and is given a tag of this source's own, so tags of different
//! queues never meet; acks, dead letters and a message's AMQP headers go
//! back to the queue's own consumer with its own tag. Each queue keeps its
//! own dead-letter destination (`<queue>.dlq`, its dead-letter exchange,
//! ActiveMQ's DLQ).

use super::{
    DeadLetterError, DeadLetterReason, Delivery, DeliveryTag, SettleError, Source, SourceError,
};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Merged {
    /// Each queue's name and consumer, in the mapping's order.
    sources: Vec<(Arc<str>, Box<dyn Source>)>,
    /// This source's tag → the queue's index and its consumer's tag.
    tags: HashMap<u64, (usize, DeliveryTag)>,
    next_tag: u64,
    /// The queue asked first next time, so a busy queue cannot starve the
    /// others.
    turn: usize,
}

impl Merged {
    pub fn new(sources: Vec<(String, Box<dyn Source>)>) -> Merged {
        Merged {
            sources: sources
                .into_iter()
                .map(|(queue, source)| (Arc::from(queue), source))
                .collect(),
            tags: HashMap::new(),
            next_tag: 1,
            turn: 0,
        }
    }

    /// The queue and tag a tag of this source stands for.
    fn origin(&self, tag: &DeliveryTag) -> Option<(usize, DeliveryTag)> {
        match tag {
            DeliveryTag::Amqp(t) => self.tags.get(t).cloned(),
            DeliveryTag::Stomp(_) => None,
        }
    }

    /// `tags` sorted by queue, as each consumer's own tags.
    fn by_queue(&self, tags: &[DeliveryTag]) -> (HashMap<usize, Vec<DeliveryTag>>, usize) {
        let mut grouped: HashMap<usize, Vec<DeliveryTag>> = HashMap::new();
        let mut unknown = 0;
        for tag in tags {
            match self.origin(tag) {
                Some((i, own)) => grouped.entry(i).or_default().push(own),
                None => unknown += 1,
            }
        }
        (grouped, unknown)
    }

    fn forget(&mut self, tags: &[DeliveryTag]) {
        for tag in tags {
            if let DeliveryTag::Amqp(t) = tag {
                self.tags.remove(t);
            }
        }
    }
}

impl Source for Merged {
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery, SourceError>> {
        Box::pin(async move {
            let n = self.sources.len();
            let start = self.turn % n.max(1);
            let (result, index) = {
                // In turn order, from `start`; each consumer's next() is
                // cancel-safe, so the ones that lose lose nothing.
                let mut order: Vec<(usize, &mut Box<dyn Source>)> = self
                    .sources
                    .iter_mut()
                    .map(|(_, s)| s)
                    .enumerate()
                    .collect();
                order.rotate_left(start);
                let indices: Vec<usize> = order.iter().map(|(i, _)| *i).collect();
                let futures: Vec<_> = order.into_iter().map(|(_, s)| s.next()).collect();
                let (result, position, _rest) = futures::future::select_all(futures).await;
                (result, indices[position])
            };
            self.turn = index + 1;
            let mut delivery = result?;
            let tag = self.next_tag;
            self.next_tag += 1;
            self.tags.insert(tag, (index, delivery.tag.clone()));
            delivery.tag = DeliveryTag::Amqp(tag);
            delivery.queue = Some(self.sources[index].0.clone());
            Ok(delivery)
        })
    }

    fn ack<'a>(&'a mut self, tags: &'a [DeliveryTag]) -> BoxFuture<'a, Result<(), SettleError>> {
        Box::pin(async move {
            let (grouped, unknown) = self.by_queue(tags);
            let mut failed = SettleError {
                count: unknown,
                reason: "unknown delivery tag".into(),
            };
            for (i, own) in grouped {
                if let Err(e) = self.sources[i].1.ack(&own).await {
                    failed = SettleError {
                        count: failed.count + e.count,
                        reason: e.reason,
                    };
                }
            }
            self.forget(tags);
            match failed.count {
                0 => Ok(()),
                _ => Err(failed),
            }
        })
    }

    fn dead_letter<'a>(
        &'a mut self,
        deliveries: &'a [Delivery],
        reason: &'a DeadLetterReason,
    ) -> BoxFuture<'a, Result<(), DeadLetterError>> {
        Box::pin(async move {
            // Queue by queue; a queue done on an earlier try (its tags are
            // forgotten) is not done again, so a retry after a refusal
            // moves only what is left.
            let mut by_queue: HashMap<usize, Vec<Delivery>> = HashMap::new();
            for d in deliveries {
                if let Some((i, own)) = self.origin(&d.tag) {
                    let mut mine = d.clone();
                    mine.tag = own;
                    by_queue.entry(i).or_default().push(mine);
                }
            }
            let mut queues: Vec<usize> = by_queue.keys().copied().collect();
            queues.sort_unstable();
            for i in queues {
                let mine = &by_queue[&i];
                self.sources[i].1.dead_letter(mine, reason).await?;
                let ours: Vec<DeliveryTag> = deliveries
                    .iter()
                    .filter(|d| self.origin(&d.tag).is_some_and(|(q, _)| q == i))
                    .map(|d| d.tag.clone())
                    .collect();
                self.forget(&ours);
            }
            Ok(())
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for (_, source) in &mut self.sources {
                source.close().await;
            }
            self.tags.clear();
        })
    }

    fn dead_letter_destination(&self) -> String {
        let all: Vec<String> = self
            .sources
            .iter()
            .map(|(_, s)| s.dead_letter_destination())
            .collect();
        all.join(", ")
    }

    fn destination_of(&self, delivery: &Delivery) -> String {
        match self.origin(&delivery.tag) {
            Some((i, _)) => self.sources[i].1.dead_letter_destination(),
            None => self.dead_letter_destination(),
        }
    }

    fn original_headers(&self, tag: &DeliveryTag) -> Option<Vec<u8>> {
        let (i, own) = self.origin(tag)?;
        self.sources[i].1.original_headers(&own)
    }
}
