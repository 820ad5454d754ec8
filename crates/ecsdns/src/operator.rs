//! What the HTTP API sees of the rest of the process ([`api::Operator`]): readiness of every
//! source, the DNS and watcher counters in Prometheus form, poison events, the reconcile trigger.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::dto::{ProblemDto, Readiness, SourceStatus};
use api::{ApiError, Exposition, Histogram, Kind};
use dns::DnsMetrics;
use ecs::status::SourceState;

mod metrics;
use metrics::{dns_metrics, health_metrics, watcher_metrics};

/// Bounds of the update-to-DNS latency histogram, seconds.
pub const VISIBLE_BOUNDS: [f64; 10] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// Sources the binary runs itself (the endpoints file, the demo), reported like the watcher's.
#[derive(Debug, Default)]
pub struct LocalSources {
    states: Mutex<BTreeMap<String, SourceState>>,
    /// The registry started from the state file (warm restart).
    restored: std::sync::atomic::AtomicBool,
}

impl LocalSources {
    /// Records that the registry was filled from the state file at start.
    pub fn set_restored(&self) {
        self.restored.store(true, Ordering::Relaxed);
    }

    /// Declares a source that is not synced yet.
    pub fn expect(&self, name: &str) {
        self.lock().entry(name.to_string()).or_default();
    }

    /// The source's last attempt worked.
    pub fn ok(&self, name: &str, tasks: usize) {
        self.lock().insert(
            name.to_string(),
            SourceState {
                last_ok: Some(SystemTime::now()),
                tasks,
                ..SourceState::default()
            },
        );
    }

    /// The source's last attempt failed; what it had still serves.
    pub fn failed(&self, name: &str, error: &str) {
        let mut states = self.lock();
        let state = states.entry(name.to_string()).or_default();
        state.error = Some(error.to_string());
        state.failures += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SourceState>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> BTreeMap<String, SourceState> {
        self.lock().clone()
    }
}

/// The binary's [`api::Operator`].
pub struct AppOperator {
    /// DNS counters.
    pub dns: Arc<DnsMetrics>,
    /// The ECS watcher, when clusters are configured.
    pub watcher: Option<Arc<ecs::Watcher>>,
    /// The endpoints file and the demo.
    pub local: Arc<LocalSources>,
    /// Time from the applier receiving updates to DNS serving them.
    pub visible: Arc<Histogram>,
    /// Active check counters.
    pub health: Arc<health::HealthMetrics>,
    /// The DNS answers, for what they serve (the drain API).
    pub table: Arc<dns::AnswerTable>,
}

fn status(name: String, s: &SourceState, show_errors: bool) -> SourceStatus {
    SourceStatus {
        name,
        ok: s.error.is_none(),
        synced: s.last_ok.is_some(),
        failures: s.failures,
        error: if show_errors { s.error.clone() } else { None },
        last_ok_age_seconds: s
            .last_ok
            .and_then(|t| t.elapsed().ok())
            .map(|d| d.as_secs()),
        tasks: s.last_ok.map(|_| s.tasks),
        lag_ms: None,
        last_event_age_seconds: None,
    }
}

impl api::Operator for AppOperator {
    fn readiness(&self, show_errors: bool) -> Readiness {
        let mut sources = Vec::new();
        let mut ready = true;
        for (name, s) in self.local.snapshot() {
            ready &= s.last_ok.is_some();
            sources.push(status(name, &s, show_errors));
        }
        if let Some(w) = &self.watcher {
            for (label, s) in w.status.clusters() {
                ready &= s.last_ok.is_some();
                sources.push(status(format!("cluster:{label}"), &s, show_errors));
            }
            // The queue does not gate readiness: reconcile is the initial sync, the queue only
            // keeps it fresh between reconciles.
            for (name, q) in w.status.queues() {
                let mut queue = status(name, &q, show_errors);
                queue.tasks = None;
                if let Some(last) = q.last_message_ms {
                    queue.lag_ms = q.lag_ms;
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    queue.last_event_age_seconds = Some(now.saturating_sub(last) / 1000);
                }
                sources.push(queue);
            }
        }
        let degraded = sources.iter().any(|s| !s.ok);
        Readiness {
            ready,
            degraded,
            stale: !ready && self.local.restored.load(Ordering::Relaxed),
            sources,
        }
    }

    fn metrics(&self, e: &mut Exposition) {
        dns_metrics(&self.dns, e);
        let name = "ecsdns_update_visible_seconds";
        e.family(
            name,
            "Time from the registry applier receiving a batch of updates to DNS serving it.",
            Kind::Histogram,
        )
        .histogram(name, &[], &self.visible.values());
        let name = "ecsdns_source_up";
        e.family(
            name,
            "1 when the source's last attempt worked (clusters, queue, endpoints file, demo).",
            Kind::Gauge,
        );
        for s in self.readiness(false).sources {
            e.sample(name, &[("source", &s.name)], if s.ok { 1.0 } else { 0.0 });
        }
        if let Some(w) = &self.watcher {
            watcher_metrics(w, e);
        }
        health_metrics(&self.health, e);
    }

    fn problems(&self) -> Vec<ProblemDto> {
        // Every source whose latest attempt failed (a rejected reload keeps the old endpoints:
        // the operator must hear of it, not find it in the log).
        let mut problems: Vec<ProblemDto> = self
            .readiness(true)
            .sources
            .into_iter()
            .filter_map(|s| {
                Some(ProblemDto::SourceError {
                    error: s.error?,
                    source: s.name,
                    failures: u64::from(s.failures),
                })
            })
            .collect();
        let Some(w) = &self.watcher else {
            return problems;
        };
        problems.extend(w.status.poison_messages().into_iter().map(|p| {
            ProblemDto::PoisonEvent {
                message_id: p.message_id,
                reason: p.reason,
                seen_at: p
                    .seen_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO)
                    .as_secs(),
            }
        }));
        problems
    }

    fn served(&self, task: &str, now_ms: u64) -> Vec<api::dto::ServedInfo> {
        self.table
            .served()
            .lookup(task, now_ms)
            .into_iter()
            .map(|s| api::dto::ServedInfo {
                arn: s.arn.to_string(),
                serving: s.serving,
                held_by: s.held_by,
                last_served_ms: s.last_served_ms,
                ttl: s.ttl,
            })
            .collect()
    }

    fn explain(
        &self,
        name: &str,
        qtype: &str,
        from: Option<std::net::IpAddr>,
        service: Option<&str>,
    ) -> Result<api::dto::DnsAnswer, ApiError> {
        let e = self
            .table
            .explain(name, qtype, from, service)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(api::dto::DnsAnswer {
            name: e.name,
            qtype: e.qtype,
            rcode: e.rcode,
            answers: e.answers,
            addresses: e.addresses,
            targets: e.targets,
            client_az: e.client_az,
            az_preference: e.az_preference,
            group: e.group,
        })
    }

    fn query_counts(&self) -> Vec<(model::ServiceKey, u64)> {
        self.table.query_counts()
    }

    fn update_latency(&self) -> api::HistogramValues {
        self.visible.values()
    }

    fn reconcile(&self) -> Result<usize, ApiError> {
        match &self.watcher {
            Some(w) => Ok(w.reconcile_now()),
            None => Err(ApiError::Conflict(
                "no ECS cluster is watched: nothing to reconcile".into(),
            )),
        }
    }
}
