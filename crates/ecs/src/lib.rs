//! ECS sources for the registry: the EventBridge event decoder (shared by the SQS watcher and
//! the demo simulator) and the demo simulator itself.
//!
//! Invariants: this crate emits [`model::Update`]s and never imports the registry. Every source
//! of task state goes through [`Decoder::decode`], so the demo exercises the production decoder.
//! Unknown fields and unknown event types are counted, never errors; a body that is not an event
//! is a [`DecodeError`] for the caller to count and leave to the dead-letter queue.

pub mod demo;
mod event;
mod translate;

pub use event::{DecodeError, Event, InstanceEvent, TaskEvent, decode};
pub use translate::{
    ClusterMap, DecodeStats, Decoder, PortMapping, TaskContext, TaskDefinitionInfo,
};
