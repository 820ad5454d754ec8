//! One path in: every source of task state (the ECS watcher, the endpoints file, the demo, the
//! health prober, the warm-restart file's later corrections) sends [`model::Update`]s through a
//! [`Sink`] to the one applier, which drains them in batches ([`Inbox::run`]).
//!
//! Invariants: one applier, so updates are applied in the order each source sent them and a
//! burst costs one registry generation, not one per update. Senders that need to know when
//! their updates took effect ([`Sink::apply`]) get the generation reached; the others
//! ([`Sink::send`], [`Sink::offer`]) do not wait. This crate knows neither the registry nor any
//! source: the applier is a closure, so `ecs` (which must not import the registry) and `health`
//! send through the same type as the binary.

use std::time::Instant;

use model::Update;
use tokio::sync::{mpsc, oneshot};

/// Updates at most coalesced into one applied batch.
pub const MAX_BATCH: usize = 4_096;

/// What the channel carries: updates, and who wants the generation they reached.
struct Batch {
    updates: Vec<Update>,
    ack: Option<oneshot::Sender<u64>>,
}

/// The applier went away (shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the registry applier stopped")]
pub struct SinkClosed;

/// Where updates go: the applier's channel. Cheap to clone; every source holds one.
#[derive(Clone)]
pub struct Sink(mpsc::Sender<Batch>);

/// The applier's end of the channel.
pub struct Inbox(mpsc::Receiver<Batch>);

/// A channel of `capacity` batches: senders wait when the applier falls that far behind.
pub fn channel(capacity: usize) -> (Sink, Inbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (Sink(tx), Inbox(rx))
}

impl Sink {
    /// Sends updates and waits until they are applied; returns the generation reached.
    pub async fn apply(&self, updates: Vec<Update>) -> Result<u64, SinkClosed> {
        let (ack, applied) = oneshot::channel();
        self.0
            .send(Batch {
                updates,
                ack: Some(ack),
            })
            .await
            .map_err(|_| SinkClosed)?;
        applied.await.map_err(|_| SinkClosed)
    }

    /// Sends updates without waiting for them to be applied (waits only for room).
    pub async fn send(&self, updates: Vec<Update>) -> Result<(), SinkClosed> {
        self.0
            .send(Batch { updates, ack: None })
            .await
            .map_err(|_| SinkClosed)
    }

    /// Offers updates without waiting at all: `false` when the channel is full or closed (for
    /// senders whose next update supersedes this one, such as a probe's next verdict).
    pub fn offer(&self, updates: Vec<Update>) -> bool {
        self.0.try_send(Batch { updates, ack: None }).is_ok()
    }

    /// Whether the applier is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl Inbox {
    /// The applier: until every sink is dropped, takes a batch, adds whatever else is waiting
    /// (up to [`MAX_BATCH`] updates), hands them to `apply` (which returns the generation
    /// reached), acknowledges every sender that asked, and calls `changed(generation, received)`
    /// when the generation moved past the last one (`start` at first; `received`: when the
    /// first of those updates arrived).
    pub async fn run(
        mut self,
        start: u64,
        mut apply: impl FnMut(Vec<Update>) -> u64,
        mut changed: impl FnMut(u64, Instant),
    ) {
        let mut last = start;
        while let Some(Batch { mut updates, ack }) = self.0.recv().await {
            let received = Instant::now();
            let mut acks = vec![ack];
            while updates.len() < MAX_BATCH {
                match self.0.try_recv() {
                    Ok(more) => {
                        updates.extend(more.updates);
                        acks.push(more.ack);
                    }
                    Err(_) => break,
                }
            }
            let generation = apply(updates);
            if generation != last {
                changed(generation, received);
                last = generation;
            }
            for ack in acks.into_iter().flatten() {
                let _ = ack.send(generation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(cluster: &str) -> Update {
        Update::BeginListing {
            cluster: cluster.to_string(),
        }
    }

    #[tokio::test]
    async fn bursts_are_applied_together_and_every_waiter_hears_its_generation() {
        let (sink, inbox) = channel(64);
        // Queue a burst before the applier starts: it must come out as one batch.
        for c in ["a", "b", "c"] {
            sink.send(vec![listing(c)]).await.unwrap();
        }
        let waiter = {
            let sink = sink.clone();
            tokio::spawn(async move { sink.apply(vec![listing("d")]).await })
        };
        tokio::task::yield_now().await;
        assert!(sink.offer(vec![listing("e")]));
        let (batches_tx, mut batches) = mpsc::unbounded_channel();
        let (changes_tx, mut changes) = mpsc::unbounded_channel();
        let mut generation = 0;
        let applier = tokio::spawn(inbox.run(
            0,
            move |updates| {
                generation += 1;
                let _ = batches_tx.send(updates.len());
                generation
            },
            move |g, _| {
                let _ = changes_tx.send(g);
            },
        ));
        assert_eq!(waiter.await.unwrap(), Ok(1));
        drop(sink);
        applier.await.unwrap();
        assert_eq!(
            batches.recv().await,
            Some(5),
            "one batch for the whole burst"
        );
        assert_eq!(changes.recv().await, Some(1));
    }

    #[tokio::test]
    async fn a_closed_applier_is_an_error_not_a_hang() {
        let (sink, inbox) = channel(1);
        drop(inbox);
        assert!(sink.is_closed());
        assert_eq!(sink.apply(vec![]).await, Err(SinkClosed));
        assert_eq!(sink.send(vec![]).await, Err(SinkClosed));
        assert!(!sink.offer(vec![]));
    }
}
