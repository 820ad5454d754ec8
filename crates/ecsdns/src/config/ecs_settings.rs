//! The ECS watcher's settings and the cluster specs (`NAME[=ALIAS]`, `[[ecs.cluster]]`).

use std::time::Duration;

use anyhow::{Context, bail};

/// The ECS watcher's settings.
#[derive(Debug, Clone)]
pub struct EcsSettings {
    /// Watched clusters.
    pub clusters: Vec<ecs::ClusterConfig>,
    /// The event queue.
    pub sqs_queue_url: Option<String>,
    /// Time between reconciles.
    pub reconcile_interval: Duration,
    /// AWS region.
    pub region: Option<String>,
    /// ECS read calls per second.
    pub api_rate: f64,
}

impl Default for EcsSettings {
    fn default() -> Self {
        Self {
            clusters: Vec::new(),
            sqs_queue_url: None,
            reconcile_interval: Duration::from_secs(60),
            region: None,
            api_rate: 10.0,
        }
    }
}

/// Parses `NAME[=ALIAS]` into a watched cluster; the label is the alias or the name,
/// lower-cased, and must be a DNS label.
pub fn parse_cluster(spec: &str) -> anyhow::Result<ecs::ClusterConfig> {
    let (name, alias) = match spec.split_once('=') {
        Some((n, a)) => (n.trim(), Some(a.trim())),
        None => (spec.trim(), None),
    };
    cluster(name, alias, None)
}

pub(super) fn cluster(
    name: &str,
    alias: Option<&str>,
    role_arn: Option<String>,
) -> anyhow::Result<ecs::ClusterConfig> {
    if name.is_empty() {
        bail!("empty cluster name");
    }
    let short = name.rsplit('/').next().unwrap_or(name);
    let label_source = alias.unwrap_or(short);
    let label = model::dns_label(label_source)
        .with_context(|| format!("cluster label {label_source:?} (give NAME=ALIAS)"))?;
    Ok(ecs::ClusterConfig {
        name: name.to_string(),
        label,
        role_arn,
    })
}
