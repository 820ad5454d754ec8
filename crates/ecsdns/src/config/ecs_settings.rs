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

/// Parses `NAME[=ALIAS][;role=ARN][;queue=URL]` into a watched cluster; the label is the alias
/// or the name, lower-cased, and must be a DNS label. `role` and `queue` are the file's
/// `role_arn` and `sqs_queue_url`, for the environment (`ECSDNS_CLUSTERS`) of a container that
/// has no config file: a cluster of another account or region, with its own queue.
pub fn parse_cluster(spec: &str) -> anyhow::Result<ecs::ClusterConfig> {
    let mut parts = spec.split(';');
    let head = parts.next().unwrap_or_default();
    let (name, alias) = match head.split_once('=') {
        Some((n, a)) => (n.trim(), Some(a.trim())),
        None => (head.trim(), None),
    };
    let (mut role, mut queue) = (None, None);
    for part in parts {
        match part.trim().split_once('=') {
            Some(("role", v)) if role.is_none() && !v.is_empty() => role = Some(v.to_string()),
            Some(("queue", v)) if queue.is_none() && !v.is_empty() => queue = Some(v.to_string()),
            _ => {
                bail!("cluster {spec:?}: {part:?} is not role=ARN or queue=URL (each at most once)")
            }
        }
    }
    cluster(name, alias, role, queue)
}

pub(super) fn cluster(
    name: &str,
    alias: Option<&str>,
    role_arn: Option<String>,
    sqs_queue_url: Option<String>,
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
        sqs_queue_url,
    })
}
