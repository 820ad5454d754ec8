//! ECS sources for the registry: the EventBridge event decoder (shared by the SQS watcher and
//! the demo simulator), the watcher (SQS events, paced reconcile via the ECS API, EC2 lookups),
//! and the demo simulator.
//!
//! Invariants: this crate emits [`model::Update`]s and never imports the registry. Every source
//! of task state goes through [`Decoder::decode`], so the demo exercises the production decoder.
//! Unknown fields and unknown event types are counted, never errors; a body that is not an event
//! is a [`DecodeError`] for the caller to count and leave to the dead-letter queue.
//!
//! Feature `aws` (default): the watcher and everything that calls AWS. Without it the crate is
//! the decoder, translation and the simulator, and links no AWS SDK (the fuzz targets use that).

#[cfg(feature = "aws")]
pub mod aws;
pub mod demo;
mod event;
#[cfg(feature = "aws")]
mod lookups;
#[cfg(feature = "aws")]
pub mod pacer;
#[cfg(feature = "aws")]
mod reconcile;
#[cfg(feature = "aws")]
mod sdk;
#[cfg(feature = "aws")]
mod sqs;
#[cfg(feature = "aws")]
pub mod status;
mod translate;
#[cfg(feature = "aws")]
pub mod watcher;

pub use event::{DecodeError, Event, InstanceEvent, TaskEvent, decode};
#[cfg(feature = "aws")]
pub use lookups::LookupStats;
pub use translate::{
    CHECK_LABEL, ClusterMap, DecodeStats, Decoder, PortMapping, TaskContext, TaskDefinitionInfo,
    check_from_labels,
};
#[cfg(feature = "aws")]
pub use watcher::{ClusterConfig, WatchConfig, Watcher};

/// A poisoned lock means a panic elsewhere mid-update of a cache or a status; both are still
/// usable, so keep going rather than cascade the panic.
#[cfg(feature = "aws")]
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
