//! The counters the API does not own, written in Prometheus form: DNS, the ECS watcher, the
//! active checks.

use std::sync::atomic::Ordering;

use api::{Exposition, Kind};
use dns::DnsMetrics;

pub(super) fn health_metrics(h: &health::HealthMetrics, e: &mut Exposition) {
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

pub(super) fn dns_metrics(dns: &DnsMetrics, e: &mut Exposition) {
    let m = dns.snapshot();
    let name = "ecsdns_dns_queries_total";
    e.family(name, "DNS queries received, by transport.", Kind::Counter)
        .sample(name, &[("transport", "udp")], m.udp as f64)
        .sample(name, &[("transport", "tcp")], m.tcp as f64)
        .sample(name, &[("transport", "tls")], m.tls as f64)
        .sample(name, &[("transport", "https")], m.https as f64);
    let name = "ecsdns_tls_certificate_reloads_total";
    e.family(
        name,
        "Changed TLS certificate files: loaded (ok) or refused, the previous pair serving (error).",
        Kind::Counter,
    )
    .sample(name, &[("result", "ok")], m.certificate_reloads as f64)
    .sample(name, &[("result", "error")], m.certificate_errors as f64);
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

pub(super) fn watcher_metrics(w: &ecs::Watcher, e: &mut Exposition) {
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
    if let Some((last, lag)) = w.status.last_message() {
        e.single(
            "ecsdns_sqs_message_lag_seconds",
            "How long the oldest message of the latest receive had waited in the queue.",
            Kind::Gauge,
            lag.unwrap_or(0) as f64 / 1000.0,
        );
        e.single(
            "ecsdns_sqs_last_message_timestamp_seconds",
            "When a receive last returned messages (Unix time).",
            Kind::Gauge,
            last as f64 / 1000.0,
        );
    }
    // Per queue (`queue`, `queue:CLUSTER`): a silent member queue is not hidden by a busy one.
    let name = "ecsdns_sqs_queue_last_message_timestamp_seconds";
    e.family(
        name,
        "When a receive from each queue last returned messages (Unix time).",
        Kind::Gauge,
    );
    for (queue, s) in w.status.queues() {
        if let Some(ms) = s.last_message_ms {
            e.sample(name, &[("queue", &queue)], ms as f64 / 1000.0);
        }
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
        let read = |p: &ecs::pacer::Pacer| {
            let s = &p.stats;
            match name {
                "ecsdns_aws_calls_total" => s.calls.load(Relaxed),
                "ecsdns_aws_errors_total" => s.errors.load(Relaxed),
                _ => s.throttled.load(Relaxed),
            }
        };
        // The sum over regions and accounts, then in a family of its own (so no `sum` counts
        // twice) each (region, account)'s buckets: quotas are per account and region, so that
        // is where throttling is read.
        let pick = |p: &ecs::watcher::RegionPacers, service: &str| {
            read(if service == "ecs" { &p.ecs } else { &p.ec2 })
        };
        e.family(name, help, Kind::Counter);
        for service in ["ecs", "ec2"] {
            let total: u64 = w.pacers.iter().map(|p| pick(p, service)).sum();
            e.sample(name, &[("service", service)], total as f64);
        }
        let regional = name.replacen("ecsdns_aws_", "ecsdns_aws_region_", 1);
        e.family(
            &regional,
            &format!("{help} By region and account."),
            Kind::Counter,
        );
        for service in ["ecs", "ec2"] {
            for p in &w.pacers {
                let labels = [
                    ("service", service),
                    ("region", p.region.as_str()),
                    ("account", p.account.as_str()),
                ];
                e.sample(&regional, &labels, pick(p, service) as f64);
            }
        }
    }
    let (task_defs, hosts, services) = w.lookup_failures();
    let name = "ecsdns_lookup_failures_total";
    e.family(
        name,
        "Lookups that failed: task definitions, container instance addresses, service descriptions.",
        Kind::Counter,
    )
    .sample(name, &[("what", "task_definition")], task_defs as f64)
    .sample(name, &[("what", "host")], hosts as f64)
    .sample(name, &[("what", "service")], services as f64);
}
