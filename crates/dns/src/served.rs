//! Which tasks' addresses DNS hands out, and since when it no longer does: the facts behind
//! safe-to-stop times (the drain API).
//!
//! Rule: a task is *served* while any answer of the table carries its address (service A/AAAA,
//! SRV and its additional records, the per-task name, PTR), and, when the zone has NOTIFY
//! targets, until every one of them has transferred a serial at or after the one that dropped
//! it. The last moment it could have been handed out is the later of the two; a resolver that
//! cached it then holds it for at most the TTL those answers carried. Nothing here runs on the
//! query path: the table's one writer reports each service's served set when it replaces the
//! service's answers, so the cost is per change, not per query.
//!
//! Entries of tasks that left are kept for [`KEEP_LEFT`] after they left (tombstones), so a task
//! that already left the registry still gets its drain answer.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::ServiceKey;

use crate::xfr::serial_le;

/// How long a task that left every answer stays known here.
pub const KEEP_LEFT: Duration = Duration::from_secs(600);

/// Transfers remembered per secondary (serial and time), enough to date many churn steps.
const SECONDARY_HISTORY: usize = 4096;

/// Milliseconds since the Unix epoch, the clock of every time here.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What DNS knows of one task's place in its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedTask {
    /// Task ARN (or a static endpoint's synthetic key).
    pub arn: Arc<str>,
    /// The service whose answers carried it.
    pub service: ServiceKey,
    /// Whether an answer may still hand its address out: ours, or a secondary's that has not
    /// transferred the serial that dropped it yet.
    pub serving: bool,
    /// Why it still counts as served, when it does (`"answers"` or `"secondary 192.0.2.1"`).
    pub held_by: Option<String>,
    /// The last moment its address could have been handed out (ms since the epoch): now while
    /// serving.
    pub last_served_ms: u64,
    /// The TTL of the answers that carried it, in seconds.
    pub ttl: u32,
}

#[derive(Debug)]
struct Entry {
    service: Arc<ServiceKey>,
    serving: bool,
    ttl: u32,
    /// When it left our answers, and the serial that dropped it (set when the serial moves).
    left_ms: u64,
    left_serial: Option<u32>,
}

/// A service's shared key and the tasks it serves now.
type ServedBy = (Arc<ServiceKey>, Vec<Arc<str>>);

#[derive(Default)]
struct Inner {
    tasks: HashMap<Arc<str>, Entry, ahash::RandomState>,
    /// The tasks each service serves now.
    by_service: HashMap<ServiceKey, ServedBy, ahash::RandomState>,
    /// Tasks that left since the serial last moved.
    unsealed: Vec<Arc<str>>,
    /// Tasks in the order they left, for pruning.
    left_order: VecDeque<(u64, Arc<str>)>,
    /// Per secondary, the serials it transferred and when, oldest first.
    secondaries: HashMap<IpAddr, VecDeque<(u32, u64)>>,
}

/// The served set of every service and the tombstones of tasks that left it.
pub struct ServeLog {
    inner: Mutex<Inner>,
    /// Secondaries that count (the zone's NOTIFY targets).
    secondaries: Vec<IpAddr>,
}

impl ServeLog {
    /// A log for a zone whose transfers go to `secondaries` (may be empty).
    pub fn new(secondaries: Vec<IpAddr>) -> Self {
        let mut inner = Inner::default();
        for ip in &secondaries {
            inner.secondaries.insert(*ip, VecDeque::new());
        }
        Self {
            inner: Mutex::new(inner),
            secondaries,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `key`'s answers now carry exactly `arns` with `ttl`, as of `now_ms` (called
    /// after the new answers are visible).
    pub(crate) fn service_changed(
        &self,
        key: &ServiceKey,
        arns: Vec<Arc<str>>,
        ttl: u32,
        now: u64,
    ) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let (shared, old) = match inner.by_service.remove(key) {
            Some((shared, old)) => (shared, old),
            None => (Arc::new(key.clone()), Vec::new()),
        };
        for arn in &arns {
            let entry = inner.tasks.entry(Arc::clone(arn)).or_insert_with(|| Entry {
                service: Arc::clone(&shared),
                serving: true,
                ttl,
                left_ms: now,
                left_serial: None,
            });
            entry.serving = true;
            entry.service = Arc::clone(&shared);
            entry.ttl = ttl;
            entry.left_serial = None;
        }
        if !old.is_empty() {
            let now_served: std::collections::HashSet<&Arc<str>, ahash::RandomState> =
                arns.iter().collect();
            for arn in old.iter().filter(|a| !now_served.contains(a)) {
                if let Some(entry) = inner.tasks.get_mut(arn) {
                    if !entry.serving || !Arc::ptr_eq(&entry.service, &shared) {
                        continue;
                    }
                    entry.serving = false;
                    entry.left_ms = now;
                    entry.left_serial = None;
                    inner.unsealed.push(Arc::clone(arn));
                    inner.left_order.push_back((now, Arc::clone(arn)));
                }
            }
        }
        if !arns.is_empty() {
            inner.by_service.insert(key.clone(), (shared, arns));
        }
        Self::prune(inner, now);
    }

    /// Drops tombstones older than [`KEEP_LEFT`].
    fn prune(inner: &mut Inner, now: u64) {
        let keep = KEEP_LEFT.as_millis() as u64;
        while let Some((left, _)) = inner.left_order.front() {
            if now.saturating_sub(*left) < keep {
                break;
            }
            let Some((left, arn)) = inner.left_order.pop_front() else {
                break;
            };
            let gone = inner
                .tasks
                .get(&arn)
                .is_some_and(|e| !e.serving && e.left_ms == left);
            if gone {
                inner.tasks.remove(&arn);
            }
        }
    }

    /// The serial moved to `serial`: tasks that left since the last move left at it.
    pub(crate) fn sealed(&self, serial: u32) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for arn in inner.unsealed.drain(..) {
            if let Some(entry) = inner.tasks.get_mut(&arn).filter(|e| !e.serving) {
                entry.left_serial = Some(serial);
            }
        }
    }

    /// A secondary at `ip` holds `serial` as of `now` (it transferred it, or asked for IXFR
    /// from it). Secondaries that are not NOTIFY targets are not tracked.
    pub(crate) fn secondary_has(&self, ip: IpAddr, serial: u32, now: u64) {
        let mut inner = self.lock();
        let Some(history) = inner.secondaries.get_mut(&ip) else {
            return;
        };
        if history.back().is_some_and(|(s, _)| serial_le(serial, *s)) {
            return;
        }
        if history.len() == SECONDARY_HISTORY {
            history.pop_front();
        }
        history.push_back((serial, now));
    }

    /// The tasks whose ARN is `task`, or whose id (last ARN segment) is, as of `now`.
    pub fn lookup(&self, task: &str, now: u64) -> Vec<ServedTask> {
        let inner = self.lock();
        if let Some((arn, entry)) = inner.tasks.get_key_value(task) {
            return vec![self.view(&inner, arn, entry, now)];
        }
        inner
            .tasks
            .iter()
            .filter(|(arn, _)| arn.rsplit('/').next() == Some(task))
            .map(|(arn, entry)| self.view(&inner, arn, entry, now))
            .collect()
    }

    fn view(&self, inner: &Inner, arn: &Arc<str>, entry: &Entry, now: u64) -> ServedTask {
        let mut out = ServedTask {
            arn: Arc::clone(arn),
            service: (*entry.service).clone(),
            serving: entry.serving,
            held_by: entry.serving.then(|| "answers".to_string()),
            last_served_ms: if entry.serving { now } else { entry.left_ms },
            ttl: entry.ttl,
        };
        if entry.serving {
            return out;
        }
        // The serial that dropped it is set in the same follower step; until then (or with
        // no secondary) our own answers decide.
        let Some(left_serial) = entry.left_serial else {
            return out;
        };
        for ip in &self.secondaries {
            let caught_up = inner.secondaries.get(ip).and_then(|history| {
                history
                    .iter()
                    .find(|(serial, _)| serial_le(left_serial, *serial))
                    .map(|(_, at)| *at)
            });
            match caught_up {
                Some(at) => out.last_served_ms = out.last_served_ms.max(at),
                None => {
                    out.serving = true;
                    out.held_by = Some(format!("secondary {ip}"));
                    out.last_served_ms = now;
                    return out;
                }
            }
        }
        out
    }

    /// Tasks known here (served now or left within [`KEEP_LEFT`]).
    pub fn len(&self) -> usize {
        self.lock().tasks.len()
    }

    /// Whether no task is known here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            cluster: "c".into(),
            name: name.into(),
        }
    }

    fn arns(v: &[&str]) -> Vec<Arc<str>> {
        v.iter()
            .map(|s| Arc::from(format!("arn:task/c/{s}")))
            .collect()
    }

    #[test]
    fn serving_then_left_with_its_ttl() {
        let log = ServeLog::new(Vec::new());
        log.service_changed(&key("web"), arns(&["a", "b"]), 5, 1_000);
        let a = log.lookup("a", 2_000);
        assert_eq!(a.len(), 1);
        assert!(a[0].serving);
        assert_eq!(a[0].last_served_ms, 2_000);
        assert_eq!(a[0].ttl, 5);
        log.service_changed(&key("web"), arns(&["b"]), 5, 3_000);
        log.sealed(7);
        let a = log.lookup("arn:task/c/a", 9_000).pop().unwrap();
        assert!(!a.serving);
        assert_eq!(a.last_served_ms, 3_000);
        assert!(log.lookup("b", 9_000)[0].serving);
        assert!(log.lookup("zzz", 9_000).is_empty());
        // served again (a flapping check): serving again
        log.service_changed(&key("web"), arns(&["a", "b"]), 5, 10_000);
        assert!(log.lookup("a", 11_000)[0].serving);
    }

    #[test]
    fn service_gone_and_tombstones_pruned() {
        let log = ServeLog::new(Vec::new());
        log.service_changed(&key("web"), arns(&["a"]), 30, 1_000);
        log.service_changed(&key("web"), Vec::new(), 30, 2_000);
        let a = log.lookup("a", 3_000).pop().unwrap();
        assert!(!a.serving);
        assert_eq!((a.last_served_ms, a.ttl), (2_000, 30));
        let later = 2_000 + KEEP_LEFT.as_millis() as u64;
        log.service_changed(&key("other"), arns(&["x"]), 5, later);
        assert!(log.lookup("a", later).is_empty(), "tombstone pruned");
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn a_task_moving_between_services_is_served_by_the_new_one() {
        let log = ServeLog::new(Vec::new());
        log.service_changed(&key("old"), arns(&["a"]), 5, 1_000);
        log.service_changed(&key("new"), arns(&["a"]), 5, 2_000);
        log.service_changed(&key("old"), Vec::new(), 5, 2_000);
        let a = log.lookup("a", 3_000).pop().unwrap();
        assert!(a.serving);
        assert_eq!(a.service, key("new"));
    }

    #[test]
    fn secondaries_hold_a_task_until_they_transfer_the_serial_that_dropped_it() {
        let secondary: IpAddr = "127.0.0.9".parse().unwrap();
        let log = ServeLog::new(vec![secondary]);
        log.service_changed(&key("web"), arns(&["a"]), 5, 1_000);
        log.sealed(10);
        log.secondary_has(secondary, 10, 1_100);
        log.service_changed(&key("web"), Vec::new(), 5, 2_000);
        log.sealed(11);
        let a = log.lookup("a", 2_500).pop().unwrap();
        assert!(a.serving);
        assert_eq!(a.held_by.as_deref(), Some("secondary 127.0.0.9"));
        // an unrelated address transferring changes nothing
        log.secondary_has("127.0.0.8".parse().unwrap(), 11, 2_600);
        assert!(log.lookup("a", 2_700)[0].serving);
        log.secondary_has(secondary, 11, 4_000);
        let a = log.lookup("a", 5_000).pop().unwrap();
        assert!(!a.serving);
        assert_eq!(a.last_served_ms, 4_000);
    }
}
