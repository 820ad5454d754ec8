//! Names the registry derives from its tasks: stable ordinals (who holds which number of a
//! service with ordinals) and Service Connect names (which services' tasks publish a name, and
//! the members of a name's own snapshot). Kept apart from the update rules in `state`.

use std::sync::Arc;

use model::{ServiceKey, Task};

use super::{Dirty, Filing, Member, State, filing};
use crate::ConnectOf;

/// The keys of the Service Connect names a task publishes (other than its own service's).
fn connect_keys(task: &Task) -> Vec<ServiceKey> {
    // Most tasks publish no name: no label built for them.
    let Some(sc) = &task.service_connect else {
        return Vec::new();
    };
    let Filing::Served(key) = filing(task) else {
        return Vec::new();
    };
    sc.names
        .iter()
        .filter(|n| *n.label != *key.name)
        .map(|n| ServiceKey {
            cluster: key.cluster.clone(),
            name: n.label.to_string(),
        })
        .collect()
}

/// Whether a task keeps (or may take) an ordinal: it is not on its way out. A replacement that is
/// still starting holds its number already, so it answers under it the moment it is served.
fn holds_ordinal(task: &Task) -> bool {
    task.desired_status == model::TaskStatus::Running
        && task.last_status != model::TaskStatus::Stopped
}

impl State {
    /// Gives `task` its ordinal before it is stored: the one it arrives with (a restored task)
    /// or held before (`previous`), if no other task holds it now; otherwise the lowest free
    /// one. A task on its way out, or in a service without ordinals, gets none and frees its
    /// number. Never two tasks on one number.
    pub(super) fn stamp_ordinal(&mut self, task: &mut Task, previous: Option<u32>) {
        let wanted = task.ordinal.or(previous);
        task.ordinal = None;
        // Most registries number nothing: no label built per update for them.
        if self.ordinal_services.is_empty() {
            return;
        }
        let key = match filing(task) {
            Filing::Served(key) if self.ordinal_services.contains(&key) => key,
            _ => return,
        };
        let held = self.ordinals.entry(key.clone()).or_default();
        if let Some(n) = previous
            && held.get(&n).is_some_and(|a| **a == *task.arn)
        {
            held.remove(&n);
        }
        if holds_ordinal(task) {
            let n = match wanted {
                Some(n) if !held.contains_key(&n) => n,
                _ => (0..).find(|n| !held.contains_key(n)).unwrap_or(u32::MAX),
            };
            held.insert(n, Arc::clone(&task.arn));
            task.ordinal = Some(n);
        }
        if held.is_empty() {
            self.ordinals.remove(&key);
        }
    }

    /// Marks what a change of `task`'s state touches: its service and its Service Connect names.
    pub(super) fn touch(task: &Task, dirty: &mut Dirty) {
        if let Filing::Served(key) = filing(task) {
            dirty.insert(key);
        }
        dirty.extend(connect_keys(task));
    }

    /// Counts a filed task in (`add`) or out of the Service Connect names it publishes.
    pub(super) fn index_connect(&mut self, task: &Task, add: bool, dirty: &mut Dirty) {
        if task.service_connect.is_none() {
            return;
        }
        let Filing::Served(owner) = filing(task) else {
            return;
        };
        for key in connect_keys(task) {
            let owners = self.connect.entry(key.clone()).or_default();
            let count = owners.entry(owner.clone()).or_default();
            if add {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    owners.remove(&owner);
                }
            }
            if owners.is_empty() {
                self.connect.remove(&key);
            }
            dirty.insert(key);
        }
    }

    /// Frees the ordinal a stored task held (it is removed or filed elsewhere).
    pub(super) fn free_ordinal(&mut self, old: &Task) {
        let Some(n) = old.ordinal else {
            return;
        };
        let Filing::Served(key) = filing(old) else {
            return;
        };
        if let Some(held) = self.ordinals.get_mut(&key) {
            if held.get(&n).is_some_and(|a| **a == *old.arn) {
                held.remove(&n);
            }
            if held.is_empty() {
                self.ordinals.remove(&key);
            }
        }
    }

    /// Whether any task is filed under `key` itself (a service or group of that label).
    pub(crate) fn has_members(&self, key: &ServiceKey) -> bool {
        self.members.contains_key(&Filing::Served(key.clone()))
    }

    /// The services whose tasks publish the Service Connect name `key`, smallest first.
    pub(crate) fn connect_owners(&self, key: &ServiceKey) -> Vec<ServiceKey> {
        self.connect
            .get(key)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The members of the Service Connect name `key` when no service or group holds that
    /// label: the tasks of the smallest service publishing it that carry it, each with the
    /// name's port first (the port its SRV records lead to).
    pub(crate) fn connect_members(&self, key: &ServiceKey) -> Option<(ConnectOf, Vec<Member>)> {
        if self.has_members(key) {
            return None;
        }
        let service = self.connect.get(key)?.keys().next()?.clone();
        let mut source = None;
        let members = self
            .members(&service)
            .into_iter()
            .filter_map(|mut m| {
                let name = m.task.service_connect.as_deref()?.name(&key.name)?.clone();
                if let Some(at) = m.task.ports.iter().position(|p| *p.name == *name.port_name)
                    && at > 0
                {
                    let mut task = (*m.task).clone();
                    let mut ports = task.ports.into_vec();
                    let port = ports.remove(at);
                    ports.insert(0, port);
                    task.ports = ports.into_boxed_slice();
                    m.task = Arc::new(task);
                }
                source.get_or_insert_with(|| ConnectOf {
                    service: service.name.clone(),
                    port_name: name.port_name.to_string(),
                    client_port: name.client_port,
                });
                Some(m)
            })
            .collect();
        Some((source?, members))
    }
}
