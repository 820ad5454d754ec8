//! Domain types of ecsdns: tasks, their endpoints, the updates every source emits, and the naming
//! rules that decide which ECS names can become DNS labels.
//!
//! Invariants: no I/O, no async, no clock. Every source (ECS events, reconcile, the demo simulator,
//! the static endpoints file) speaks to the registry only through [`Update`], so the rules about what
//! a task *is* live here once.

mod check;
mod connect;
mod labels;
mod naming;
mod task;

pub use check::{Check, CheckError, CheckKind, CheckPort, CheckState};
pub use connect::{ConnectName, ServiceConnect};
pub use labels::{LabelError, Labels, MAX_VALUE as MAX_LABEL_VALUE, META_PREFIX};
pub use naming::{
    NameError, dns_label, ordinal_fqdn, port_label, service_fqdn, task_fqdn, task_label,
};
pub use task::{
    ContainerInstance, Health, InstanceStatus, Port, Protocol, ServiceKey, Task, TaskGroup,
    TaskStatus, Update,
};
