//! Group names: names under a service that list part of its served tasks (A/AAAA, SRV, and
//! `_P._proto.G.S.C.zone`), each with a TXT saying what it holds.
//!
//! - **AZ names** `AZ.S.C.zone`: the service's served tasks in that availability zone, so a
//!   client can pick its own AZ by name. That works through any cache: the answer depends on
//!   the name asked, not on who asks, where ordering by client address only works when ecsdns
//!   sees the client (direct, or a resolver sending a trusted Client Subnet). Behind a Route 53
//!   VPC resolver every query comes from the resolver endpoint, and its cache is shared across
//!   the VPC. An AZ name exists for every AZ where the service has a known task and every AZ
//!   named by `--az-subnet`, so a client's AZ name does not turn NXDOMAIN (which resolvers
//!   cache) while its AZ has no task; an AZ with no served task answers with every served task
//!   instead, and its TXT says so (`fallback=all`), as fail-open does for health.
//! - **Revision names** `rev-N.S.C.zone`: the tasks of task definition revision N, e.g. the
//!   canary's addresses during a deploy. They exist while a known task has that revision.
//! - **Ordinal names** `N.S.C.zone` (services with stable ordinals): the task holding ordinal
//!   N (`model::Task::ordinal`), while it is served; NODATA while its holder is not (yet)
//!   served. The name exists while a known task holds the number.
//! - **Subset names** `V.S.C.zone`: the tasks whose label `K` (declared with
//!   `--subset-label K`) has the value `V`, e.g. `v2.web.prod.ecs.internal`. They exist while a
//!   known task carries that value; an empty subset answers NODATA, never the whole service.
//!
//! Every name of a service stays under the service (no name shared between services), at the
//! level of task names. A task's own name always wins: ECS task ids (32 hex digits, or a UUID)
//! never look like these labels, and a static endpoint whose id equals one keeps its name.
//! Then ordinals win over AZ names, AZ names over revision names, and revision names over
//! subsets.

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData};
use model::Task;
use registry::ServiceSnapshot;

use crate::prepare::{Pending, Preparer};
use crate::{DnsError, ZoneConfig};

/// A served task as group names list it.
struct Member<'a> {
    task: &'a Task,
    name: Name,
    addresses: Vec<RData>,
}

/// What a group name selects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The task holding one stable ordinal (a service with ordinals).
    Ordinal,
    /// Tasks in one AZ.
    Az,
    /// Tasks of one task definition revision.
    Revision,
    /// Tasks whose label (the key) has the group's value.
    Subset(String),
}

/// One group name and its served tasks.
struct Group<'a> {
    kind: Kind,
    members: Vec<Member<'a>>,
}

/// The served tasks of one service, by group name.
pub(crate) struct Groups<'a> {
    groups: BTreeMap<String, Group<'a>>,
    all: Vec<Member<'a>>,
}

/// A value as a group label, when it can be one (a host name label, lower case).
fn label_of(value: &str) -> Option<String> {
    model::dns_label(value)
        .ok()
        .filter(|l| !l.starts_with('_') && !l.contains('_'))
}

/// `rev-N` for a task of task definition revision N.
fn revision_of(task: &Task) -> Option<String> {
    task.revision().map(|n| format!("rev-{n}"))
}

/// The label of `task` that group `kind` compares with the group's name.
fn key_of(task: &Task, kind: &Kind) -> Option<String> {
    match kind {
        Kind::Ordinal => task.ordinal.map(|n| n.to_string()),
        Kind::Az => task.az.as_deref().and_then(label_of),
        Kind::Revision => revision_of(task),
        Kind::Subset(key) => task
            .labels
            .as_deref()
            .and_then(|l| l.get(key))
            .and_then(label_of),
    }
}

impl<'a> Groups<'a> {
    /// The group names `snapshot`'s service gets, less any that equals one of its task labels.
    pub(crate) fn new(zone: &ZoneConfig, snapshot: &ServiceSnapshot) -> Self {
        let tasks: BTreeSet<String> = snapshot
            .tasks
            .iter()
            .filter_map(|v| model::task_label(v.task.id()))
            .collect();
        let mut groups: BTreeMap<String, Group<'a>> = BTreeMap::new();
        let mut declare = |label: String, kind: &Kind| {
            if !tasks.contains(&label) {
                groups.entry(label).or_insert_with(|| Group {
                    kind: kind.clone(),
                    members: Vec::new(),
                });
            }
        };
        // Ordinals first: a number held now beats a subset value that happens to be one.
        let mut kinds = vec![Kind::Ordinal];
        // A Service Connect name's tasks have their group names under their service only.
        let connect = snapshot.is_connect_name();
        if !zone.az.no_az_names && !connect {
            kinds.push(Kind::Az);
            for az in zone.az.subnets.iter().filter_map(|(_, az)| label_of(az)) {
                declare(az, &Kind::Az);
            }
        }
        if zone.subsets.revisions {
            kinds.push(Kind::Revision);
        }
        kinds.extend(zone.subsets.labels.iter().cloned().map(Kind::Subset));
        if connect {
            kinds.clear();
        }
        for kind in &kinds {
            for view in &snapshot.tasks {
                if let Some(label) = key_of(&view.task, kind) {
                    declare(label, kind);
                }
            }
        }
        Self {
            groups,
            all: Vec::new(),
        }
    }

    /// Adds one served task.
    pub(crate) fn add(&mut self, task: &'a Task, name: &Name, addresses: Vec<RData>) {
        for (label, group) in &mut self.groups {
            if key_of(task, &group.kind).as_deref() == Some(label.as_str()) {
                group.members.push(Member {
                    task,
                    name: name.clone(),
                    addresses: addresses.clone(),
                });
            }
        }
        self.all.push(Member {
            task,
            name: name.clone(),
            addresses,
        });
    }

    /// Puts every group name of the service (under `service`) into `names`.
    pub(crate) fn prepare(
        self,
        preparer: &Preparer<'_>,
        service: &Name,
        names: &mut BTreeMap<Name, Pending>,
    ) -> Result<(), DnsError> {
        for (label, group) in &self.groups {
            let base = crate::prepare::under(service, label)?;
            let served = group.members.len();
            // Only an AZ name falls back to every task: a client in that AZ must reach some.
            let fallback = served == 0 && group.kind == Kind::Az;
            let listed = if fallback { &self.all } else { &group.members };
            for m in listed {
                // AZ tag 0: a group is already chosen by name, no reordering by client.
                preparer.group_records(names, &base, m.task, &m.name, &m.addresses, 0)?;
            }
            let what = match &group.kind {
                Kind::Ordinal => format!("ordinal={label}"),
                Kind::Az => format!("az={label}"),
                Kind::Revision => format!("revision={}", label.trim_start_matches("rev-")),
                Kind::Subset(key) => format!("label.{key}={label}"),
            };
            let mut strings = vec![what, format!("served={served}")];
            if fallback {
                strings.push("fallback=all".to_string());
            }
            names
                .entry(base)
                .or_default()
                .push(RData::TXT(TXT::new(strings)));
        }
        Ok(())
    }
}
