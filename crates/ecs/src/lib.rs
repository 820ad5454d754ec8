//! ECS sources for the registry: the EventBridge event decoder (shared by the SQS watcher and
//! the demo simulator), the watcher (SQS events, paced reconcile via the ECS API, EC2 lookups),
//! and the demo simulator.
//!
//! Invariants: this crate emits [`model::Update`]s and never imports the registry. Every source
//! of task state goes through [`Decoder::decode`], so the demo exercises the production decoder.
//! Unknown fields and unknown event types are counted, never errors; a body that is not an event
//! is a [`DecodeError`] for the caller to count and leave to the dead-letter queue.

pub mod aws;
pub mod demo;
mod event;
mod lookups;
pub mod pacer;
mod reconcile;
mod sdk;
mod sqs;
pub mod status;
mod translate;
pub mod watcher;

pub use event::{DecodeError, Event, InstanceEvent, TaskEvent, decode};
pub use lookups::LookupStats;
pub use translate::{
    CHECK_LABEL, ClusterMap, DecodeStats, Decoder, PortMapping, TaskContext, TaskDefinitionInfo,
    check_from_labels,
};
pub use watcher::{Batch, ClusterConfig, Sink, WatchConfig, Watcher};

/// A poisoned lock means a panic elsewhere mid-update of a cache or a status; both are still
/// usable, so keep going rather than cascade the panic.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
