//! EventBridge event bodies: `ECS Task State Change` and `ECS Container Instance State Change`.
//!
//! Parsed leniently: every field we do not need may be missing, every field we do not know is
//! counted and ignored (AWS adds fields without notice).

use serde::Deserialize;
use serde_json::{Map, Value};
use thiserror::Error;

/// Why a body could not be read as an event at all (a poison message).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, or JSON of the wrong shape for its detail-type.
    #[error("not an ECS event: {0}")]
    Json(#[from] serde_json::Error),
    /// A field the event cannot be used without is missing or empty.
    #[error("event lacks {0}")]
    Missing(&'static str),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    detail: Value,
}

/// One ECS event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `ECS Task State Change`.
    Task(Box<TaskEvent>),
    /// `ECS Container Instance State Change`.
    Instance(InstanceEvent),
    /// Any other detail-type (service actions, deployments, types AWS adds later).
    Other {
        /// The detail-type.
        detail_type: String,
    },
}

/// A network binding (bridge/host networking): the host port clients use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Binding {
    #[serde(default)]
    pub(crate) container_port: Option<u16>,
    #[serde(default)]
    pub(crate) host_port: Option<u16>,
    #[serde(default)]
    pub(crate) protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NetworkInterface {
    #[serde(default)]
    pub(crate) private_ipv4_address: Option<String>,
    #[serde(default)]
    pub(crate) ipv6_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Container {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) health_status: Option<String>,
    #[serde(default)]
    pub(crate) network_bindings: Vec<Binding>,
    #[serde(default)]
    pub(crate) network_interfaces: Vec<NetworkInterface>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Detail {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attachment {
    #[serde(default, rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) details: Vec<Detail>,
}

/// The `detail` of a task state change: the fields ecsdns uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent {
    /// Task ARN.
    pub task_arn: String,
    /// Cluster ARN.
    pub cluster_arn: String,
    /// Increments on every change of the task.
    #[serde(default)]
    pub version: u64,
    /// lastStatus.
    #[serde(default)]
    pub last_status: String,
    /// desiredStatus.
    #[serde(default)]
    pub desired_status: String,
    /// Task health, when reported.
    #[serde(default)]
    pub health_status: Option<String>,
    /// `service:NAME`, `family:NAME` or a custom group.
    #[serde(default)]
    pub group: String,
    /// Availability zone.
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Task definition ARN.
    #[serde(default)]
    pub task_definition_arn: Option<String>,
    /// Container instance ARN (EC2 launch type).
    #[serde(default)]
    pub container_instance_arn: Option<String>,
    /// Start time.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Who started it: a service's tasks carry their deployment's id (`ecs-svc/...`), which
    /// picks the deployment's Service Connect names.
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub(crate) attachments: Vec<Attachment>,
    #[serde(default)]
    pub(crate) containers: Vec<Container>,
    /// Every other field, to be counted as known-unused or unknown.
    #[serde(flatten)]
    pub(crate) rest: Map<String, Value>,
}

/// The `detail` of a container instance state change.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceEvent {
    /// Container instance ARN.
    pub container_instance_arn: String,
    /// Cluster ARN.
    pub cluster_arn: String,
    /// ACTIVE, DRAINING, INACTIVE, ...
    #[serde(default)]
    pub status: String,
    /// Increments on every change.
    #[serde(default)]
    pub version: u64,
    /// EC2 instance id, for address lookups.
    #[serde(default)]
    pub ec2_instance_id: Option<String>,
}

/// Fields of the task detail that ecsdns knows and does not need: not counted as unknown.
pub(crate) const KNOWN_UNUSED: &[&str] = &[
    "attributes",
    "availabilityZone",
    "capacityProviderName",
    "clusterArn",
    "connectivity",
    "connectivityAt",
    "cpu",
    "createdAt",
    "enableExecuteCommand",
    "ephemeralStorage",
    "executionStoppedAt",
    "inferenceAccelerators",
    "launchType",
    "memory",
    "overrides",
    "platformFamily",
    "platformVersion",
    "pullStartedAt",
    "pullStoppedAt",
    "stopCode",
    "stoppedAt",
    "stoppedReason",
    "stoppingAt",
    "tags",
    "updatedAt",
];

/// Decodes an SQS message body (an EventBridge event as JSON text).
pub fn decode(body: &str) -> Result<Event, DecodeError> {
    let envelope: Envelope = serde_json::from_str(body)?;
    match envelope.detail_type.as_str() {
        "ECS Task State Change" => {
            let task: TaskEvent = serde_json::from_value(envelope.detail)?;
            if task.task_arn.is_empty() {
                return Err(DecodeError::Missing("detail.taskArn"));
            }
            if task.cluster_arn.is_empty() {
                return Err(DecodeError::Missing("detail.clusterArn"));
            }
            Ok(Event::Task(Box::new(task)))
        }
        "ECS Container Instance State Change" => {
            let instance: InstanceEvent = serde_json::from_value(envelope.detail)?;
            if instance.container_instance_arn.is_empty() {
                return Err(DecodeError::Missing("detail.containerInstanceArn"));
            }
            Ok(Event::Instance(instance))
        }
        other => Ok(Event::Other {
            detail_type: other.to_string(),
        }),
    }
}

impl TaskEvent {
    /// How many fields of the detail ecsdns does not know (for the unknown-fields counter).
    pub fn unknown_fields(&self) -> usize {
        self.rest
            .keys()
            .filter(|k| !KNOWN_UNUSED.contains(&k.as_str()))
            .count()
    }
}
