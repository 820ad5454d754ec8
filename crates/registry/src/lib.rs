//! The in-memory endpoint registry.
//!
//! Invariants:
//! - Updates for a task are applied in ECS `version` order: a duplicate or an older version changes
//!   nothing (and is counted), so at-least-once, out-of-order delivery converges to the in-order
//!   result. Removed tasks leave a tombstone so a late, older event cannot resurrect them.
//! - A cluster [`Update::Reset`] replaces the cluster's tasks but keeps every change applied after
//!   the matching [`Update::BeginListing`], so a slow listing never undoes a newer event.
//! - Readers never see a half-applied batch: each changed service gets a new immutable
//!   [`ServiceSnapshot`], then the generation is bumped and the change feed notified.
//! - Writers are serialized by one mutex (one applier); readers never take it.

mod snapshot;
mod state;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use model::{ServiceKey, Task, Update};
use tokio::sync::watch;

pub use snapshot::{ConnectOf, Problem, ServiceSnapshot, TaskView};
use state::State;

/// Registry behaviour switches.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Serve every live task of a service when none is usable (as Route 53 multivalue does).
    pub fail_open: bool,
    /// How many (generation, service) changes the feed keeps for incremental readers.
    pub journal_len: usize,
    /// Services whose tasks get stable ordinals (`N.S.C.zone`, [`model::Task::ordinal`]): the
    /// lowest number no other task of the service holds, kept while the task is not on its way
    /// out, then free for its replacement. Opt-in, because an ordinal means something only to
    /// a service that treats its tasks as members (a quorum, shards), not to a stateless one.
    pub ordinals: std::collections::BTreeSet<ServiceKey>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            fail_open: true,
            journal_len: 65_536,
            ordinals: std::collections::BTreeSet::new(),
        }
    }
}

/// Counters of what the registry did with the updates it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Upserts and removes that changed state.
    pub applied: u64,
    /// Updates carrying the version the registry already had.
    pub duplicates: u64,
    /// Updates older than what the registry had.
    pub stale: u64,
    /// Reset listings applied.
    pub resets: u64,
    /// Tasks removed because a listing no longer had them (missed stop events).
    pub reset_removed: u64,
    /// Live tasks held.
    pub tasks: u64,
    /// Served names (services and standalone groups) held.
    pub services: u64,
}

#[derive(Default)]
struct Counters {
    applied: AtomicU64,
    duplicates: AtomicU64,
    stale: AtomicU64,
    resets: AtomicU64,
    reset_removed: AtomicU64,
}

/// What changed since a generation, for readers that rebuild incrementally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The generation these changes bring the reader to.
    pub generation: u64,
    /// Services changed, or `None` when the journal no longer reaches back: rebuild everything.
    pub services: Option<Vec<ServiceKey>>,
}

/// A consistent cut of the registry: see [`Registry::cut_since`].
#[derive(Debug, Clone)]
pub struct Cut {
    /// The generation the cut is at.
    pub generation: u64,
    /// What changed up to it.
    pub changed: Changed,
}

/// The services of a [`Cut`].
#[derive(Debug, Clone)]
pub enum Changed {
    /// The services changed since the reader's generation, with their snapshots at the cut
    /// (`None`: the service is gone).
    Services(Vec<(ServiceKey, Option<Arc<ServiceSnapshot>>)>),
    /// The journal no longer reaches back: every service served at the cut (a reader drops
    /// whatever it holds that is not here).
    All(Vec<Arc<ServiceSnapshot>>),
}

/// The change feed: recent (generation, service) pairs, and how far eviction has reached.
#[derive(Default)]
struct Journal {
    entries: VecDeque<(u64, ServiceKey)>,
    evicted_through: u64,
}

/// The registry. Cheap to share behind an `Arc`.
pub struct Registry {
    config: RegistryConfig,
    state: Mutex<State>,
    services: DashMap<ServiceKey, Arc<ServiceSnapshot>, ahash::RandomState>,
    journal: Mutex<Journal>,
    generation: watch::Sender<u64>,
    counters: Counters,
}

impl Registry {
    /// An empty registry at generation 0.
    pub fn new(config: RegistryConfig) -> Self {
        let state = Mutex::new(State::new(config.ordinals.clone()));
        Self {
            config,
            state,
            services: DashMap::with_hasher(ahash::RandomState::new()),
            journal: Mutex::new(Journal::default()),
            generation: watch::Sender::new(0),
            counters: Counters::default(),
        }
    }

    /// Applies one update. See [`Registry::apply_batch`].
    pub fn apply(&self, update: Update) -> u64 {
        self.apply_batch([update])
    }

    /// Applies updates in order, then publishes every changed service at one new generation.
    /// Returns the generation after the batch (unchanged if nothing changed).
    pub fn apply_batch(&self, updates: impl IntoIterator<Item = Update>) -> u64 {
        let mut state = lock(&self.state);
        let mut dirty = state::Dirty::default();
        for update in updates {
            state.apply(update, Instant::now(), &self.counters, &mut dirty);
        }
        if dirty.is_empty() {
            return *self.generation.borrow();
        }
        let generation = *self.generation.borrow() + 1;
        let mut journal = lock(&self.journal);
        for key in dirty {
            let (members, connect) = match state.connect_members(&key) {
                Some((source, members)) => (members, Some(source)),
                None => (state.members(&key), None),
            };
            let built = ServiceSnapshot::build(&key, generation, members, self.config.fail_open);
            match built.map(|s| with_connect(s, connect, state.connect_owners(&key))) {
                Some(snapshot) => {
                    self.services.insert(key.clone(), Arc::new(snapshot));
                }
                None => {
                    self.services.remove(&key);
                }
            }
            journal.entries.push_back((generation, key));
        }
        while journal.entries.len() > self.config.journal_len {
            if let Some((g, _)) = journal.entries.pop_front() {
                journal.evicted_through = g;
            }
        }
        drop(journal);
        // Bumped before the state lock goes, so a [`Registry::cut_since`] (which holds it)
        // never sees this batch's snapshots under the previous generation.
        self.generation.send_replace(generation);
        drop(state);
        generation
    }

    /// Drops tombstones of tasks removed longer than `ttl` before `now`. Until then a late, older
    /// event for a removed task is recognised as stale.
    pub fn prune_tombstones(&self, now: Instant, ttl: Duration) -> usize {
        lock(&self.state).prune_tombstones(now, ttl)
    }

    /// The current generation: bumped by every batch that changed something.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// A receiver that wakes whenever the generation moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Services changed after `since`.
    pub fn changes_since(&self, since: u64) -> Changes {
        let journal = lock(&self.journal);
        let generation = self.generation();
        let services = (since >= journal.evicted_through).then(|| {
            let mut keys: Vec<ServiceKey> = journal
                .entries
                .iter()
                .filter(|(g, _)| *g > since)
                .map(|(_, k)| k.clone())
                .collect();
            keys.sort();
            keys.dedup();
            keys
        });
        Changes {
            generation,
            services,
        }
    }

    /// A consistent cut: the generation now and, as of exactly that generation, the snapshot of
    /// every service changed after `since` (`None`: removed). Taken under the writers' lock, so
    /// no later batch can slip a newer snapshot under this generation (which
    /// [`Registry::changes_since`] followed by [`Registry::service`] can). A reader that
    /// labels its copy with the generation therefore never describes other content.
    pub fn cut_since(&self, since: u64) -> Cut {
        let _writers = lock(&self.state);
        let generation = self.generation();
        let changed = self.changes_since(since).services;
        let changed = match changed {
            Some(keys) => Changed::Services(
                keys.into_iter()
                    .map(|k| {
                        let snapshot = self.service(&k);
                        (k, snapshot)
                    })
                    .collect(),
            ),
            None => Changed::All(self.services()),
        };
        Cut {
            generation,
            changed,
        }
    }

    /// The snapshot of one served name.
    pub fn service(&self, key: &ServiceKey) -> Option<Arc<ServiceSnapshot>> {
        self.services.get(key).map(|s| Arc::clone(s.value()))
    }

    /// Every snapshot, sorted by key.
    pub fn services(&self) -> Vec<Arc<ServiceSnapshot>> {
        let mut all: Vec<_> = self
            .services
            .iter()
            .map(|s| Arc::clone(s.value()))
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// One live task by ARN.
    pub fn task(&self, arn: &str) -> Option<Arc<Task>> {
        lock(&self.state).task(arn)
    }

    /// Every live task, sorted by ARN: the registry's whole state, for comparisons and dumps.
    pub fn live_tasks(&self) -> Vec<Arc<Task>> {
        lock(&self.state).live_tasks()
    }

    /// Naming problems: unservable names and collisions.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = lock(&self.state).invalid_names();
        for snapshot in self.services() {
            problems.extend(snapshot.problems.iter().cloned());
        }
        problems
    }

    /// Counters.
    pub fn stats(&self) -> RegistryStats {
        let c = &self.counters;
        let tasks = lock(&self.state).live_count() as u64;
        RegistryStats {
            applied: c.applied.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            reset_removed: c.reset_removed.load(Ordering::Relaxed),
            tasks,
            services: self.services.len() as u64,
        }
    }
}

/// Marks a Service Connect name's snapshot as such, and reports the names that lost: to a
/// service or group of the same label (which always wins), or to a smaller service publishing
/// the same name.
fn with_connect(
    mut snapshot: ServiceSnapshot,
    connect: Option<ConnectOf>,
    owners: Vec<ServiceKey>,
) -> ServiceSnapshot {
    let winner = match &connect {
        Some(c) => format!("service-connect:{}", c.service),
        None => match snapshot.tasks.first() {
            Some(view) => view.task.group.to_string(),
            None => return snapshot,
        },
    };
    for owner in owners {
        // Owners share the name's cluster: the service label tells them apart.
        if connect.as_ref().is_some_and(|c| c.service == owner.name) {
            continue;
        }
        snapshot.problems.push(Problem::Collision {
            key: snapshot.key.clone(),
            winner: winner.clone(),
            shadowed: format!("service-connect:{}", owner.name),
        });
    }
    snapshot.connect = connect;
    snapshot
}

/// A poisoned lock means a panic elsewhere mid-update; the state itself is still consistent per
/// update (each update is applied by infallible code), so keep serving rather than cascade.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
