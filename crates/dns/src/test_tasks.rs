//! Tasks for the crate's tests: a running, healthy task of one service in cluster `c`, with one
//! IPv4 address and an `http` port 8080.

use std::net::{IpAddr, Ipv4Addr};

use model::{Health, Port, Protocol, Task, TaskGroup, TaskStatus};

/// A running, healthy task `arn` of `service` (cluster `c`) at `ip`.
pub(crate) fn running(arn: String, service: &str, ip: Ipv4Addr, version: u64) -> Task {
    Task {
        arn: arn.into(),
        cluster: "c".into(),
        group: TaskGroup::Service(service.into()),
        version,
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        health: Health::Healthy,
        health_checked: true,
        addresses: Box::new([IpAddr::V4(ip)]),
        ports: Box::new([Port {
            name: "http".into(),
            port: 8080,
            protocol: Protocol::Tcp,
        }]),
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
