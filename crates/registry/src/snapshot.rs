//! Immutable per-service snapshots: what readers (DNS, API) see of one served name.

use std::sync::Arc;

use model::{CheckState, ServiceKey, Task};

use crate::state::Member;

/// One task as a reader sees it: the task plus the verdicts derived from registry state.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// The task as last applied.
    pub task: Arc<Task>,
    /// Whether its container instance is draining or gone.
    pub instance_draining: bool,
    /// The verdict of its active check; `None` while pending (or when it has no check).
    pub check: Option<CheckState>,
    /// Whether it passes every rule for being served: [`Task::is_usable`], and its active check
    /// (if it has one) has passed.
    pub usable: bool,
    /// Whether DNS serves it now (usable, or live under fail-open).
    pub served: bool,
}

impl TaskView {
    /// Why DNS does not serve this task, in a few words (the per-task TXT's `reason=`, and
    /// `ecsdns explain`); `None` while it is served. The first rule it fails, in the order a
    /// task leaves: stopping, then draining, then its health, then its active check.
    pub fn left_out(&self) -> Option<String> {
        use model::{Health, TaskStatus};
        if self.served {
            return None;
        }
        let task = &self.task;
        Some(if task.desired_status != TaskStatus::Running {
            format!("stopping (desired {})", task.desired_status.as_str())
        } else if task.last_status != TaskStatus::Running {
            format!("not running yet ({})", task.last_status.as_str())
        } else if self.instance_draining {
            "container instance draining".to_string()
        } else if task.health == Health::Unhealthy {
            "ECS health UNHEALTHY".to_string()
        } else if task.health_checked && task.health == Health::Unknown {
            "ECS health check pending".to_string()
        } else {
            match &self.check {
                Some(c) if !c.passing => format!("active check failing: {}", c.reason),
                None if task.check.is_some() => "active check pending".to_string(),
                // Usable yet not served: other tasks are, so only fail-open could explain it.
                _ => "not served".to_string(),
            }
        })
    }
}

/// A naming problem: an ECS name that is not served, or not served as the operator may expect.
/// Reported through the API and a metric; never dropped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A group name cannot be a DNS label; its tasks are kept but not served.
    InvalidName {
        /// Cluster label.
        cluster: String,
        /// The ECS name as given.
        name: String,
        /// Why it is not a label.
        reason: String,
        /// How many tasks carry it.
        tasks: usize,
    },
    /// Two groups map to the same label; `winner` is served, `shadowed` is not.
    Collision {
        /// The served key.
        key: ServiceKey,
        /// The ECS group served (a service beats a standalone group; then the smaller name).
        winner: String,
        /// The ECS group that lost.
        shadowed: String,
    },
}

/// A consistent, immutable view of one served name at one registry generation.
#[derive(Debug, Clone)]
pub struct ServiceSnapshot {
    /// The served key.
    pub key: ServiceKey,
    /// Registry generation at which this snapshot was built.
    pub generation: u64,
    /// Every known task of the winning group, sorted by task id.
    pub tasks: Vec<TaskView>,
    /// True when no task is usable and the live ones are served anyway (fail-open).
    pub fail_open: bool,
    /// Collisions found while building this snapshot.
    pub problems: Vec<Problem>,
    /// Set when this name is a Service Connect name, not a service: whose tasks it lists.
    pub connect: Option<ConnectOf>,
}

/// What a Service Connect name (`NAME.C.zone`) stands for: the tasks of `service` that
/// publish it, reached on `port_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOf {
    /// The label of the service whose tasks publish the name.
    pub service: String,
    /// The task port the name leads to (first in each listed task's ports, so SRV uses it).
    pub port_name: String,
    /// The client alias's port (Service Connect's proxy), when one is given.
    pub client_port: Option<u16>,
}

impl ServiceSnapshot {
    /// Whether this is a Service Connect name (its tasks are another service's): totals and
    /// per-task lookups skip it, so no task is counted or found twice.
    pub fn is_connect_name(&self) -> bool {
        self.connect.is_some()
    }

    /// The views of the tasks DNS serves, sorted by task id.
    pub fn served_views(&self) -> impl Iterator<Item = &TaskView> {
        self.tasks.iter().filter(|t| t.served)
    }

    /// The tasks DNS serves, sorted by task id.
    pub fn served(&self) -> impl Iterator<Item = &Task> {
        self.tasks
            .iter()
            .filter(|t| t.served)
            .map(|t| t.task.as_ref())
    }

    /// Builds a snapshot from the tasks filed under `key`. `draining` says, per task, whether its
    /// container instance is draining. Returns `None` when nothing is left under the key.
    pub(crate) fn build(
        key: &ServiceKey,
        generation: u64,
        members: Vec<Member>,
        fail_open: bool,
    ) -> Option<Self> {
        // The winner: a service beats a standalone group, then the smallest original name.
        let winner = members
            .iter()
            .map(|m| &m.task.group)
            .min_by_key(|g| (!g.is_service(), g.name()))?
            .clone();
        let mut problems = Vec::new();
        let mut tasks = Vec::with_capacity(members.len());
        for Member {
            task,
            instance_draining,
            check,
        } in members
        {
            if task.group != winner {
                let collision = Problem::Collision {
                    key: key.clone(),
                    winner: winner.to_string(),
                    shadowed: task.group.to_string(),
                };
                if !problems.contains(&collision) {
                    problems.push(collision);
                }
                continue;
            }
            let check_passes = task.check.is_none() || check.as_ref().is_some_and(|c| c.passing);
            let usable = task.is_usable(instance_draining) && check_passes;
            tasks.push(TaskView {
                task,
                instance_draining,
                check,
                usable,
                served: usable,
            });
        }
        // By ARN: the tasks of one snapshot share a cluster, so their ARNs differ only in the
        // task id and this is task id order, without splitting ARNs in every comparison.
        tasks.sort_by(|a, b| a.task.arn.cmp(&b.task.arn));
        let mut open = false;
        if fail_open && !tasks.iter().any(|t| t.usable) {
            for view in &mut tasks {
                view.served = view.task.is_live(view.instance_draining);
                open |= view.served;
            }
        }
        Some(Self {
            key: key.clone(),
            generation,
            tasks,
            fail_open: open,
            problems,
            connect: None,
        })
    }
}
