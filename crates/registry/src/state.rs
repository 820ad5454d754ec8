//! The writer-side state: tasks by ARN with their versions, tombstones, membership indexes.
//! Only [`crate::Registry`] touches it, under its mutex.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use model::{CheckState, ContainerInstance, InstanceStatus, ServiceKey, Task, Update, dns_label};

use crate::{Counters, Problem};

mod names;

/// The writer's maps hash ARNs and names on every update: ahash, several times faster than the
/// default SipHash on ~60-byte ARNs, and the keys are ours (no untrusted collision attack surface
/// beyond what ECS names allow; ahash is randomly seeded anyway).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
pub(crate) type HashSet<T> = std::collections::HashSet<T, ahash::RandomState>;
/// Services changed by a batch.
pub(crate) type Dirty = HashSet<ServiceKey>;

/// Where a task is filed: under a servable key, or under its raw, unservable name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Filing {
    Served(ServiceKey),
    Invalid {
        cluster: String,
        name: String,
        reason: String,
    },
}

fn filing(task: &Task) -> Filing {
    match dns_label(task.group.name()) {
        Ok(name) => Filing::Served(ServiceKey {
            cluster: task.cluster.to_string(),
            name,
        }),
        Err(e) => Filing::Invalid {
            cluster: task.cluster.to_string(),
            name: task.group.name().to_string(),
            reason: e.to_string(),
        },
    }
}

struct Entry {
    version: u64,
    /// `None`: a tombstone (removed at `removed_at`).
    task: Option<Arc<Task>>,
    /// Update sequence number of the last change, compared with listing markers.
    changed_seq: u64,
    removed_at: Option<Instant>,
}

/// A task ARN, shared by every index that files the task (one allocation per task, not four).
type Arn = Arc<str>;

/// One task filed under a service, with the registry's verdicts about it.
pub(crate) struct Member {
    pub(crate) task: Arc<Task>,
    pub(crate) instance_draining: bool,
    pub(crate) check: Option<CheckState>,
}

pub(crate) struct State {
    tasks: HashMap<Arn, Entry>,
    /// Tasks by where they are filed, holding the tasks themselves so a snapshot is built
    /// without looking each member up by ARN.
    members: HashMap<Filing, HashMap<Arn, Arc<Task>>>,
    instances: HashMap<String, (u64, InstanceStatus)>,
    tasks_on_instance: HashMap<Arc<str>, HashSet<Arn>>,
    listing_begin: HashMap<String, u64>,
    /// Verdicts of active checks, by task: kept across the task's upserts, dropped with it.
    checks: HashMap<Arn, CheckState>,
    seq: u64,
    live: usize,
    /// Services with stable ordinals, and who holds each of their ordinals.
    ordinal_services: std::collections::BTreeSet<ServiceKey>,
    ordinals: HashMap<ServiceKey, BTreeMap<u32, Arn>>,
    /// Service Connect names: the name's key (`NAME` in the service's cluster) -> the services
    /// whose live tasks publish it, with how many tasks do.
    connect: HashMap<ServiceKey, BTreeMap<ServiceKey, usize>>,
}

enum Verdict {
    Apply,
    Duplicate,
    Stale,
}

impl State {
    pub(crate) fn new(ordinal_services: std::collections::BTreeSet<ServiceKey>) -> Self {
        Self {
            tasks: HashMap::default(),
            members: HashMap::default(),
            instances: HashMap::default(),
            tasks_on_instance: HashMap::default(),
            listing_begin: HashMap::default(),
            checks: HashMap::default(),
            seq: 0,
            live: 0,
            ordinal_services,
            ordinals: HashMap::default(),
            connect: HashMap::default(),
        }
    }

    pub(crate) fn apply(
        &mut self,
        update: Update,
        now: Instant,
        counters: &Counters,
        dirty: &mut Dirty,
    ) {
        self.seq += 1;
        match update {
            Update::Upsert(task) => self.upsert(task, counters, dirty, false),
            Update::Remove { arn, version } => match self.verdict(&arn, version, true) {
                Verdict::Apply => {
                    self.remove(&arn, version, now, dirty);
                    counters.applied.fetch_add(1, Ordering::Relaxed);
                }
                Verdict::Duplicate => {
                    counters.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                Verdict::Stale => {
                    counters.stale.fetch_add(1, Ordering::Relaxed);
                }
            },
            Update::BeginListing { cluster } => {
                self.listing_begin.insert(cluster, self.seq);
            }
            Update::Reset { cluster, tasks } => self.reset(cluster, tasks, now, counters, dirty),
            Update::Instance(instance) => self.instance(instance, counters, dirty),
            Update::Probe { arn, state } => self.probe(arn, state, counters, dirty),
        }
    }

    /// Records a check verdict for a live task with a check; anything else is stale (the task
    /// left, or its check was removed, while the probe ran).
    fn probe(&mut self, arn: Arn, state: CheckState, counters: &Counters, dirty: &mut Dirty) {
        let Some((known, task)) = self
            .tasks
            .get_key_value(&*arn)
            .and_then(|(k, e)| Some((k, e.task.as_ref()?)))
        else {
            counters.stale.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if task.check.is_none() {
            counters.stale.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.checks.get(&*arn) == Some(&state) {
            counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        counters.applied.fetch_add(1, Ordering::Relaxed);
        Self::touch(task, dirty);
        self.checks.insert(Arc::clone(known), state);
    }

    /// Compares a version with the held one. A remove at the same version as a live task is new
    /// information (the task stopped without a version bump we saw); a remove at the tombstone's
    /// version is a duplicate.
    fn verdict(&self, arn: &str, version: u64, is_remove: bool) -> Verdict {
        match self.tasks.get(arn) {
            None => Verdict::Apply,
            Some(e) if version > e.version => Verdict::Apply,
            Some(e) if version == e.version && is_remove && e.task.is_some() => Verdict::Apply,
            Some(e) if version == e.version => Verdict::Duplicate,
            Some(_) => Verdict::Stale,
        }
    }

    fn upsert(&mut self, task: Task, counters: &Counters, dirty: &mut Dirty, from_listing: bool) {
        match self.verdict(&task.arn, task.version, false) {
            Verdict::Apply => {}
            // Same version, other Service Connect names: those come from the source's service
            // lookup, not from the task's state, and the lookup learnt more (a deployment it
            // had not read yet). Taken, so the task's names do not wait for its next change.
            Verdict::Duplicate
                if self
                    .tasks
                    .get(&*task.arn)
                    .and_then(|e| e.task.as_ref())
                    .is_some_and(|t| t.service_connect != task.service_connect) => {}
            Verdict::Duplicate if from_listing => return,
            Verdict::Duplicate => {
                counters.duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Verdict::Stale => {
                if !from_listing {
                    counters.stale.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
        counters.applied.fetch_add(1, Ordering::Relaxed);
        // One ARN allocation per task, shared by the task and every index, across updates.
        let mut task = task;
        if let Some((known, _)) = self.tasks.get_key_value(&*task.arn) {
            task.arn = Arc::clone(known);
        }
        // The common case, a new state of a task filed where it was: no index changes.
        let seq = self.seq;
        let old = self.tasks.get(&*task.arn).and_then(|e| e.task.as_ref());
        let previous = old.and_then(|o| o.ordinal);
        let same_place = old.is_some_and(|old| {
            old.cluster == task.cluster
                && old.group == task.group
                && old.container_instance == task.container_instance
                && old.service_connect == task.service_connect
        });
        if same_place {
            let file = filing(&task);
            self.stamp_ordinal(&mut task, previous);
            let task = Arc::new(task);
            if let Some(slot) = self
                .members
                .get_mut(&file)
                .and_then(|m| m.get_mut(&*task.arn))
            {
                *slot = Arc::clone(&task);
            }
            Self::touch(&task, dirty);
            if let Some(entry) = self.tasks.get_mut(&*task.arn) {
                *entry = Entry {
                    version: task.version,
                    task: Some(task),
                    changed_seq: seq,
                    removed_at: None,
                };
            }
            return;
        }
        self.unfile(&task.arn, dirty);
        // Refiled within its service (a new container instance, say): it keeps its number.
        self.stamp_ordinal(&mut task, previous);
        let arn: Arn = Arc::clone(&task.arn);
        let file = filing(&task);
        if let Filing::Served(key) = &file
            && !dirty.contains(key)
        {
            dirty.insert(key.clone());
        }
        let task = Arc::new(task);
        self.index_connect(&task, true, dirty);
        self.members
            .entry(file)
            .or_default()
            .insert(Arc::clone(&arn), Arc::clone(&task));
        if let Some(ci) = &task.container_instance {
            self.tasks_on_instance
                .entry(ci.clone())
                .or_default()
                .insert(Arc::clone(&arn));
        }
        self.live += 1;
        self.tasks.insert(
            arn,
            Entry {
                version: task.version,
                task: Some(task),
                changed_seq: self.seq,
                removed_at: None,
            },
        );
    }

    fn remove(&mut self, arn: &str, version: u64, now: Instant, dirty: &mut Dirty) {
        self.unfile(arn, dirty);
        self.checks.remove(arn);
        let tombstone = Entry {
            version,
            task: None,
            changed_seq: self.seq,
            removed_at: Some(now),
        };
        match self.tasks.get_mut(arn) {
            Some(entry) => *entry = tombstone,
            None => {
                self.tasks.insert(Arc::from(arn), tombstone);
            }
        }
    }

    /// Takes a live task out of every index (its entry stays, to be replaced by the caller).
    fn unfile(&mut self, arn: &str, dirty: &mut Dirty) {
        let Some(old) = self.tasks.get(arn).and_then(|e| e.task.clone()) else {
            return;
        };
        self.live -= 1;
        self.free_ordinal(&old);
        self.index_connect(&old, false, dirty);
        let file = filing(&old);
        if let Some(set) = self.members.get_mut(&file) {
            set.remove(arn);
            if set.is_empty() {
                self.members.remove(&file);
            }
        }
        if let Filing::Served(key) = file {
            dirty.insert(key);
        }
        if let Some(ci) = &old.container_instance
            && let Some(set) = self.tasks_on_instance.get_mut(ci)
        {
            set.remove(arn);
            if set.is_empty() {
                self.tasks_on_instance.remove(ci);
            }
        }
    }

    fn reset(
        &mut self,
        cluster: String,
        tasks: Vec<Task>,
        now: Instant,
        counters: &Counters,
        dirty: &mut Dirty,
    ) {
        counters.resets.fetch_add(1, Ordering::Relaxed);
        // Without a marker the listing is taken as of now: everything unlisted goes.
        let begin = self.listing_begin.remove(&cluster).unwrap_or(self.seq);
        let listed: HashSet<Arn> = tasks.iter().map(|t| Arc::clone(&t.arn)).collect();
        // A scan of every task, once per listing (a minute apart), instead of a per-cluster
        // index that every update would maintain and that costs memory per task.
        let missing: Vec<(Arn, u64)> = self
            .tasks
            .iter()
            .filter(|(arn, e)| {
                e.task.as_ref().is_some_and(|t| *t.cluster == *cluster)
                    && e.changed_seq <= begin
                    && !listed.contains(arn.as_ref())
            })
            .map(|(arn, e)| (Arc::clone(arn), e.version))
            .collect();
        for (arn, version) in missing {
            self.remove(&arn, version, now, dirty);
            counters.reset_removed.fetch_add(1, Ordering::Relaxed);
        }
        // Listed tasks after the removals (none of them is among those), and of those the ones
        // on their way out first: a replacement listed with the task it replaced, in any
        // order, takes the number that task frees.
        let (leaving, staying): (Vec<Task>, Vec<Task>) = tasks
            .into_iter()
            .filter(|t| *t.cluster == *cluster)
            .partition(|t| t.desired_status != model::TaskStatus::Running);
        for task in leaving.into_iter().chain(staying) {
            self.upsert(task, counters, dirty, true);
        }
    }

    fn instance(&mut self, instance: ContainerInstance, counters: &Counters, dirty: &mut Dirty) {
        let previous = self.instances.get(&instance.arn).copied();
        if let Some((version, _)) = previous
            && version >= instance.version
        {
            let counter = if version == instance.version {
                &counters.duplicates
            } else {
                &counters.stale
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        counters.applied.fetch_add(1, Ordering::Relaxed);
        let was_draining = previous.is_some_and(|(_, s)| s != InstanceStatus::Active);
        let draining = instance.status != InstanceStatus::Active;
        self.instances
            .insert(instance.arn.clone(), (instance.version, instance.status));
        if was_draining == draining {
            return;
        }
        for arn in self
            .tasks_on_instance
            .get(instance.arn.as_str())
            .into_iter()
            .flatten()
        {
            if let Some(task) = self.tasks.get(arn).and_then(|e| e.task.as_ref()) {
                Self::touch(task, dirty);
            }
        }
    }

    /// The tasks filed under `key`, each with whether its container instance is draining and its
    /// check verdict.
    pub(crate) fn members(&self, key: &ServiceKey) -> Vec<Member> {
        let file = Filing::Served(key.clone());
        let Some(members) = self.members.get(&file) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(members.len());
        let tasks = members.values().cloned().map(|task| {
            let draining = task.container_instance.as_ref().is_some_and(|ci| {
                self.instances
                    .get(&**ci)
                    .is_some_and(|(_, s)| *s != InstanceStatus::Active)
            });
            let check = match task.check {
                Some(_) => self.checks.get(&*task.arn).cloned(),
                None => None,
            };
            Member {
                task,
                instance_draining: draining,
                check,
            }
        });
        out.extend(tasks);
        out
    }

    pub(crate) fn prune_tombstones(&mut self, now: Instant, ttl: Duration) -> usize {
        let before = self.tasks.len();
        self.tasks.retain(|_, e| {
            e.removed_at
                .is_none_or(|at| now.saturating_duration_since(at) < ttl)
        });
        before - self.tasks.len()
    }

    pub(crate) fn task(&self, arn: &str) -> Option<Arc<Task>> {
        self.tasks.get(arn)?.task.clone()
    }

    pub(crate) fn live_tasks(&self) -> Vec<Arc<Task>> {
        let sorted: BTreeMap<&Arn, &Arc<Task>> = self
            .tasks
            .iter()
            .filter_map(|(arn, e)| Some((arn, e.task.as_ref()?)))
            .collect();
        sorted.into_values().cloned().collect()
    }

    pub(crate) fn live_count(&self) -> usize {
        self.live
    }

    pub(crate) fn invalid_names(&self) -> Vec<Problem> {
        let mut problems: Vec<Problem> = self
            .members
            .iter()
            .filter_map(|(file, arns)| match file {
                Filing::Invalid {
                    cluster,
                    name,
                    reason,
                } => Some(Problem::InvalidName {
                    cluster: cluster.clone(),
                    name: name.clone(),
                    reason: reason.clone(),
                    tasks: arns.len(),
                }),
                Filing::Served(_) => None,
            })
            .collect();
        problems.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        problems
    }
}
