//! The dashboard's one poll: sources, problems, the update latency chart and per-service
//! history, so the page needs a single request every few seconds besides the watch stream.

use serde::{Deserialize, Serialize};

use super::{ProblemDto, Readiness};

/// `GET /v1/overview`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// Registry generation of this answer.
    pub index: u64,
    /// Every source (with error texts: the caller is authorized).
    pub readiness: Readiness,
    /// The same list as `GET /v1/problems`.
    pub problems: Vec<ProblemDto>,
    /// Time from an update reaching the applier to DNS serving it.
    pub update_latency: LatencyChart,
    /// Seconds between two history samples.
    pub interval_seconds: f64,
    /// Per service, oldest sample first.
    pub history: Vec<ServiceSeries>,
}

/// A histogram as bars: one per bucket, not cumulative.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencyChart {
    /// Upper bound of each bucket, seconds; the last bucket has none (`+Inf`).
    pub bounds: Vec<f64>,
    /// Observations per bucket (`bounds.len() + 1`).
    pub counts: Vec<u64>,
    /// Observations in all.
    pub count: u64,
    /// Sum of observations, seconds.
    pub sum: f64,
}

/// One service's recent history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSeries {
    /// Cluster label.
    pub cluster: String,
    /// Service label.
    pub service: String,
    /// Tasks DNS served at each sample.
    pub served: Vec<u32>,
    /// Queries per second over each interval.
    pub qps: Vec<f64>,
}
