//! Tasks, their endpoints and lifecycle, and the [`Update`]s sources send to the registry.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// ECS task lifecycle status (`lastStatus` / `desiredStatus`).
///
/// Unknown strings map to [`TaskStatus::Other`] so a status AWS adds later never fails decoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TaskStatus {
    /// PROVISIONING
    Provisioning,
    /// PENDING
    Pending,
    /// ACTIVATING
    Activating,
    /// RUNNING
    Running,
    /// DEACTIVATING
    Deactivating,
    /// STOPPING
    Stopping,
    /// DEPROVISIONING
    Deprovisioning,
    /// STOPPED
    Stopped,
    /// A status this version does not know; never served. Boxed: a status is held twice per
    /// task and this variant is rare.
    Other(Box<str>),
}

impl TaskStatus {
    /// Parses ECS's upper-case status string.
    pub fn parse(s: &str) -> Self {
        match s {
            "PROVISIONING" => Self::Provisioning,
            "PENDING" => Self::Pending,
            "ACTIVATING" => Self::Activating,
            "RUNNING" => Self::Running,
            "DEACTIVATING" => Self::Deactivating,
            "STOPPING" => Self::Stopping,
            "DEPROVISIONING" => Self::Deprovisioning,
            "STOPPED" => Self::Stopped,
            other => Self::Other(other.into()),
        }
    }

    /// The ECS spelling, for TXT records and logs.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Pending => "PENDING",
            Self::Activating => "ACTIVATING",
            Self::Running => "RUNNING",
            Self::Deactivating => "DEACTIVATING",
            Self::Stopping => "STOPPING",
            Self::Deprovisioning => "DEPROVISIONING",
            Self::Stopped => "STOPPED",
            Self::Other(s) => s,
        }
    }
}

/// Task health as ECS reports it (from the essential containers' health checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    /// All essential health checks pass.
    Healthy,
    /// An essential health check fails.
    Unhealthy,
    /// No verdict yet, or no health check at all.
    Unknown,
}

impl Health {
    /// Parses ECS's `healthStatus`; anything unexpected is [`Health::Unknown`].
    pub fn parse(s: &str) -> Self {
        match s {
            "HEALTHY" => Self::Healthy,
            "UNHEALTHY" => Self::Unhealthy,
            _ => Self::Unknown,
        }
    }

    /// The ECS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "HEALTHY",
            Self::Unhealthy => "UNHEALTHY",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// How a task was started, from ECS's `group`: this decides the name it is served under.
///
/// The names are shared (`Arc<str>`): every task of a service can point at one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskGroup {
    /// `service:NAME`, a task of an ECS service.
    Service(Arc<str>),
    /// `family:NAME`, a standalone task (RunTask) without a custom group.
    Family(Arc<str>),
    /// Any other group string given to RunTask.
    Custom(Arc<str>),
}

impl TaskGroup {
    /// Parses ECS's `group` field.
    pub fn parse(group: &str) -> Self {
        if let Some(name) = group.strip_prefix("service:") {
            Self::Service(name.into())
        } else if let Some(name) = group.strip_prefix("family:") {
            Self::Family(name.into())
        } else {
            Self::Custom(group.into())
        }
    }

    /// The name the group is served under (`S` in `S.C.zone`).
    pub fn name(&self) -> &str {
        match self {
            Self::Service(n) | Self::Family(n) | Self::Custom(n) => n,
        }
    }

    /// Services win name collisions against standalone groups.
    pub fn is_service(&self) -> bool {
        matches!(self, Self::Service(_))
    }
}

impl fmt::Display for TaskGroup {
    /// The ECS `group` spelling (`service:web`, `family:etl`, or the custom group).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(n) => write!(f, "service:{n}"),
            Self::Family(n) => write!(f, "family:{n}"),
            Self::Custom(n) => f.write_str(n),
        }
    }
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP, served under `_P._tcp`.
    Tcp,
    /// UDP, served under `_P._udp`.
    Udp,
}

impl Protocol {
    /// The RFC 2782 protocol label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tcp => "_tcp",
            Self::Udp => "_udp",
        }
    }
}

/// One reachable port of a task: the port clients must use (the host port for bridge/host
/// networking), under its name (ECS portMapping `name`, or the container port number).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Port {
    /// Port name; unnamed ports are named by their container port number. Shared: the tasks of
    /// a service name their ports alike.
    pub name: Arc<str>,
    /// The port to connect to.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// A task as the registry knows it: identity, ordering version, lifecycle, and endpoints.
///
/// Sized for 100,000 of them: strings that many tasks share (cluster, group, port names, AZ, task
/// definition, container instance) are `Arc<str>` so a source can hand every task the same
/// allocation, lists are boxed slices (no spare capacity), and the task id is read from the ARN
/// rather than stored twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Task {
    /// Task ARN (or a synthetic unique key for static endpoints): the registry's primary key,
    /// and its last `/` segment is the task id. Shared with the registry's indexes.
    pub arn: Arc<str>,
    /// DNS label of the cluster (its alias or its lower-cased name).
    pub cluster: Arc<str>,
    /// The group, which decides the served name.
    pub group: TaskGroup,
    /// ECS `version`: increments on every change of the task; updates are ordered by it.
    pub version: u64,
    /// `lastStatus`.
    pub last_status: TaskStatus,
    /// `desiredStatus`; STOPPED means the task is being stopped and must leave DNS.
    pub desired_status: TaskStatus,
    /// ECS health.
    pub health: Health,
    /// Whether the task has a health check, so that UNKNOWN means "not yet healthy".
    pub health_checked: bool,
    /// Addresses clients connect to (ENI addresses, or the EC2 host's for bridge/host).
    pub addresses: Box<[IpAddr]>,
    /// Ports; the first one is the primary port served in `S.C.zone SRV`.
    pub ports: Box<[Port]>,
    /// Availability zone, when known.
    pub az: Option<Arc<str>>,
    /// Task definition ARN or `family:revision`.
    pub task_definition: Option<Arc<str>>,
    /// Container instance ARN for EC2-hosted tasks; its DRAINING state removes the task.
    pub container_instance: Option<Arc<str>>,
    /// When the task started (ISO-8601), when known.
    pub started_at: Option<Arc<str>>,
    /// The active health check declared for the task's service, if any: then the task is
    /// usable only once the check passes (see [`crate::Update::Probe`]).
    pub check: Option<Arc<crate::Check>>,
    /// Metadata labels, shared by the tasks of one definition (`None`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Arc<crate::Labels>>,
    /// The task's stable ordinal within its service (`N.S.C.zone`), for services that opt in.
    /// Assigned by the registry, never by a source: sources leave it `None`, the registry
    /// stamps the lowest free number on a task that is not on its way out and keeps it across
    /// the task's updates; a task restored from the warm-restart file carries its ordinal back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<u32>,
    /// The Service Connect names of the deployment that started the task (`None`: none), each
    /// served as `NAME.C.zone` with this task among its records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect: Option<Arc<crate::ServiceConnect>>,
}

impl Task {
    /// Task id, the last segment of the ARN: the `T` of `T.S.C.zone`. ECS ARNs end in the id
    /// in both the old (`task/ID`) and the new (`task/CLUSTER/ID`) format; static endpoints'
    /// synthetic ARNs are built the same way.
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// The task definition's revision (`family:N` → N), when known.
    pub fn revision(&self) -> Option<u32> {
        self.task_definition
            .as_deref()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    }

    /// Whether the task is on its way up and not on its way out: RUNNING, desired RUNNING, and its
    /// container instance (if any) not draining. This is the fail-open set: health is ignored.
    pub fn is_live(&self, instance_draining: bool) -> bool {
        self.last_status == TaskStatus::Running
            && self.desired_status == TaskStatus::Running
            && !instance_draining
    }

    /// Whether the task is served in DNS: live and healthy (or without a health check).
    pub fn is_usable(&self, instance_draining: bool) -> bool {
        let healthy = match self.health {
            Health::Healthy => true,
            Health::Unhealthy => false,
            Health::Unknown => !self.health_checked,
        };
        self.is_live(instance_draining) && healthy
    }
}

/// Identifies one served name group: the service (or standalone group) label within a cluster
/// label. Both parts are lower-case DNS labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    /// Cluster label.
    pub cluster: String,
    /// Service or group label.
    pub name: String,
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.cluster)
    }
}

/// State of an EC2 container instance, which removes its tasks from DNS while draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceStatus {
    /// Serving tasks normally.
    Active,
    /// DRAINING: its tasks are being moved away and leave DNS at once.
    Draining,
    /// INACTIVE / deregistered, or any status that is not ACTIVE.
    Inactive,
}

impl InstanceStatus {
    /// Parses ECS's container instance status.
    pub fn parse(s: &str) -> Self {
        match s {
            "ACTIVE" | "REGISTERING" => Self::Active,
            "DRAINING" => Self::Draining,
            _ => Self::Inactive,
        }
    }
}

/// An EC2 container instance's state, as its state-change events report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInstance {
    /// Container instance ARN.
    pub arn: String,
    /// Cluster label.
    pub cluster: String,
    /// Status.
    pub status: InstanceStatus,
    /// ECS `version` of the container instance; ordered like task versions.
    pub version: u64,
}

/// The one way into the registry. Every source produces these.
// Upsert is nearly every update; boxing it would add an allocation per event to save bytes
// on the rare small variants.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Update {
    /// A task's new state; applied only if its version is newer than what the registry holds.
    Upsert(Task),
    /// The task stopped (lastStatus STOPPED); applied only if the version is not older.
    Remove {
        /// Task ARN.
        arn: String,
        /// Version of the STOPPED state.
        version: u64,
    },
    /// A full listing of a cluster is about to be taken. Changes applied after this marker are
    /// newer than the listing and survive the [`Update::Reset`] that follows.
    BeginListing {
        /// Cluster label.
        cluster: String,
    },
    /// A full listing of a cluster's live tasks: tasks absent from it (and unchanged since the
    /// matching [`Update::BeginListing`]) are removed, listed tasks are upserted by version.
    Reset {
        /// Cluster label.
        cluster: String,
        /// Every task of the cluster that the listing saw.
        tasks: Vec<Task>,
    },
    /// A container instance changed state.
    Instance(ContainerInstance),
    /// The verdict of a task's active check changed (sent by the prober on each transition).
    /// Applies to the live task with that ARN; ignored once the task is gone.
    Probe {
        /// Task ARN.
        arn: Arc<str>,
        /// The new verdict.
        state: crate::CheckState,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            arn: "arn:aws:ecs:us-east-1:1:task/c/abc".into(),
            cluster: "c".into(),
            group: TaskGroup::parse("service:web"),
            version: 1,
            last_status: TaskStatus::parse("RUNNING"),
            desired_status: TaskStatus::parse("RUNNING"),
            health: Health::Unknown,
            health_checked: false,
            addresses: Box::new([]),
            ports: Box::new([]),
            az: None,
            task_definition: None,
            container_instance: None,
            started_at: None,
            check: None,
            labels: None,
            ordinal: None,
            service_connect: None,
        }
    }

    #[test]
    fn usable_rules() {
        let mut t = task();
        assert!(t.is_usable(false));
        assert!(!t.is_usable(true), "draining instance");
        t.health_checked = true;
        assert!(
            !t.is_usable(false),
            "UNKNOWN with a health check is not yet healthy"
        );
        assert!(t.is_live(false), "but it is live (fail-open set)");
        t.health = Health::Healthy;
        assert!(t.is_usable(false));
        t.desired_status = TaskStatus::Stopped;
        assert!(
            !t.is_usable(false) && !t.is_live(false),
            "stopping leaves at once"
        );
    }

    #[test]
    fn id_is_the_last_arn_segment() {
        let mut t = task();
        assert_eq!(t.id(), "abc");
        t.arn = "arn:aws:ecs:us-east-1:1:task/0123abcd".into();
        assert_eq!(t.id(), "0123abcd", "old ARN format without the cluster");
        t.arn = "static:c/web/web-1".into();
        assert_eq!(t.id(), "web-1");
    }

    #[test]
    fn groups_and_statuses() {
        assert_eq!(
            TaskGroup::parse("family:etl"),
            TaskGroup::Family("etl".into())
        );
        assert_eq!(
            TaskGroup::parse("nightly"),
            TaskGroup::Custom("nightly".into())
        );
        assert!(TaskGroup::parse("service:a").is_service());
        assert_eq!(
            TaskStatus::parse("NEWTHING"),
            TaskStatus::Other("NEWTHING".into())
        );
        assert_eq!(TaskStatus::parse("STOPPED").as_str(), "STOPPED");
        assert_eq!(Health::parse("weird"), Health::Unknown);
        assert_eq!(InstanceStatus::parse("DRAINING"), InstanceStatus::Draining);
    }
}
