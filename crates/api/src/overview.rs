//! `GET /v1/overview`, the dashboard's poll, and the history behind its sparklines: every
//! `history_interval` a sampler records, per service, how many tasks DNS serves and the query
//! rate since the last sample (from [`crate::Operator::query_counts`]). The last
//! [`SAMPLES`] samples are kept, so a page opened now shows the last minutes at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use model::ServiceKey;

use crate::dto::{LatencyChart, Overview, ServiceSeries};
use crate::{Operator, Shared};

/// Samples kept per service.
pub(crate) const SAMPLES: usize = 60;

/// One service's samples: (served tasks, queries per second).
type Series = VecDeque<(u32, f64)>;

/// Recent per-service history.
#[derive(Debug, Default)]
pub(crate) struct History {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Query counts at the previous sample, and when it was taken.
    last: HashMap<ServiceKey, u64>,
    last_at: Option<Instant>,
    series: HashMap<ServiceKey, Series>,
}

impl History {
    /// Takes one sample of every service.
    pub(crate) fn sample(&self, registry: &registry::Registry, operator: &dyn Operator) {
        let counts: HashMap<ServiceKey, u64> = operator.query_counts().into_iter().collect();
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = inner
            .last_at
            .map(|t| now.duration_since(t).as_secs_f64())
            .filter(|s| *s > 0.0);
        let mut series = HashMap::with_capacity(inner.series.len());
        for snapshot in registry.services() {
            if snapshot.is_connect_name() {
                continue;
            }
            let key = snapshot.key.clone();
            let served = snapshot.served().count() as u32;
            let count = counts.get(&key).copied().unwrap_or(0);
            // A counter that went back (the service's slot was given out afresh) restarts.
            let delta = match inner.last.get(&key) {
                Some(before) if *before <= count => count - before,
                _ => count,
            };
            let qps = elapsed.map_or(0.0, |s| delta as f64 / s);
            let mut points = inner.series.remove(&key).unwrap_or_default();
            if points.len() == SAMPLES {
                points.pop_front();
            }
            points.push_back((served, (qps * 100.0).round() / 100.0));
            series.insert(key, points);
        }
        inner.series = series;
        inner.last = counts;
        inner.last_at = Some(now);
    }

    fn series(&self) -> Vec<ServiceSeries> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<ServiceSeries> = inner
            .series
            .iter()
            .map(|(k, points)| ServiceSeries {
                cluster: k.cluster.clone(),
                service: k.name.clone(),
                served: points.iter().map(|p| p.0).collect(),
                qps: points.iter().map(|p| p.1).collect(),
            })
            .collect();
        out.sort_by(|a, b| (&a.cluster, &a.service).cmp(&(&b.cluster, &b.service)));
        out
    }
}

/// Samples every `interval` until `stop` turns true.
pub(crate) async fn sampler(shared: Arc<Shared>, interval: Duration) {
    let mut stop = shared.stop.clone();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
                continue;
            }
        }
        shared
            .history
            .sample(&shared.registry, shared.operator.as_ref());
    }
}

/// `GET /v1/overview`
pub(crate) async fn overview(State(s): State<Arc<Shared>>) -> Json<Overview> {
    let index = s.registry.generation();
    let problems = crate::views::all_problems(&s);
    let latency = s.operator.update_latency();
    Json(Overview {
        index,
        readiness: s.operator.readiness(true),
        problems,
        update_latency: LatencyChart {
            count: latency.counts.iter().sum(),
            bounds: latency.bounds,
            counts: latency.counts,
            sum: latency.sum,
        },
        interval_seconds: s.config.history_interval.as_secs_f64(),
        history: s.history.series(),
    })
}
