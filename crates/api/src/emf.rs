//! CloudWatch Embedded Metric Format (EMF): the figures of `/metrics` as JSON log lines that
//! CloudWatch Logs turns into metrics, so an ECS task on the `awslogs` driver has CloudWatch
//! metrics (and alarms on them) with no agent and no `cloudwatch:PutMetricData` permission.
//!
//! Every interval the writer builds the same [`Exposition`] as a scrape and prints one line per
//! dimension set: the zone's totals (queries, served endpoints, fail-open services,
//! update-to-visible p99, events, reconcile errors, SQS lag), responses per rcode, each source's
//! up/down, and each service's served endpoints and fail-open flag. Counters become the change
//! over the interval (CloudWatch sums them); gauges are written as they are.
//!
//! Format rules kept (checked by the tests and by `tests/e2e` on a real run): a root `_aws`
//! object with a millisecond `Timestamp` and one `CloudWatchMetrics` directive naming the
//! namespace, the dimension sets (every dimension a root string member) and the metrics (every
//! name a root number member, at most 100); one JSON object per line.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use registry::Registry;
use serde_json::{Map, Value, json};

use crate::Operator;
use crate::metrics::{Exposition, HistogramValues};

/// Every metric name the writer can emit, for templates and dashboards to check against (an
/// alarm on a misspelt name never fires).
pub const METRICS: &[&str] = &[
    "Queries",
    "ServedEndpoints",
    "FailOpenServices",
    "RegistryProblems",
    "UpdateVisibleP99",
    "Events",
    "PoisonEvents",
    "ReconcileErrors",
    "ReconcileRemoved",
    "SqsErrors",
    "AwsThrottled",
    "SqsLag",
    "Responses",
    "SourceUp",
    "Tasks",
    "FailOpen",
];

/// Every dimension name the writer uses.
pub const DIMENSIONS: &[&str] = &["Zone", "Rcode", "Source", "Cluster", "Service"];

/// EMF writer settings.
#[derive(Debug, Clone)]
pub struct EmfConfig {
    /// The CloudWatch namespace of every metric.
    pub namespace: String,
    /// Time between two sets of lines (CloudWatch's standard resolution is a minute).
    pub interval: Duration,
    /// The DNS zone: the `Zone` dimension (without the trailing dot).
    pub zone: String,
}

/// The per-interval state: counter values at the previous tick, so counters can be written as
/// the change over the interval.
#[derive(Debug)]
pub struct EmfWriter {
    config: EmfConfig,
    zone: String,
    previous: HashMap<String, f64>,
    previous_visible: Option<HistogramValues>,
}

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Count,
    Milliseconds,
    Seconds,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
            Self::None => "None",
        }
    }
}

/// One line's worth: dimension values and metric values.
struct Line {
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<(&'static str, Unit, f64)>,
}

impl EmfWriter {
    /// A writer whose first lines count everything since the process started.
    pub fn new(config: EmfConfig) -> Self {
        let zone = config.zone.trim_end_matches('.').to_ascii_lowercase();
        Self {
            config,
            zone,
            previous: HashMap::new(),
            previous_visible: None,
        }
    }

    /// The change of a counter since the previous tick (all of it at the first).
    fn delta(&mut self, key: &str, now: f64) -> f64 {
        let before = self.previous.insert(key.to_string(), now).unwrap_or(0.0);
        (now - before).max(0.0)
    }

    /// The lines for this moment (`now_ms`: milliseconds since the epoch).
    pub fn lines(
        &mut self,
        registry: &Registry,
        operator: &dyn Operator,
        now_ms: u64,
    ) -> Vec<String> {
        let mut e = Exposition::new();
        crate::views::registry_metrics(registry, &mut e);
        operator.metrics(&mut e);
        let zone = self.zone.clone();
        let mut lines = Vec::new();

        // The zone's totals.
        let mut totals = Vec::new();
        let queries = e.sum("ecsdns_dns_queries_total", &[]).unwrap_or(0.0);
        totals.push(("Queries", Unit::Count, self.delta("queries", queries)));
        // One listing of the services for the zone's total and the per-service lines.
        let mut snapshots = registry.services();
        snapshots.retain(|s| !s.is_connect_name());
        let per_service: Vec<usize> = snapshots.iter().map(|s| s.served_views().count()).collect();
        let served: usize = per_service.iter().sum();
        totals.push(("ServedEndpoints", Unit::Count, served as f64));
        let fail_open = e.sum("ecsdns_services_fail_open", &[]).unwrap_or(0.0);
        totals.push(("FailOpenServices", Unit::Count, fail_open));
        let problems = e.sum("ecsdns_registry_problems", &[]).unwrap_or(0.0);
        totals.push(("RegistryProblems", Unit::Count, problems));
        if let Some(p99) = self.visible_p99_ms(&e) {
            totals.push(("UpdateVisibleP99", Unit::Milliseconds, p99));
        }
        for (series, labels, metric) in [
            (
                "ecsdns_events_total",
                &[("result", "received")][..],
                "Events",
            ),
            (
                "ecsdns_events_total",
                &[("result", "poison")][..],
                "PoisonEvents",
            ),
            (
                "ecsdns_reconcile_failures_total",
                &[][..],
                "ReconcileErrors",
            ),
            (
                "ecsdns_registry_reset_removed_total",
                &[][..],
                "ReconcileRemoved",
            ),
            ("ecsdns_sqs_errors_total", &[][..], "SqsErrors"),
            ("ecsdns_aws_throttled_total", &[][..], "AwsThrottled"),
        ] {
            // Only what this server has: no watcher, no ECS figures.
            if let Some(v) = e.sum(series, labels) {
                let d = self.delta(metric, v);
                totals.push((metric, Unit::Count, d));
            }
        }
        if let Some(lag) = e.sum("ecsdns_sqs_message_lag_seconds", &[]) {
            totals.push(("SqsLag", Unit::Seconds, lag));
        }
        lines.push(Line {
            dimensions: vec![("Zone", zone.clone())],
            metrics: totals,
        });

        // Responses per rcode.
        let rcodes: Vec<(String, f64)> = e
            .samples()
            .iter()
            .filter(|s| s.name == "ecsdns_dns_responses_by_rcode_total")
            .filter_map(|s| {
                let rcode = s.labels.iter().find(|(k, _)| k == "rcode")?;
                Some((rcode.1.clone(), s.value))
            })
            .collect();
        for (rcode, n) in rcodes {
            let d = self.delta(&format!("rcode/{rcode}"), n);
            lines.push(Line {
                dimensions: vec![("Zone", zone.clone()), ("Rcode", rcode)],
                metrics: vec![("Responses", Unit::Count, d)],
            });
        }

        // Each source.
        for s in e.samples().iter().filter(|s| s.name == "ecsdns_source_up") {
            let Some((_, source)) = s.labels.iter().find(|(k, _)| k == "source") else {
                continue;
            };
            lines.push(Line {
                dimensions: vec![("Zone", zone.clone()), ("Source", source.clone())],
                metrics: vec![("SourceUp", Unit::None, s.value)],
            });
        }

        // Each service.
        for (snapshot, served) in snapshots.iter().zip(per_service) {
            lines.push(Line {
                dimensions: vec![
                    ("Zone", zone.clone()),
                    ("Cluster", snapshot.key.cluster.to_string()),
                    ("Service", snapshot.key.name.to_string()),
                ],
                metrics: vec![
                    ("ServedEndpoints", Unit::Count, served as f64),
                    ("Tasks", Unit::Count, snapshot.tasks.len() as f64),
                    (
                        "FailOpen",
                        Unit::None,
                        f64::from(u8::from(snapshot.fail_open)),
                    ),
                ],
            });
        }

        lines
            .into_iter()
            .map(|line| self.render(line, now_ms))
            .collect()
    }

    /// The 99th percentile of update-to-visible latency over the interval, in milliseconds,
    /// interpolated within its bucket; `None` when nothing was observed.
    fn visible_p99_ms(&mut self, e: &Exposition) -> Option<f64> {
        let now = e.histogram_values("ecsdns_update_visible_seconds")?.clone();
        let before = self.previous_visible.replace(now.clone());
        let counts: Vec<u64> = match &before {
            Some(b) if b.counts.len() == now.counts.len() => now
                .counts
                .iter()
                .zip(&b.counts)
                .map(|(n, b)| n.saturating_sub(*b))
                .collect(),
            _ => now.counts.clone(),
        };
        quantile(&now.bounds, &counts, 0.99).map(|s| s * 1000.0)
    }

    fn render(&self, line: Line, now_ms: u64) -> String {
        let mut root = Map::new();
        let names: Vec<&str> = line.dimensions.iter().map(|(k, _)| *k).collect();
        let metrics: Vec<Value> = line
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit.as_str() }))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.config.namespace,
                    "Dimensions": [names],
                    "Metrics": metrics,
                }],
            }),
        );
        for (k, v) in line.dimensions {
            root.insert(k.into(), Value::String(v));
        }
        for (name, _, v) in line.metrics {
            root.insert(name.into(), json!(v));
        }
        Value::Object(root).to_string()
    }
}

/// The `q` quantile of a bucketed distribution (`counts` has one more entry than `bounds`: the
/// +Inf bucket), interpolated linearly within the bucket as Prometheus's `histogram_quantile`
/// does; an answer in the +Inf bucket is the largest bound.
fn quantile(bounds: &[f64], counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, n) in counts.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let Some(upper) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let within = (rank - seen as f64) / *n as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        seen += n;
    }
    bounds.last().copied()
}

/// Writes a set of lines every `config.interval` to `out` (stdout, for the awslogs driver) until
/// `stop` turns true, then one last set. Each line is written whole, so lines of other writers
/// (the startup banner) never split one.
pub async fn run(
    registry: Arc<Registry>,
    operator: Arc<dyn Operator>,
    config: EmfConfig,
    mut out: Box<dyn Write + Send>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let interval = config.interval.max(Duration::from_secs(1));
    let mut writer = EmfWriter::new(config);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        let last = tokio::select! {
            _ = ticks.tick() => false,
            _ = stop.changed() => true,
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut text = String::new();
        for line in writer.lines(&registry, operator.as_ref(), now_ms) {
            text.push_str(&line);
            text.push('\n');
        }
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write CloudWatch EMF lines");
        }
        if last || *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        let bounds = [0.001, 0.01, 0.1];
        assert_eq!(quantile(&bounds, &[0, 0, 0, 0], 0.99), None);
        // 100 observations, all in (0.001, 0.01]: p99 is 99% of the way through it.
        let q = quantile(&bounds, &[0, 100, 0, 0], 0.99).unwrap();
        assert!((q - (0.001 + 0.009 * 0.99)).abs() < 1e-12, "{q}");
        // 98 fast, 2 slow: p99 falls in the slow bucket.
        let q = quantile(&bounds, &[98, 0, 2, 0], 0.99).unwrap();
        assert!(q > 0.01 && q <= 0.1, "{q}");
        // Past the last bound: the last bound.
        assert_eq!(quantile(&bounds, &[0, 0, 0, 5], 0.99), Some(0.1));
    }
}
