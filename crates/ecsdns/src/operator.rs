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
            if let Some(q) = w.status.queue() {
                let mut queue = status("queue".into(), &q, show_errors);
                let c = &w.status.counters;
                let last = c.sqs_last_message_ms.load(Ordering::Relaxed);
                queue.tasks = None;
                if last > 0 {
                    queue.lag_ms = Some(c.sqs_lag_ms.load(Ordering::Relaxed));
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

fn health_metrics(h: &health::HealthMetrics, e: &mut Exposition) {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as f64;
    let name = "ecsdns_health_probes_total";
    e.family(name, "Active check probes, by result.", Kind::Counter)
        .sample(name, &[("result", "pass")], get(&h.passed))
        .sample(name, &[("result", "fail")], get(&h.failed));
    let name = "ecsdns_health_transitions_total";
    e.family(
        name,
        "Active check verdicts that flipped (flaps), by the new verdict.",
        Kind::Counter,
    )
    .sample(name, &[("to", "passing")], get(&h.to_passing))
    .sample(name, &[("to", "failing")], get(&h.to_failing));
    for (name, help, kind, value) in [
        (
            "ecsdns_health_targets",
            "Tasks under active checks now.",
            Kind::Gauge,
            get(&h.targets),
        ),
        (
            "ecsdns_health_in_flight",
            "Probes in flight now.",
            Kind::Gauge,
            get(&h.in_flight),
        ),
        (
            "ecsdns_health_late_probes_total",
            "Probes started over half an interval late: the prober is falling behind.",
            Kind::Counter,
            get(&h.late),
        ),
        (
            "ecsdns_health_unprobeable_total",
            "Tasks whose check could not be probed (no address, or no port of the check's name).",
            Kind::Counter,
            get(&h.unprobeable),
        ),
    ] {
        e.single(name, help, kind, value);
    }
}

fn dns_metrics(dns: &DnsMetrics, e: &mut Exposition) {
    let m = dns.snapshot();
    let name = "ecsdns_dns_queries_total";
    e.family(name, "DNS queries received, by transport.", Kind::Counter)
        .sample(name, &[("transport", "udp")], m.udp as f64)
        .sample(name, &[("transport", "tcp")], m.tcp as f64);
    let name = "ecsdns_dns_responses_by_qtype_total";
    e.family(name, "DNS responses by question type.", Kind::Counter);
    for (qtype, n) in &m.by_qtype {
        e.sample(name, &[("qtype", qtype)], *n as f64);
    }
    let name = "ecsdns_dns_responses_by_rcode_total";
    e.family(name, "DNS responses by response code.", Kind::Counter);
    for (rcode, n) in &m.by_rcode {
        e.sample(name, &[("rcode", rcode)], *n as f64);
    }
    let counters = [
        (
            "ecsdns_dns_truncated_total",
            "UDP responses sent with TC=1.",
            m.truncated,
        ),
        (
            "ecsdns_dns_dropped_total",
            "Packets dropped unanswered (too short, or responses).",
            m.dropped,
        ),
        (
            "ecsdns_dns_tcp_connections_total",
            "TCP connections accepted.",
            m.tcp_connections,
        ),
        (
            "ecsdns_dns_tcp_rejected_total",
            "TCP connections refused over the connection cap.",
            m.tcp_rejected,
        ),
        (
            "ecsdns_dns_tcp_idle_closed_total",
            "TCP connections closed idle or stalled.",
            m.tcp_idle_closed,
        ),
        (
            "ecsdns_dns_panics_total",
            "Queries whose answer panicked (a bug; the server survives it).",
            m.panicked,
        ),
        (
            "ecsdns_dns_rrl_dropped_total",
            "UDP answers dropped by response rate limiting.",
            m.rrl_dropped,
        ),
        (
            "ecsdns_dns_rrl_slipped_total",
            "UDP answers sent truncated (TC=1) by response rate limiting instead of dropped.",
            m.rrl_slipped,
        ),
        (
            "ecsdns_dns_transfers_total",
            "Zone transfer queries (AXFR, IXFR) answered over TCP, refusals included.",
            m.transfers,
        ),
        (
            "ecsdns_dns_transfer_messages_total",
            "Messages sent answering zone transfers.",
            m.transfer_messages,
        ),
    ];
    for (name, help, n) in counters {
        e.single(name, help, Kind::Counter, n as f64);
    }
    let name = "ecsdns_dns_latency_seconds";
    let values = api::HistogramValues {
        bounds: m.latency.bounds,
        counts: m.latency.counts,
        sum: m.latency.sum,
    };
    e.family(
        name,
        "Time from receiving a DNS query to sending its answer (UDP: per receive batch).",
        Kind::Histogram,
    )
    .histogram(name, &[], &values);
}

fn watcher_metrics(w: &ecs::Watcher, e: &mut Exposition) {
    use std::sync::atomic::Ordering::Relaxed;
    let d = w.decode_stats();
    let name = "ecsdns_events_total";
    e.family(
        name,
        "ECS events from the queue by outcome: decoded into updates, or ignored (unknown detail type, unwatched cluster) or poison.",
        Kind::Counter,
    );
    for (result, c) in [
        ("received", &d.received),
        ("decoded", &d.decoded),
        ("unknown_type", &d.unknown_type),
        ("unwatched", &d.unwatched),
        ("poison", &d.poison),
    ] {
        e.sample(name, &[("result", result)], c.load(Relaxed) as f64);
    }
    e.single(
        "ecsdns_event_unknown_fields_total",
        "Fields in events that this version does not know (a sign of a newer event schema).",
        Kind::Counter,
        d.unknown_fields.load(Relaxed) as f64,
    );
    let c = &w.status.counters;
    let counters = [
        (
            "ecsdns_reconciles_total",
            "Cluster reconciles completed.",
            &c.reconciles,
        ),
        (
            "ecsdns_reconcile_failures_total",
            "Cluster reconciles that failed.",
            &c.reconcile_failures,
        ),
        (
            "ecsdns_sqs_receives_total",
            "SQS receive calls that worked.",
            &c.sqs_receives,
        ),
        (
            "ecsdns_sqs_errors_total",
            "SQS calls that failed.",
            &c.sqs_errors,
        ),
        (
            "ecsdns_sqs_deleted_total",
            "Messages deleted after their updates were applied.",
            &c.sqs_deleted,
        ),
        (
            "ecsdns_health_lookups_total",
            "Events whose missing health was fetched with DescribeTasks.",
            &c.health_lookups,
        ),
    ];
    for (name, help, n) in counters {
        e.single(name, help, Kind::Counter, n.load(Relaxed) as f64);
    }
    let last = c.sqs_last_message_ms.load(Relaxed);
    if last > 0 {
        e.single(
            "ecsdns_sqs_message_lag_seconds",
            "How long the oldest message of the latest receive had waited in the queue.",
            Kind::Gauge,
            c.sqs_lag_ms.load(Relaxed) as f64 / 1000.0,
        );
        e.single(
            "ecsdns_sqs_last_message_timestamp_seconds",
            "When a receive last returned messages (Unix time).",
            Kind::Gauge,
            last as f64 / 1000.0,
        );
    }
    let name = "ecsdns_reconcile_duration_seconds";
    e.family(
        name,
        "Duration of each cluster's last successful reconcile.",
        Kind::Gauge,
    );
    let clusters = w.status.clusters();
    for (label, s) in &clusters {
        let secs = s.duration.map_or(0.0, |d| d.as_secs_f64());
        e.sample(name, &[("cluster", label)], secs);
    }
    let name = "ecsdns_reconcile_tasks";
    e.family(
        name,
        "Tasks each cluster's last reconcile listed.",
        Kind::Gauge,
    );
    for (label, s) in &clusters {
        e.sample(name, &[("cluster", label)], s.tasks as f64);
    }
    for (name, help) in [
        (
            "ecsdns_aws_calls_total",
            "AWS API calls sent (retries included).",
        ),
        ("ecsdns_aws_errors_total", "AWS API calls that failed."),
        (
            "ecsdns_aws_throttled_total",
            "AWS API calls that were throttled.",
        ),
    ] {
        e.family(name, help, Kind::Counter);
        for (service, pacer) in [("ecs", &w.ecs_pacer), ("ec2", &w.ec2_pacer)] {
            let s = &pacer.stats;
            let n = match name {
                "ecsdns_aws_calls_total" => s.calls.load(Relaxed),
                "ecsdns_aws_errors_total" => s.errors.load(Relaxed),
                _ => s.throttled.load(Relaxed),
            };
            e.sample(name, &[("service", service)], n as f64);
        }
    }
    let (task_defs, hosts) = w.lookup_failures();
    let name = "ecsdns_lookup_failures_total";
    e.family(
        name,
        "Lookups that failed: task definitions, container instance addresses.",
        Kind::Counter,
    )
    .sample(name, &[("what", "task_definition")], task_defs as f64)
    .sample(name, &[("what", "host")], hosts as f64);
}
