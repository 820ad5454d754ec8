//! The API's JSON shapes, its own types so the wire format does not follow internal renames.
//! They derive `Deserialize` too: the CLI reads them back.

use std::collections::BTreeMap;
use std::net::IpAddr;

use model::{Task, TaskGroup, TaskStatus};
use registry::{Problem, ServiceSnapshot, TaskView};
use serde::{Deserialize, Serialize};

mod drain;
mod explain;
mod overview;
pub use drain::{Drain, ServedInfo};
pub use explain::{DnsAnswer, Explain, ExplainTask};
pub use overview::{LatencyChart, Overview, ServiceSeries};

/// Where an endpoint stands, from the point of view of a client choosing whom to call. The
/// declaration order is the order `/metrics` lists them in (it indexes by discriminant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    /// Usable: running, healthy (or without a check), not on its way out. DNS serves it.
    Passing,
    /// Running but failing its health check (or a check has not passed yet).
    Unhealthy,
    /// Not running yet (provisioning, pending, activating).
    Starting,
    /// On its way out: desired STOPPED, stopping, or on a draining container instance.
    Draining,
}

impl EndpointState {
    /// Classifies one task view.
    pub fn of(view: &TaskView) -> Self {
        let t = &view.task;
        let leaving = matches!(
            t.last_status,
            TaskStatus::Deactivating
                | TaskStatus::Stopping
                | TaskStatus::Deprovisioning
                | TaskStatus::Stopped
        );
        if view.instance_draining || t.desired_status == TaskStatus::Stopped || leaving {
            Self::Draining
        } else if view.usable {
            Self::Passing
        } else if matches!(
            t.last_status,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating
        ) {
            Self::Starting
        } else {
            Self::Unhealthy
        }
    }
}

/// One port of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortDto {
    /// Port name (ECS portMapping name, or the container port number).
    pub name: String,
    /// The port to connect to (the host port for bridge/host networking).
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// One task's endpoint, with everything an operator needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Task id (the last ARN segment), the `T` of `T.S.C.zone`.
    pub task_id: String,
    /// Task ARN (or the static file's synthetic key).
    pub task_arn: String,
    /// Cluster label.
    pub cluster: String,
    /// Service (or standalone group) label it is served under.
    pub service: String,
    /// The per-task DNS name, while DNS serves the task (`null` otherwise: not served, or an id
    /// that cannot be a DNS label).
    pub dns_name: Option<String>,
    /// Passing, unhealthy, starting or draining.
    pub state: EndpointState,
    /// Whether DNS serves it now (passing, or live under fail-open).
    pub served: bool,
    /// Addresses clients connect to.
    pub addresses: Vec<IpAddr>,
    /// Named ports.
    pub ports: Vec<PortDto>,
    /// Availability zone, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub az: Option<String>,
    /// ECS health: HEALTHY, UNHEALTHY or UNKNOWN.
    pub health: String,
    /// Whether the task has an ECS health check (UNKNOWN then means "not yet healthy").
    pub health_checked: bool,
    /// ECS lastStatus.
    pub last_status: String,
    /// ECS desiredStatus.
    pub desired_status: String,
    /// Whether its container instance is draining.
    pub instance_draining: bool,
    /// Container instance ARN (EC2 launch type).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_instance: Option<String>,
    /// Task definition.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_definition: Option<String>,
    /// When the task started.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_at: Option<String>,
    /// ECS version of the state shown.
    pub version: u64,
    /// The active check, when the service declares one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub check: Option<CheckDto>,
    /// Why DNS does not serve it, while it does not (the first rule it fails).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub left_out: Option<String>,
    /// Metadata labels (`ecsdns.meta.*` docker labels, or the file's `labels`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
    /// Its stable ordinal in a service with ordinals (`N` of `N.S.C.zone`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ordinal: Option<u32>,
    /// `N.S.C.zone`, while DNS serves the task under its ordinal.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ordinal_name: Option<String>,
}

/// An endpoint's active check and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckDto {
    /// The declaration, `tcp:PORT` or `http:PORT/path`.
    pub spec: String,
    /// `passing`, `failing`, or `pending` (no verdict yet: not served until it passes).
    pub status: String,
    /// The outcome of the probe that decided the verdict (`connected`, `HTTP 500`, ...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// When the verdict last changed, milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub since_ms: Option<u64>,
    /// Probe interval, milliseconds.
    pub interval_ms: u64,
    /// Probe timeout, milliseconds.
    pub timeout_ms: u64,
    /// Consecutive passes that bring a failing endpoint back.
    pub rise: u8,
    /// Consecutive failures that take a passing endpoint out.
    pub fall: u8,
}

impl CheckDto {
    fn of(view: &TaskView) -> Option<Self> {
        let check = view.task.check.as_deref()?;
        let status = match &view.check {
            None => "pending",
            Some(c) if c.passing => "passing",
            Some(_) => "failing",
        };
        Some(Self {
            spec: check.to_string(),
            status: status.into(),
            reason: view.check.as_ref().map(|c| c.reason.to_string()),
            since_ms: view.check.as_ref().map(|c| c.since_ms),
            interval_ms: check.interval.as_millis() as u64,
            timeout_ms: check.timeout.as_millis() as u64,
            rise: check.rise,
            fall: check.fall,
        })
    }
}

impl Endpoint {
    /// Builds the endpoint of one task view served under `snapshot`.
    pub fn of(view: &TaskView, snapshot: &ServiceSnapshot, zone: &str) -> Self {
        let t: &Task = &view.task;
        Self {
            task_id: t.id().to_string(),
            task_arn: t.arn.to_string(),
            cluster: snapshot.key.cluster.clone(),
            service: snapshot.key.name.clone(),
            dns_name: model::task_label(t.id())
                .filter(|_| view.served)
                .map(|l| model::task_fqdn(&l, &snapshot.key.name, &snapshot.key.cluster, zone)),
            state: EndpointState::of(view),
            served: view.served,
            addresses: t.addresses.to_vec(),
            ports: t
                .ports
                .iter()
                .map(|p| PortDto {
                    name: p.name.to_string(),
                    port: p.port,
                    protocol: p.protocol.label().trim_start_matches('_').to_string(),
                })
                .collect(),
            az: t.az.as_deref().map(str::to_string),
            health: t.health.as_str().to_string(),
            health_checked: t.health_checked,
            last_status: t.last_status.as_str().to_string(),
            desired_status: t.desired_status.as_str().to_string(),
            instance_draining: view.instance_draining,
            container_instance: t.container_instance.as_deref().map(str::to_string),
            task_definition: t.task_definition.as_deref().map(str::to_string),
            started_at: t.started_at.as_deref().map(str::to_string),
            version: t.version,
            check: CheckDto::of(view),
            left_out: view.left_out(),
            labels: t
                .labels
                .iter()
                .flat_map(|l| l.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .collect(),
            ordinal: t.ordinal,
            ordinal_name: t
                .ordinal
                .filter(|_| view.served && !snapshot.is_connect_name())
                .map(|n| model::ordinal_fqdn(n, &snapshot.key.name, &snapshot.key.cluster, zone)),
        }
    }
}

/// One served name with counts of its tasks by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSummary {
    /// Cluster label.
    pub cluster: String,
    /// Service (or standalone group) label.
    pub service: String,
    /// `service`, `family` or `group`: how ECS started the tasks; `service-connect` for a
    /// Service Connect name (the tasks of `connect_of` that publish it).
    pub kind: String,
    /// For a Service Connect name: the service whose tasks publish it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connect_of: Option<String>,
    /// The ECS name as given (may differ from the label in case).
    pub ecs_name: String,
    /// The service's DNS name.
    pub dns_name: String,
    /// Registry generation at which this service last changed.
    pub index: u64,
    /// Tasks known.
    pub tasks: usize,
    /// Tasks passing (usable).
    pub passing: usize,
    /// Tasks running but unhealthy.
    pub unhealthy: usize,
    /// Tasks not running yet.
    pub starting: usize,
    /// Tasks on their way out.
    pub draining: usize,
    /// Tasks DNS serves now.
    pub served: usize,
    /// True when nothing passes and DNS serves the running tasks anyway.
    pub fail_open: bool,
}

impl ServiceSummary {
    /// Summarises one snapshot.
    pub fn of(snapshot: &ServiceSnapshot, zone: &str) -> Self {
        let (kind, ecs_name) = match snapshot.tasks.first().map(|v| &v.task.group) {
            Some(_) if snapshot.connect.is_some() => {
                ("service-connect", snapshot.key.name.as_str().into())
            }
            Some(TaskGroup::Service(n)) => ("service", n.clone()),
            Some(TaskGroup::Family(n)) => ("family", n.clone()),
            Some(TaskGroup::Custom(n)) => ("group", n.clone()),
            None => ("service", snapshot.key.name.as_str().into()),
        };
        let mut summary = Self {
            cluster: snapshot.key.cluster.clone(),
            service: snapshot.key.name.clone(),
            kind: kind.to_string(),
            connect_of: snapshot.connect.as_ref().map(|c| c.service.clone()),
            ecs_name: ecs_name.to_string(),
            dns_name: model::service_fqdn(&snapshot.key.name, &snapshot.key.cluster, zone),
            index: snapshot.generation,
            tasks: snapshot.tasks.len(),
            passing: 0,
            unhealthy: 0,
            starting: 0,
            draining: 0,
            served: 0,
            fail_open: snapshot.fail_open,
        };
        for view in &snapshot.tasks {
            match EndpointState::of(view) {
                EndpointState::Passing => summary.passing += 1,
                EndpointState::Unhealthy => summary.unhealthy += 1,
                EndpointState::Starting => summary.starting += 1,
                EndpointState::Draining => summary.draining += 1,
            }
            summary.served += usize::from(view.served);
        }
        summary
    }
}

/// `GET /v1/services`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceList {
    /// Registry generation of this answer (also in the `X-Ecsdns-Index` header).
    pub index: u64,
    /// Services matching the filters, over all pages.
    pub total: usize,
    /// This page.
    pub services: Vec<ServiceSummary>,
    /// Cursor for the next page (`?after=`), when more remain.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next: Option<String>,
}

/// `GET /v1/services/{cluster}/{service}` and `GET /v1/health/{cluster}/{service}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceDetail {
    /// Registry generation of this answer.
    pub index: u64,
    /// The service.
    pub service: ServiceSummary,
    /// Endpoints matching the filters, over all pages.
    pub total: usize,
    /// This page, sorted by task id.
    pub endpoints: Vec<Endpoint>,
    /// Cursor for the next page (`?after=`), when more remain.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next: Option<String>,
}

/// One problem an operator should fix: a name DNS cannot serve, a collision, a poison event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ProblemDto {
    /// An ECS name that cannot be a DNS label; its tasks are not served.
    #[serde(rename_all = "camelCase")]
    InvalidName {
        /// Cluster label.
        cluster: String,
        /// The ECS name.
        name: String,
        /// Why it cannot be a label.
        reason: String,
        /// Tasks carrying it.
        tasks: usize,
    },
    /// Two ECS groups map to one DNS name; one is served, the other shadowed.
    #[serde(rename_all = "camelCase")]
    Collision {
        /// Cluster label.
        cluster: String,
        /// The contested label.
        service: String,
        /// The group served.
        winner: String,
        /// The group not served.
        shadowed: String,
    },
    /// A message on the event queue that is not an event; left for the dead-letter queue.
    #[serde(rename_all = "camelCase")]
    PoisonEvent {
        /// SQS message id.
        message_id: String,
        /// Why it was rejected.
        reason: String,
        /// When it was first seen (Unix seconds).
        seen_at: u64,
    },
    /// A source's latest attempt failed (a rejected reload of the endpoints file, say); DNS
    /// serves what the source had before.
    #[serde(rename_all = "camelCase")]
    SourceError {
        /// The source (`endpoints-file`, `cluster:NAME`, `queue`).
        source: String,
        /// What went wrong, and what was kept.
        error: String,
        /// Failed attempts since the last one that worked.
        failures: u64,
    },
}

impl ProblemDto {
    /// Converts a registry problem.
    pub fn of(problem: &Problem) -> Option<Self> {
        match problem {
            Problem::InvalidName {
                cluster,
                name,
                reason,
                tasks,
            } => Some(Self::InvalidName {
                cluster: cluster.clone(),
                name: name.clone(),
                reason: reason.clone(),
                tasks: *tasks,
            }),
            Problem::Collision {
                key,
                winner,
                shadowed,
            } => Some(Self::Collision {
                cluster: key.cluster.clone(),
                service: key.name.clone(),
                winner: winner.clone(),
                shadowed: shadowed.clone(),
            }),
            _ => None,
        }
    }
}

/// `GET /v1/problems`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProblemList {
    /// Registry generation of this answer.
    pub index: u64,
    /// Every problem known now.
    pub problems: Vec<ProblemDto>,
}

/// One source's state for `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// What it is: `cluster:LABEL`, `queue`, `endpoints-file`.
    pub name: String,
    /// Whether its last attempt worked.
    pub ok: bool,
    /// Whether it has worked at least once (initial sync).
    pub synced: bool,
    /// Failures in a row.
    pub failures: u32,
    /// The last error while failing (only shown to authorized callers).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Seconds since it last worked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_ok_age_seconds: Option<u64>,
    /// Tasks (clusters: listed by the last reconcile) or endpoints (the file) it holds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tasks: Option<usize>,
    /// The queue: how long the oldest message of the latest receive had waited, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lag_ms: Option<u64>,
    /// The queue: seconds since a receive last returned messages (events).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_event_age_seconds: Option<u64>,
}

/// `GET /readyz`: ready once every source has synced; degraded while one fails (DNS then serves
/// the last known state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Initial sync done: DNS answers reflect every source.
    pub ready: bool,
    /// Some source fails now; answers may be stale.
    pub degraded: bool,
    /// DNS serves the state restored from the state file (warm restart) and not every source
    /// has synced since: answers are from before the restart.
    #[serde(default)]
    pub stale: bool,
    /// Per source.
    pub sources: Vec<SourceStatus>,
}

/// One `GET /v1/watch` event about a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceEvent {
    /// Registry generation after the change.
    pub index: u64,
    /// Cluster label.
    pub cluster: String,
    /// Service label.
    pub service: String,
    /// True when the service has no tasks left and is gone.
    pub removed: bool,
    /// The service now (absent when removed).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub summary: Option<ServiceSummary>,
    /// Every endpoint now.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// One Prometheus HTTP SD target group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetGroup {
    /// `host:port` targets.
    pub targets: Vec<String>,
    /// Labels attached to every target of the group.
    pub labels: std::collections::BTreeMap<String, String>,
}
