//! Cached lookups that events do not carry: task definitions (ports, health check) and the EC2
//! private address behind a container instance (bridge/host networking).
//!
//! Fetched before an event is translated ([`Lookups::prefetch`]), then read synchronously through
//! [`TaskContext`]. A failed lookup is counted and retried after a pause; meanwhile the task is
//! served from what it says itself, so an ECS read error never hides a running task.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::lock;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::AwsError;
use crate::event::TaskEvent;
use crate::pacer::Pacer;
use crate::{TaskContext, TaskDefinitionInfo, sdk};

/// How long a failed lookup waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

enum Entry<T> {
    Known(T),
    Failed(Instant),
}

/// Lookup failure counters.
#[derive(Debug, Default)]
pub struct LookupStats {
    /// Task definitions that could not be read.
    pub task_definition_failures: AtomicU64,
    /// Container instance addresses that could not be resolved.
    pub host_failures: AtomicU64,
}

/// Caches for one cluster (one set of credentials).
pub(crate) struct Lookups {
    cluster: String,
    ecs: aws_sdk_ecs::Client,
    ec2: aws_sdk_ec2::Client,
    ecs_pacer: Arc<Pacer>,
    ec2_pacer: Arc<Pacer>,
    task_defs: Mutex<HashMap<String, Entry<TaskDefinitionInfo>>>,
    hosts: Mutex<HashMap<String, Entry<IpAddr>>>,
    /// Failure counters.
    pub stats: LookupStats,
}

fn wanted<T>(map: &Mutex<HashMap<String, Entry<T>>>, key: &str, now: Instant) -> bool {
    match lock(map).get(key) {
        None => true,
        Some(Entry::Known(_)) => false,
        Some(Entry::Failed(at)) => now.duration_since(*at) >= RETRY_AFTER,
    }
}

/// Whether the task's address must come from its container instance (no ENI address).
pub(crate) fn needs_host(event: &TaskEvent) -> bool {
    let has_eni = event
        .attachments
        .iter()
        .any(|a| a.details.iter().any(|d| d.name == "privateIPv4Address"))
        || event.containers.iter().any(|c| {
            c.network_interfaces
                .iter()
                .any(|n| n.private_ipv4_address.is_some())
        });
    !has_eni && event.container_instance_arn.is_some()
}

impl Lookups {
    /// Empty caches for `cluster`, calling through the given pacers.
    pub(crate) fn new(
        cluster: &str,
        ecs: aws_sdk_ecs::Client,
        ec2: aws_sdk_ec2::Client,
        ecs_pacer: Arc<Pacer>,
        ec2_pacer: Arc<Pacer>,
    ) -> Self {
        Self {
            cluster: cluster.to_string(),
            ecs,
            ec2,
            ecs_pacer,
            ec2_pacer,
            task_defs: Mutex::new(HashMap::new()),
            hosts: Mutex::new(HashMap::new()),
            stats: LookupStats::default(),
        }
    }

    /// Fetches what translating `events` needs and is not cached yet.
    pub(crate) async fn prefetch<'a>(&self, events: impl IntoIterator<Item = &'a TaskEvent>) {
        let now = Instant::now();
        let mut defs = BTreeSet::new();
        let mut instances = BTreeSet::new();
        for e in events {
            if let Some(td) = &e.task_definition_arn
                && wanted(&self.task_defs, td, now)
            {
                defs.insert(td.clone());
            }
            if needs_host(e)
                && let Some(ci) = &e.container_instance_arn
                && wanted(&self.hosts, ci, now)
            {
                instances.insert(ci.clone());
            }
        }
        for td in defs {
            self.fetch_task_definition(&td).await;
        }
        if !instances.is_empty() {
            self.fetch_hosts(instances.into_iter().collect()).await;
        }
    }

    /// Forgets a container instance's address, so the next task on it looks it up again (its
    /// state-change event may mean it was replaced).
    pub(crate) fn forget_host(&self, container_instance_arn: &str) {
        lock(&self.hosts).remove(container_instance_arn);
    }

    async fn fetch_task_definition(&self, arn: &str) {
        let result = self
            .ecs_pacer
            .call("DescribeTaskDefinition", || async {
                self.ecs
                    .describe_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))
            })
            .await;
        let entry = match result {
            Ok(out) => match out.task_definition() {
                Some(td) => Entry::Known(sdk::task_definition(td)),
                None => Entry::Failed(Instant::now()),
            },
            Err(e) => {
                self.stats
                    .task_definition_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(task_definition = arn, error = %e,
                    "cannot read task definition; serving its tasks with ports named by number");
                Entry::Failed(Instant::now())
            }
        };
        lock(&self.task_defs).insert(arn.to_string(), entry);
    }

    async fn fetch_hosts(&self, arns: Vec<String>) {
        for chunk in arns.chunks(100) {
            let described = self
                .ecs_pacer
                .call("DescribeContainerInstances", || async {
                    self.ecs
                        .describe_container_instances()
                        .cluster(&self.cluster)
                        .set_container_instances(Some(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(&e))
                })
                .await;
            let mut ec2_ids: HashMap<String, String> = HashMap::new();
            match described {
                Ok(out) => {
                    for ci in out.container_instances() {
                        if let (Some(arn), Some(id)) =
                            (ci.container_instance_arn(), ci.ec2_instance_id())
                        {
                            ec2_ids.insert(id.to_string(), arn.to_string());
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.cluster, error = %e, "cannot describe container instances")
                }
            }
            let mut found: HashMap<String, IpAddr> = HashMap::new();
            if !ec2_ids.is_empty() {
                let ids: Vec<String> = ec2_ids.keys().cloned().collect();
                let instances = self
                    .ec2_pacer
                    .call("DescribeInstances", || async {
                        self.ec2
                            .describe_instances()
                            .set_instance_ids(Some(ids.clone()))
                            .send()
                            .await
                            .map_err(|e| AwsError::from_sdk(&e))
                    })
                    .await;
                match instances {
                    Ok(out) => {
                        for i in out.reservations().iter().flat_map(|r| r.instances()) {
                            let ip = i.private_ip_address().and_then(|s| s.parse().ok());
                            if let (Some(id), Some(ip)) = (i.instance_id(), ip)
                                && let Some(ci) = ec2_ids.get(id)
                            {
                                found.insert(ci.clone(), ip);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %self.cluster, error = %e, "cannot describe EC2 instances")
                    }
                }
            }
            let now = Instant::now();
            let mut hosts = lock(&self.hosts);
            for arn in chunk {
                match found.get(arn) {
                    Some(ip) => {
                        hosts.insert(arn.clone(), Entry::Known(*ip));
                    }
                    None => {
                        self.stats.host_failures.fetch_add(1, Ordering::Relaxed);
                        hosts.insert(arn.clone(), Entry::Failed(now));
                    }
                }
            }
        }
    }
}

impl TaskContext for Lookups {
    fn host_address(&self, container_instance_arn: &str) -> Option<IpAddr> {
        match lock(&self.hosts).get(container_instance_arn) {
            Some(Entry::Known(ip)) => Some(*ip),
            _ => None,
        }
    }

    fn task_definition(&self, task_definition_arn: &str) -> Option<TaskDefinitionInfo> {
        match lock(&self.task_defs).get(task_definition_arn) {
            Some(Entry::Known(td)) => Some(td.clone()),
            _ => None,
        }
    }
}
