//! Active health checks: TCP connect or HTTP GET probes of every live task whose service
//! declares a check, turned into [`model::Update::Probe`] verdicts for the registry.
//!
//! The prober follows the registry's change feed: a task is probed from the moment it appears
//! live in a service snapshot until it leaves (stopped, stopping, draining instance), so a
//! task is never probed twice and never after it is gone. Each task has one small async loop
//! (no thread per check); a semaphore bounds how many probes are in flight at once, and each
//! interval is jittered so 10,000 tasks that appeared together do not stay in lock-step.
//!
//! Verdicts are smoothed: a task's first probe result decides at once (a new task is not
//! served before its first pass), then `fall` consecutive failures take a passing task out and
//! `rise` consecutive passes bring a failing one back. Only transitions are sent.

mod probe;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::{Check, CheckPort, CheckState, ServiceKey, Update};
use registry::{Registry, ServiceSnapshot};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Prober settings.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Probes in flight at once, over all tasks. Bounds sockets and CPU bursts; with a 1 s
    /// timeout, 512 allows 512 dead endpoints per second without delaying the live ones.
    pub max_in_flight: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self { max_in_flight: 512 }
    }
}

/// Prober counters, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct HealthMetrics {
    /// Tasks being probed now.
    pub targets: AtomicU64,
    /// Probes in flight now.
    pub in_flight: AtomicU64,
    /// Probes that passed.
    pub passed: AtomicU64,
    /// Probes that failed (refused, timed out, HTTP 4xx/5xx, ...).
    pub failed: AtomicU64,
    /// Verdicts that turned to passing (not counting a task's first verdict).
    pub to_passing: AtomicU64,
    /// Verdicts that turned to failing (not counting a task's first verdict).
    pub to_failing: AtomicU64,
    /// Probes that started more than half an interval late: the prober is falling behind.
    pub late: AtomicU64,
    /// Tasks whose check cannot be probed (no address, or no port of the check's name).
    pub unprobeable: AtomicU64,
}

/// What one task is probed as; a change (new address, new check) restarts its loop.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Probe(SocketAddr, Arc<Check>),
    /// Cannot be probed: reported failing once with this reason.
    Unprobeable(String),
}

struct Target {
    plan: Plan,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

/// Everything the per-task loops share.
struct Shared {
    out: ingest::Sink,
    metrics: Arc<HealthMetrics>,
    permits: Semaphore,
}

/// Runs the prober until `stop` turns true or the registry side of `out` closes.
pub async fn run(
    registry: Arc<Registry>,
    out: ingest::Sink,
    metrics: Arc<HealthMetrics>,
    config: HealthConfig,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        out,
        metrics,
        permits: Semaphore::new(config.max_in_flight.max(1)),
    });
    let mut prober = Prober {
        shared,
        targets: HashMap::new(),
        by_service: HashMap::new(),
    };
    let mut changed = registry.subscribe();
    let mut seen = registry.generation();
    prober.sync_all(&registry);
    loop {
        tokio::select! {
            r = changed.changed() => if r.is_err() { break },
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let changes = registry.changes_since(seen);
        seen = changes.generation;
        match changes.services {
            Some(keys) => {
                for key in keys {
                    let snapshot = registry.service(&key);
                    prober.sync_service(&key, snapshot.as_deref());
                }
            }
            None => prober.sync_all(&registry),
        }
        if prober.shared.out.is_closed() {
            break;
        }
    }
    prober.targets.clear();
    prober.shared.metrics.targets.store(0, Ordering::Relaxed);
}

struct Prober {
    shared: Arc<Shared>,
    targets: HashMap<Arc<str>, Target>,
    by_service: HashMap<ServiceKey, Vec<Arc<str>>>,
}

impl Prober {
    fn sync_all(&mut self, registry: &Registry) {
        let snapshots = registry.services();
        let mut gone: Vec<ServiceKey> = self.by_service.keys().cloned().collect();
        gone.retain(|k| !snapshots.iter().any(|s| &s.key == k));
        for key in gone {
            self.sync_service(&key, None);
        }
        for snapshot in snapshots {
            self.sync_service(&snapshot.key, Some(&snapshot));
        }
    }

    /// Brings the probes of one service in line with its snapshot (`None`: the service left).
    fn sync_service(&mut self, key: &ServiceKey, snapshot: Option<&ServiceSnapshot>) {
        // A Service Connect name lists tasks its service lists (and probes) already.
        let snapshot = snapshot.filter(|s| !s.is_connect_name());
        let mut wanted: Vec<(Arc<str>, Plan, Option<bool>)> = Vec::new();
        for view in snapshot.map(|s| s.tasks.as_slice()).unwrap_or_default() {
            let task = &view.task;
            let Some(check) = &task.check else { continue };
            if !task.is_live(view.instance_draining) {
                continue;
            }
            let plan = match (task.addresses.first(), check.port_of(task)) {
                (Some(ip), Some(port)) => {
                    Plan::Probe(SocketAddr::new(*ip, port), Arc::clone(check))
                }
                (None, _) => Plan::Unprobeable("the task has no address".into()),
                (_, None) => Plan::Unprobeable(match &check.port {
                    CheckPort::Named(n) => format!("the task has no port named {n}"),
                    CheckPort::Number(n) => format!("port {n} unresolved"),
                }),
            };
            let known = view.check.as_ref().map(|c| c.passing);
            wanted.push((Arc::clone(&task.arn), plan, known));
        }
        // By ARN: a service of 10,000 tasks must not cost 10,000 squared comparisons per change.
        let by_arn: HashMap<&str, &Plan> = wanted.iter().map(|(a, p, _)| (&**a, p)).collect();
        let old = self.by_service.remove(key).unwrap_or_default();
        for arn in &old {
            let keep = by_arn
                .get(&**arn)
                .is_some_and(|plan| self.targets.get(arn).is_some_and(|t| &t.plan == *plan));
            if !keep {
                self.targets.remove(arn);
            }
        }
        let mut arns = Vec::with_capacity(wanted.len());
        for (arn, plan, known) in wanted {
            arns.push(Arc::clone(&arn));
            if self.targets.contains_key(&arn) {
                continue;
            }
            let handle = match &plan {
                Plan::Probe(addr, check) => Some(tokio::spawn(probe_loop(
                    Arc::clone(&arn),
                    *addr,
                    Arc::clone(check),
                    known,
                    Arc::clone(&self.shared),
                ))),
                Plan::Unprobeable(reason) => {
                    self.shared
                        .metrics
                        .unprobeable
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(task = %arn, reason, "active check cannot be probed");
                    let update = verdict(&arn, false, reason.clone());
                    let _ = self.shared.out.offer(vec![update]);
                    None
                }
            };
            self.targets.insert(arn, Target { plan, handle });
        }
        if !arns.is_empty() {
            self.by_service.insert(key.clone(), arns);
        }
        self.shared
            .metrics
            .targets
            .store(self.targets.len() as u64, Ordering::Relaxed);
    }
}

fn verdict(arn: &Arc<str>, passing: bool, reason: String) -> Update {
    let since_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Update::Probe {
        arn: Arc::clone(arn),
        state: CheckState {
            passing,
            reason: reason.into(),
            since_ms,
        },
    }
}

/// A small xorshift generator for jitter: no dependency, and no need for quality.
struct Jitter(u64);

impl Jitter {
    fn new(arn: &str) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = ahash::RandomState::new().build_hasher();
        h.write(arn.as_bytes());
        Self(h.finish() | 1)
    }

    /// A fraction in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Probes one task until aborted. `state` is the verdict the registry already holds, if any.
async fn probe_loop(
    arn: Arc<str>,
    addr: SocketAddr,
    check: Arc<Check>,
    mut state: Option<bool>,
    shared: Arc<Shared>,
) {
    let metrics = &shared.metrics;
    let mut jitter = Jitter::new(&arn);
    let mut streak = 0u8;
    // The first probe soon (a new task waits for it to be served), spread over 100 ms.
    let mut next = Instant::now() + Duration::from_millis((jitter.next() * 100.0) as u64);
    let mut first = true;
    loop {
        tokio::time::sleep_until(next).await;
        let Ok(permit) = shared.permits.acquire().await else {
            return;
        };
        let started = Instant::now();
        // The first probes of many tasks that appeared together queue for permits by design.
        if !first && started.saturating_duration_since(next) > check.interval / 2 {
            metrics.late.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let outcome = probe::probe(&check.kind, addr, check.timeout).await;
        metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
        let counter = if outcome.passed {
            &metrics.passed
        } else {
            &metrics.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let flip = match state {
            None => true,
            Some(current) if current == outcome.passed => {
                streak = 0;
                false
            }
            Some(_) => {
                streak += 1;
                streak
                    >= if outcome.passed {
                        check.rise
                    } else {
                        check.fall
                    }
            }
        };
        if flip {
            if state.is_some() {
                let counter = if outcome.passed {
                    &metrics.to_passing
                } else {
                    &metrics.to_failing
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if outcome.passed {
                    tracing::info!(
                        task = %arn,
                        %addr,
                        reason = %outcome.reason,
                        "active check passing again"
                    );
                } else {
                    tracing::warn!(
                        task = %arn,
                        %addr,
                        reason = %outcome.reason,
                        "active check failing: task out of DNS"
                    );
                }
            } else if !outcome.passed {
                // A task failing from its very first probe never served: say so, or it is
                // invisible (no transition happened).
                tracing::warn!(
                    task = %arn,
                    %addr,
                    reason = %outcome.reason,
                    "active check failing from the first probe: task not served"
                );
            }
            state = Some(outcome.passed);
            streak = 0;
            if shared
                .out
                .send(vec![verdict(&arn, outcome.passed, outcome.reason)])
                .await
                .is_err()
            {
                return;
            }
        }
        // Keep the cadence from the schedule, jittered by up to ±10%. After falling behind,
        // take a fresh random phase from now: probing at once to catch up would keep every
        // task that queued together in one burst.
        next += check.interval.mul_f64(0.9 + 0.2 * jitter.next());
        let now = Instant::now();
        if next < now {
            next = now + check.interval.mul_f64(jitter.next());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        let mut j = Jitter::new("arn:x");
        for _ in 0..10_000 {
            let v = j.next();
            assert!((0.0..1.0).contains(&v));
        }
    }
}
