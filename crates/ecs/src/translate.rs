//! From decoded events to registry [`Update`]s: cluster labels, addresses, ports, health.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use model::{
    Check, CheckError, ContainerInstance, Health, InstanceStatus, Port, Protocol, Task, TaskGroup,
    TaskStatus, Update,
};

use crate::event::{Binding, TaskEvent};
use crate::{DecodeError, Event, decode};

/// One port mapping of a task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Container the mapping belongs to.
    pub container: String,
    /// The mapping's `name`, if it has one.
    pub name: Option<String>,
    /// Container port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// What ecsdns needs from a task definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskDefinitionInfo {
    /// Port mappings in definition order (the first is the primary port).
    pub ports: Vec<PortMapping>,
    /// Whether an essential container has a health check (UNKNOWN then means not yet healthy).
    pub health_checked: bool,
    /// The active check its containers declare in `dockerLabels` (see [`check_from_labels`]).
    pub check: Option<Arc<Check>>,
    /// Its essential containers' `ecsdns.meta.*` docker labels ([`model::Labels`]), shared by
    /// every task of the definition.
    pub labels: Option<Arc<model::Labels>>,
}

/// Docker label that declares a service's active check: `tcp:PORT` or `http:PORT/path`.
pub const CHECK_LABEL: &str = "ecsdns.check";

/// Reads an active check from a container's docker labels: [`CHECK_LABEL`] plus optional
/// `ecsdns.check.interval`, `.timeout`, `.rise`, `.fall`. Labels live in the task definition,
/// which every path (events and reconcile) has, unlike task tags, which events do not carry.
pub fn check_from_labels<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Option<Check>, CheckError> {
    let labels: Vec<(&str, &str)> = labels.into_iter().collect();
    let Some((_, spec)) = labels.iter().find(|(k, _)| *k == CHECK_LABEL) else {
        return Ok(None);
    };
    let mut check = Check::parse(spec)?;
    for (key, value) in &labels {
        if let Some(option) = key
            .strip_prefix(CHECK_LABEL)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            check.set_option(option, value)?;
        }
    }
    Ok(Some(check))
}

/// Facts an event does not carry, looked up by the source (caches of ECS/EC2 calls for the
/// watcher, fixed tables for the demo). `None` means unknown; the task is served from what the
/// event itself says.
pub trait TaskContext {
    /// Private IP of the EC2 host behind a container instance (bridge/host networking).
    fn host_address(&self, container_instance_arn: &str) -> Option<IpAddr>;
    /// The task definition's ports and health check.
    fn task_definition(&self, task_definition_arn: &str) -> Option<TaskDefinitionInfo>;
    /// The Service Connect names of `service`'s deployment `started_by` (or of its primary
    /// deployment when the task does not say which). `None`: none, or unknown.
    fn service_connect(
        &self,
        _service: &str,
        _started_by: Option<&str>,
    ) -> Option<Arc<model::ServiceConnect>> {
        None
    }
}

/// Watched clusters: cluster name (or ARN) -> DNS label.
#[derive(Debug, Clone, Default)]
pub struct ClusterMap {
    labels: HashMap<String, String>,
}

impl ClusterMap {
    /// Watches `name` under `label` (its alias, or its lower-cased name).
    pub fn insert(&mut self, name: &str, label: &str) {
        self.labels
            .insert(name.to_string(), label.to_ascii_lowercase());
    }

    /// The label of a cluster given by ARN or name, if watched.
    pub fn label(&self, cluster: &str) -> Option<&str> {
        let name = cluster.rsplit('/').next().unwrap_or(cluster);
        self.labels
            .get(cluster)
            .or_else(|| self.labels.get(name))
            .map(String::as_str)
    }
}

/// Counters of what came in.
#[derive(Debug, Default)]
pub struct DecodeStats {
    /// Bodies received.
    pub received: AtomicU64,
    /// Bodies turned into updates.
    pub decoded: AtomicU64,
    /// Events of a detail-type ecsdns does not use.
    pub unknown_type: AtomicU64,
    /// Unknown fields seen (summed over events).
    pub unknown_fields: AtomicU64,
    /// Events for clusters that are not watched.
    pub unwatched: AtomicU64,
    /// Bodies that were not events at all.
    pub poison: AtomicU64,
}

/// Turns event bodies into updates for the watched clusters.
#[derive(Debug, Default)]
pub struct Decoder {
    clusters: ClusterMap,
    /// Counters, for metrics.
    pub stats: DecodeStats,
}

impl Decoder {
    /// A decoder for the given clusters.
    pub fn new(clusters: ClusterMap) -> Self {
        Self {
            clusters,
            stats: DecodeStats::default(),
        }
    }

    /// Decodes one body into an event, counting what came in. `Ok(None)`: a valid event of a
    /// type ecsdns does not use (counted). `Err`: a poison message (counted).
    pub fn parse(&self, body: &str) -> Result<Option<Event>, DecodeError> {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let event = decode(body).inspect_err(|_| {
            self.stats.poison.fetch_add(1, Ordering::Relaxed);
        })?;
        match &event {
            Event::Task(task) => {
                self.stats
                    .unknown_fields
                    .fetch_add(task.unknown_fields() as u64, Ordering::Relaxed);
            }
            Event::Instance(_) => {}
            Event::Other { .. } => {
                self.stats.unknown_type.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
        }
        Ok(Some(event))
    }

    /// The label of the event's cluster, or `None` (counted) when it is not watched.
    pub fn cluster_label(&self, event: &Event) -> Option<&str> {
        let arn = match event {
            Event::Task(t) => t.cluster_arn.as_str(),
            Event::Instance(i) => i.cluster_arn.as_str(),
            Event::Other { .. } => return None,
        };
        let label = self.clusters.label(arn);
        if label.is_none() {
            self.stats.unwatched.fetch_add(1, Ordering::Relaxed);
        }
        label
    }

    /// The update an event stands for, in the cluster labelled `label`.
    pub fn translate(&self, event: &Event, label: &str, ctx: &dyn TaskContext) -> Option<Update> {
        let update = match event {
            Event::Task(task) => task_update(task, label, ctx),
            Event::Instance(ci) => Update::Instance(ContainerInstance {
                arn: ci.container_instance_arn.clone(),
                cluster: label.to_string(),
                status: InstanceStatus::parse(&ci.status),
                version: ci.version,
            }),
            Event::Other { .. } => return None,
        };
        self.stats.decoded.fetch_add(1, Ordering::Relaxed);
        Some(update)
    }

    /// Parses and translates in one step, for sources whose context is ready (the demo).
    pub fn decode(&self, body: &str, ctx: &dyn TaskContext) -> Result<Option<Update>, DecodeError> {
        let Some(event) = self.parse(body)? else {
            return Ok(None);
        };
        let Some(label) = self.cluster_label(&event) else {
            return Ok(None);
        };
        let label = label.to_string();
        Ok(self.translate(&event, &label, ctx))
    }
}

fn protocol(p: Option<&str>) -> Protocol {
    match p {
        Some(p) if p.eq_ignore_ascii_case("udp") => Protocol::Udp,
        _ => Protocol::Tcp,
    }
}

/// The task's state as an update: STOPPED becomes a removal, anything else an upsert.
pub(crate) fn task_update(event: &TaskEvent, cluster: &str, ctx: &dyn TaskContext) -> Update {
    let last_status = TaskStatus::parse(&event.last_status);
    if last_status == TaskStatus::Stopped {
        return Update::Remove {
            arn: event.task_arn.clone(),
            version: event.version,
        };
    }
    let definition = event
        .task_definition_arn
        .as_deref()
        .and_then(|arn| ctx.task_definition(arn));
    let health = event
        .health_status
        .as_deref()
        .map_or(Health::Unknown, Health::parse);
    let health_checked = match &definition {
        Some(d) => d.health_checked,
        // Without the definition, a verdict ever given means there is a check.
        None => health != Health::Unknown,
    };
    Update::Upsert(Task {
        arn: event.task_arn.as_str().into(),
        cluster: cluster.into(),
        group: TaskGroup::parse(&event.group),
        version: event.version,
        last_status,
        desired_status: TaskStatus::parse(&event.desired_status),
        health,
        health_checked,
        addresses: addresses(event, ctx).into(),
        ports: ports(event, definition.as_ref()).into(),
        az: event.availability_zone.as_deref().map(Arc::from),
        task_definition: event.task_definition_arn.as_deref().map(Arc::from),
        container_instance: event.container_instance_arn.as_deref().map(Arc::from),
        started_at: event.started_at.as_deref().map(Arc::from),
        check: definition.as_ref().and_then(|d| d.check.clone()),
        labels: definition.as_ref().and_then(|d| d.labels.clone()),
        ordinal: None,
        service_connect: match TaskGroup::parse(&event.group) {
            TaskGroup::Service(name) => ctx.service_connect(&name, event.started_by.as_deref()),
            _ => None,
        },
    })
}

/// ENI addresses (awsvpc), else the container instance's host address (bridge/host).
fn addresses(event: &TaskEvent, ctx: &dyn TaskContext) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    let mut push = |s: &str| {
        if let Ok(ip) = s.parse::<IpAddr>()
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    };
    for attachment in &event.attachments {
        if !matches!(attachment.kind.as_str(), "eni" | "ElasticNetworkInterface") {
            continue;
        }
        for d in &attachment.details {
            if matches!(d.name.as_str(), "privateIPv4Address" | "ipv6Address")
                && let Some(v) = &d.value
            {
                push(v);
            }
        }
    }
    for c in &event.containers {
        for ni in &c.network_interfaces {
            for ip in [&ni.private_ipv4_address, &ni.ipv6_address]
                .into_iter()
                .flatten()
            {
                push(ip);
            }
        }
    }
    if out.is_empty()
        && let Some(ci) = &event.container_instance_arn
        && let Some(ip) = ctx.host_address(ci)
    {
        out.push(ip);
    }
    out
}

/// Host ports from network bindings (bridge/host), named from the task definition; else the
/// definition's ports (awsvpc, where container port = host port). A port bound on both 0.0.0.0
/// and :: is one port.
fn ports(event: &TaskEvent, definition: Option<&TaskDefinitionInfo>) -> Vec<Port> {
    let mut out: Vec<Port> = Vec::new();
    let mut push = |port: Port| {
        if !out
            .iter()
            .any(|p| p.port == port.port && p.protocol == port.protocol)
        {
            out.push(port);
        }
    };
    let bindings: Vec<(&str, &Binding)> = event
        .containers
        .iter()
        .flat_map(|c| c.network_bindings.iter().map(move |b| (c.name.as_str(), b)))
        .collect();
    let name_of = |container: &str, container_port: u16, proto: Protocol| {
        definition
            .and_then(|d| {
                d.ports.iter().find(|m| {
                    m.container == container
                        && m.container_port == container_port
                        && m.protocol == proto
                })
            })
            .and_then(|m| m.name.clone())
            .unwrap_or_else(|| container_port.to_string())
    };
    // Definition order first, so the primary port is the definition's first mapping.
    if let Some(d) = definition {
        for m in &d.ports {
            let bound = bindings.iter().find(|(c, b)| {
                *c == m.container
                    && b.container_port == Some(m.container_port)
                    && protocol(b.protocol.as_deref()) == m.protocol
            });
            let port = match bound {
                Some((_, b)) => b.host_port.unwrap_or(m.container_port),
                None if bindings.is_empty() => m.container_port,
                None => continue,
            };
            push(Port {
                name: m
                    .name
                    .clone()
                    .unwrap_or_else(|| m.container_port.to_string())
                    .into(),
                port,
                protocol: m.protocol,
            });
        }
    }
    for (container, b) in &bindings {
        let (Some(cp), Some(hp)) = (b.container_port, b.host_port) else {
            continue;
        };
        let proto = protocol(b.protocol.as_deref());
        push(Port {
            name: name_of(container, cp, proto).into(),
            port: hp,
            protocol: proto,
        });
    }
    out
}

#[cfg(test)]
mod tests;
