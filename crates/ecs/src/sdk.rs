//! Conversions from the ECS SDK's types to the event shapes the decoder already understands,
//! so a task from DescribeTasks and a task from an event become an Update by the same code.

use aws_sdk_ecs::primitives::DateTimeFormat;
use aws_sdk_ecs::types as ecs;
use model::Protocol;
use serde_json::Map;

use crate::event::{Attachment, Binding, Container, Detail, NetworkInterface, TaskEvent};
use std::sync::Arc;

use crate::translate::check_from_labels;
use crate::{PortMapping, TaskDefinitionInfo};

/// A DescribeTasks task as the detail of a task state change event. `None` without an ARN.
pub(crate) fn task_event(t: &ecs::Task) -> Option<TaskEvent> {
    Some(TaskEvent {
        task_arn: t.task_arn()?.to_string(),
        cluster_arn: t.cluster_arn().unwrap_or_default().to_string(),
        version: u64::try_from(t.version()).unwrap_or(0),
        last_status: t.last_status().unwrap_or_default().to_string(),
        desired_status: t.desired_status().unwrap_or_default().to_string(),
        health_status: t.health_status().map(|h| h.as_str().to_string()),
        group: t.group().unwrap_or_default().to_string(),
        availability_zone: t.availability_zone().map(str::to_string),
        task_definition_arn: t.task_definition_arn().map(str::to_string),
        container_instance_arn: t.container_instance_arn().map(str::to_string),
        started_at: t
            .started_at()
            .and_then(|d| d.fmt(DateTimeFormat::DateTime).ok()),
        started_by: t.started_by().map(str::to_string),
        attachments: t
            .attachments()
            .iter()
            .map(|a| Attachment {
                kind: a.r#type().unwrap_or_default().to_string(),
                details: a
                    .details()
                    .iter()
                    .map(|kv| Detail {
                        name: kv.name().unwrap_or_default().to_string(),
                        value: kv.value().map(str::to_string),
                    })
                    .collect(),
            })
            .collect(),
        containers: t
            .containers()
            .iter()
            .map(|c| Container {
                name: c.name().unwrap_or_default().to_string(),
                health_status: c.health_status().map(|h| h.as_str().to_string()),
                network_bindings: c
                    .network_bindings()
                    .iter()
                    .map(|b| Binding {
                        container_port: b.container_port().and_then(|p| u16::try_from(p).ok()),
                        host_port: b.host_port().and_then(|p| u16::try_from(p).ok()),
                        protocol: b.protocol().map(|p| p.as_str().to_string()),
                    })
                    .collect(),
                network_interfaces: c
                    .network_interfaces()
                    .iter()
                    .map(|n| NetworkInterface {
                        private_ipv4_address: n.private_ipv4_address().map(str::to_string),
                        ipv6_address: n.ipv6_address().map(str::to_string),
                    })
                    .collect(),
            })
            .collect(),
        rest: Map::new(),
    })
}

/// What ecsdns needs of a task definition: port mappings in order, and whether an essential
/// container has a health check.
pub(crate) fn task_definition(td: &ecs::TaskDefinition) -> TaskDefinitionInfo {
    let mut info = TaskDefinitionInfo::default();
    for c in td.container_definitions() {
        let name = c.name().unwrap_or_default();
        let essential = c.essential().unwrap_or(true);
        if c.health_check().is_some() && essential {
            info.health_checked = true;
        }
        if essential {
            let docker = c
                .docker_labels()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str()));
            match model::Labels::from_docker(docker) {
                Ok(l) if l.is_empty() => {}
                Ok(l) => {
                    // Several essential containers: their labels together.
                    let mut all: Vec<(String, String)> = info
                        .labels
                        .iter()
                        .flat_map(|x| x.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                        .collect();
                    all.extend(l.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                    info.labels = model::Labels::new(all).ok().map(Arc::new);
                }
                Err(e) => tracing::warn!(
                    task_definition = td.task_definition_arn().unwrap_or_default(),
                    container = name,
                    error = %e,
                    "invalid ecsdns.meta label: the task's labels are not published"
                ),
            }
        }
        if essential && info.check.is_none() {
            let labels = c
                .docker_labels()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str()));
            match check_from_labels(labels) {
                Ok(check) => info.check = check.map(Arc::new),
                Err(e) => tracing::warn!(
                    task_definition = td.task_definition_arn().unwrap_or_default(),
                    container = name,
                    error = %e,
                    "invalid active check label: the tasks are served on ECS health alone"
                ),
            }
        }
        for m in c.port_mappings() {
            let Some(port) = m.container_port().and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let protocol = match m.protocol() {
                Some(ecs::TransportProtocol::Udp) => Protocol::Udp,
                _ => Protocol::Tcp,
            };
            info.ports.push(PortMapping {
                container: name.to_string(),
                name: m.name().map(str::to_string),
                container_port: port,
                protocol,
            });
        }
    }
    info
}
