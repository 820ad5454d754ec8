//! The watcher's health: per cluster and for the queue, whether the last attempt worked, since
//! when it fails, and why. Transitions are logged once; readiness and metrics read the rest.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::lock;
use std::time::{Duration, SystemTime};

/// One source's state (a cluster's reconcile, or the queue).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    /// When it last worked.
    pub last_ok: Option<SystemTime>,
    /// The last error, while it is failing.
    pub error: Option<String>,
    /// Failures in a row.
    pub failures: u32,
    /// Tasks the last reconcile listed (clusters only).
    pub tasks: usize,
    /// How long the last reconcile took (clusters only).
    pub duration: Option<Duration>,
    /// How long the oldest message of the latest receive that returned any had waited in the
    /// queue (receive time minus SQS's `SentTimestamp`), in milliseconds: the event path's lag
    /// (queues only).
    pub lag_ms: Option<u64>,
    /// When a receive last returned messages, milliseconds since the epoch (queues only).
    pub last_message_ms: Option<u64>,
}

impl SourceState {
    /// Whether the source works now.
    pub fn healthy(&self) -> bool {
        self.error.is_none() && self.last_ok.is_some()
    }
}

/// Counters of the watcher's work.
#[derive(Debug, Default)]
pub struct WatchCounters {
    /// Reconciles completed.
    pub reconciles: AtomicU64,
    /// Reconciles that failed.
    pub reconcile_failures: AtomicU64,
    /// SQS receive calls.
    pub sqs_receives: AtomicU64,
    /// SQS calls that failed.
    pub sqs_errors: AtomicU64,
    /// Messages deleted after their updates were applied.
    pub sqs_deleted: AtomicU64,
    /// Events whose missing health was fetched with DescribeTasks.
    pub health_lookups: AtomicU64,
}

/// A message on the queue that was not an event, kept for the operator's problem list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonRecord {
    /// SQS message id.
    pub message_id: String,
    /// Why it was rejected.
    pub reason: String,
    /// When it was first seen.
    pub seen_at: SystemTime,
}

/// How many poison messages the problem list remembers (the newest).
const POISON_KEPT: usize = 50;

/// Shared watcher status.
#[derive(Debug, Default)]
pub struct WatchStatus {
    clusters: Mutex<BTreeMap<String, SourceState>>,
    /// Queues by source name: `queue` (the top-level one), `queue:CLUSTER` (a cluster's own).
    queues: Mutex<BTreeMap<String, SourceState>>,
    poison: Mutex<std::collections::VecDeque<PoisonRecord>>,
    /// Counters.
    pub counters: WatchCounters,
}

impl WatchStatus {
    pub(crate) fn expect_cluster(&self, label: &str) {
        lock(&self.clusters).entry(label.to_string()).or_default();
    }

    pub(crate) fn expect_queue(&self, source: &str) {
        lock(&self.queues).entry(source.to_string()).or_default();
    }

    pub(crate) fn cluster_ok(&self, label: &str, tasks: usize, took: Duration) {
        self.counters.reconciles.fetch_add(1, Ordering::Relaxed);
        let mut all = lock(&self.clusters);
        let state = all.entry(label.to_string()).or_default();
        if state.error.is_some() {
            tracing::info!(cluster = label, "cluster reconcile works again");
        }
        if state.last_ok.is_none() {
            tracing::info!(cluster = label, tasks, took = ?took, "cluster synced");
        }
        *state = SourceState {
            last_ok: Some(SystemTime::now()),
            error: None,
            failures: 0,
            tasks,
            duration: Some(took),
            ..SourceState::default()
        };
    }

    pub(crate) fn cluster_failed(&self, label: &str, error: &str) {
        self.counters
            .reconcile_failures
            .fetch_add(1, Ordering::Relaxed);
        let mut all = lock(&self.clusters);
        let state = all.entry(label.to_string()).or_default();
        if state.error.is_none() {
            tracing::warn!(
                cluster = label,
                error,
                "cluster reconcile failed; serving the last known state and retrying"
            );
        }
        state.error = Some(error.to_string());
        state.failures += 1;
    }

    pub(crate) fn queue_ok(&self, source: &str) {
        self.counters.sqs_receives.fetch_add(1, Ordering::Relaxed);
        let mut q = lock(&self.queues);
        let state = q.entry(source.to_string()).or_default();
        if state.error.is_some() {
            tracing::info!(queue = source, "event queue works again");
        }
        state.error = None;
        state.failures = 0;
        state.last_ok = Some(SystemTime::now());
    }

    pub(crate) fn queue_failed(&self, source: &str, error: &str) {
        self.counters.sqs_errors.fetch_add(1, Ordering::Relaxed);
        let mut q = lock(&self.queues);
        let state = q.entry(source.to_string()).or_default();
        if state.error.is_none() {
            tracing::warn!(
                queue = source,
                error,
                "event queue failed; serving the last known state and retrying"
            );
        }
        state.error = Some(error.to_string());
        state.failures += 1;
    }

    pub(crate) fn poison(&self, message_id: &str, reason: &str) {
        let mut kept = lock(&self.poison);
        if kept.len() >= POISON_KEPT {
            kept.pop_front();
        }
        kept.push_back(PoisonRecord {
            message_id: message_id.to_string(),
            reason: reason.to_string(),
            seen_at: SystemTime::now(),
        });
    }

    /// The newest poison messages, oldest first.
    pub fn poison_messages(&self) -> Vec<PoisonRecord> {
        lock(&self.poison).iter().cloned().collect()
    }

    /// Every cluster's state, by label.
    pub fn clusters(&self) -> BTreeMap<String, SourceState> {
        lock(&self.clusters).clone()
    }

    /// A receive returned messages, the oldest `lag_ms` after it was sent.
    pub(crate) fn queue_messages(&self, source: &str, now_ms: u64, lag_ms: Option<u64>) {
        let mut q = lock(&self.queues);
        let state = q.entry(source.to_string()).or_default();
        state.last_message_ms = Some(now_ms);
        if lag_ms.is_some() {
            state.lag_ms = lag_ms;
        }
    }

    /// Every queue's state, by source name (`queue`, `queue:CLUSTER`).
    pub fn queues(&self) -> BTreeMap<String, SourceState> {
        lock(&self.queues).clone()
    }

    /// Over all queues: when a receive last returned messages (milliseconds since the epoch)
    /// and that receive's lag; `None` before any message.
    pub fn last_message(&self) -> Option<(u64, Option<u64>)> {
        lock(&self.queues)
            .values()
            .filter_map(|s| Some((s.last_message_ms?, s.lag_ms)))
            .max_by_key(|(at, _)| *at)
    }

    /// Every cluster has been reconciled at least once.
    pub fn initial_sync_done(&self) -> bool {
        lock(&self.clusters).values().all(|s| s.last_ok.is_some())
    }

    /// Something fails now (the state served may be stale).
    pub fn degraded(&self) -> bool {
        lock(&self.clusters).values().any(|s| s.error.is_some())
            || lock(&self.queues).values().any(|s| s.error.is_some())
    }
}
