//! Cached lookups that events do not carry: task definitions (ports, health check), the EC2
//! private address behind a container instance (bridge/host networking), and each service's
//! Service Connect names per deployment (DescribeServices).
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

/// How long a service's description is trusted before the next task of it reads it again
/// (a deployment the cache does not know is read at once, at most every [`NEW_DEPLOYMENT`]).
const SERVICE_TTL: Duration = Duration::from_secs(300);

/// The shortest time between two reads of one service for deployments it did not list (a
/// new deployment's first task event reads the service at once; a task of a deployment the
/// service no longer lists cannot make ecsdns read it more often than this).
const NEW_DEPLOYMENT: Duration = Duration::from_secs(2);

/// A service's Service Connect names, per deployment.
pub(crate) struct ServiceInfo {
    /// Deployment id (`ecs-svc/...`) -> its names (`None`: Service Connect off).
    deployments: HashMap<String, Option<Arc<model::ServiceConnect>>>,
    /// The PRIMARY deployment's names, for tasks that do not say which started them.
    primary: Option<Arc<model::ServiceConnect>>,
    fetched: Instant,
}

impl ServiceInfo {
    /// A service read at `fetched` with no deployment publishing anything (yet).
    fn empty(fetched: Instant) -> Self {
        Self {
            deployments: HashMap::new(),
            primary: None,
            fetched,
        }
    }
}

/// The Service Connect names of one deployment, or `None` when it has none. Names that
/// cannot be labels are logged and left out.
fn connect_names(
    service: &str,
    d: &aws_sdk_ecs::types::Deployment,
) -> Option<Arc<model::ServiceConnect>> {
    let sc = d.service_connect_configuration().filter(|c| c.enabled)?;
    let mut triples: Vec<(&str, &str, Option<u16>)> = Vec::new();
    for svc in sc.services.iter().flatten() {
        let port = svc.port_name();
        let discovery = svc.discovery_name().unwrap_or(port);
        triples.push((discovery, port, None));
        for alias in svc.client_aliases() {
            let name = alias.dns_name().unwrap_or(discovery);
            triples.push((name, port, u16::try_from(alias.port()).ok()));
        }
    }
    let (names, bad) = model::ServiceConnect::from_names(triples);
    for name in bad {
        tracing::warn!(
            service,
            name,
            "Service Connect name is not a DNS label: not served"
        );
    }
    (!names.is_empty()).then(|| Arc::new(names))
}

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
    /// Service descriptions (Service Connect names) that could not be read.
    pub service_failures: AtomicU64,
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
    services: Mutex<HashMap<String, Entry<ServiceInfo>>>,
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
            services: Mutex::new(HashMap::new()),
            stats: LookupStats::default(),
        }
    }

    /// Fetches what translating `events` needs and is not cached yet.
    pub(crate) async fn prefetch<'a>(&self, events: impl IntoIterator<Item = &'a TaskEvent>) {
        let now = Instant::now();
        let mut defs = BTreeSet::new();
        let mut instances = BTreeSet::new();
        let mut services = BTreeSet::new();
        for e in events {
            if let model::TaskGroup::Service(name) = model::TaskGroup::parse(&e.group)
                && self.service_wanted(&name, e.started_by.as_deref(), now)
            {
                services.insert(name.to_string());
            }
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
        if !services.is_empty() {
            self.fetch_services(services.into_iter().collect()).await;
        }
    }

    /// Whether `service` must be read (again) for a task `started_by` a deployment.
    fn service_wanted(&self, service: &str, started_by: Option<&str>, now: Instant) -> bool {
        match lock(&self.services).get(service) {
            None => true,
            Some(Entry::Failed(at)) => now.duration_since(*at) >= RETRY_AFTER,
            Some(Entry::Known(info)) => {
                let age = now.duration_since(info.fetched);
                let unknown = started_by.is_some_and(|d| {
                    d.starts_with("ecs-svc/") && !info.deployments.contains_key(d)
                });
                age >= SERVICE_TTL || (unknown && age >= NEW_DEPLOYMENT)
            }
        }
    }

    /// DescribeServices, ten at a time: each service's deployments' Service Connect names. A
    /// service ECS does not know (a task group naming no real service) is cached as having
    /// none.
    async fn fetch_services(&self, names: Vec<String>) {
        for chunk in names.chunks(10) {
            let result = self
                .ecs_pacer
                .call("DescribeServices", || async {
                    self.ecs
                        .describe_services()
                        .cluster(&self.cluster)
                        .set_services(Some(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(&e))
                })
                .await;
            let now = Instant::now();
            let mut found: HashMap<String, ServiceInfo> = HashMap::new();
            let failed = match result {
                Ok(out) => {
                    for svc in out.services() {
                        let Some(name) = svc.service_name() else {
                            continue;
                        };
                        let mut info = ServiceInfo::empty(now);
                        for d in svc.deployments() {
                            let names = connect_names(name, d);
                            if d.status() == Some("PRIMARY") {
                                info.primary.clone_from(&names);
                            }
                            if let Some(id) = d.id() {
                                info.deployments.insert(id.to_string(), names);
                            }
                        }
                        found.insert(name.to_string(), info);
                    }
                    false
                }
                Err(e) => {
                    self.stats.service_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(cluster = %self.cluster, error = %e,
                        "cannot describe services; their Service Connect names wait");
                    true
                }
            };
            let mut services = lock(&self.services);
            for name in chunk {
                let entry = match found.remove(name) {
                    Some(info) => Entry::Known(info),
                    // A failed re-read keeps what was known (names never vanish because AWS
                    // did not answer), tried again after the usual pause.
                    None if failed => match services.remove(name) {
                        Some(Entry::Known(mut info)) => {
                            info.fetched = now
                                .checked_sub(SERVICE_TTL.saturating_sub(RETRY_AFTER))
                                .unwrap_or(now);
                            Entry::Known(info)
                        }
                        _ => Entry::Failed(now),
                    },
                    None => Entry::Known(ServiceInfo::empty(now)),
                };
                services.insert(name.clone(), entry);
            }
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

    fn service_connect(
        &self,
        service: &str,
        started_by: Option<&str>,
    ) -> Option<Arc<model::ServiceConnect>> {
        match lock(&self.services).get(service) {
            // A deployment the service does not list (gone, or not read yet) publishes
            // nothing; a task that does not say which started it gets the primary's names.
            Some(Entry::Known(info)) => match started_by.filter(|d| d.starts_with("ecs-svc/")) {
                Some(d) => info.deployments.get(d).cloned().flatten(),
                None => info.primary.clone(),
            },
            _ => None,
        }
    }
}
