//! AZ-qualified names: `AZ.S.C.zone` answers with the service's served tasks in that
//! availability zone (A/AAAA, SRV, and `_P._proto.AZ.S.C.zone`), so a client can pick its own
//! AZ by name. That works through any cache: the answer depends on the name asked, not on who
//! asks, where ordering by client address only works when ecsdns sees the client (direct, or a
//! resolver sending a trusted Client Subnet). Behind a Route 53 VPC resolver every query comes
//! from the resolver endpoint, and its cache is shared across the VPC.
//!
//! The form keeps every name of a service under the service (no name shared between services),
//! at the level of task names: ECS task ids (32 hex digits, or a UUID) never look like AZ names;
//! a static endpoint whose id equals an AZ's label keeps its name and that AZ name is not served.
//!
//! An AZ name exists for every AZ where the service has a known task and every AZ named by
//! `--az-subnet`, so a client's AZ name does not turn NXDOMAIN (which resolvers cache) while its
//! AZ has no task. An AZ with no served task answers with every served task instead, and its TXT
//! says so (`fallback=all`), as fail-open does for health.

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, RecordType};
use model::Task;
use registry::ServiceSnapshot;

use crate::prepare::{Pending, Preparer};
use crate::{DnsError, ZoneConfig};

/// A served task as AZ names list it.
struct Member<'a> {
    task: &'a Task,
    name: Name,
    addresses: Vec<RData>,
}

/// The served tasks of one service, grouped by AZ label.
pub(crate) struct AzGroups<'a> {
    groups: BTreeMap<String, Vec<Member<'a>>>,
    all: Vec<Member<'a>>,
}

/// The label of an AZ name (`us-east-1a`), when it can be one.
fn label_of(az: &str) -> Option<String> {
    model::dns_label(az)
        .ok()
        .filter(|l| !l.starts_with('_') && !l.contains('_'))
}

impl<'a> AzGroups<'a> {
    /// The AZs `snapshot`'s service gets names for: those of its known tasks and those the zone
    /// maps client subnets to, less any that equals one of its task labels.
    pub(crate) fn new(zone: &ZoneConfig, snapshot: &ServiceSnapshot) -> Self {
        let tasks: BTreeSet<String> = snapshot
            .tasks
            .iter()
            .filter_map(|v| model::task_label(v.task.id()))
            .collect();
        let groups = snapshot
            .tasks
            .iter()
            .filter_map(|v| v.task.az.as_deref())
            .chain(zone.az.subnets.iter().map(|(_, az)| az.as_str()))
            .filter_map(label_of)
            .filter(|l| !tasks.contains(l))
            .map(|l| (l, Vec::new()))
            .collect();
        Self {
            groups,
            all: Vec::new(),
        }
    }

    /// Adds one served task.
    pub(crate) fn add(&mut self, task: &'a Task, name: &Name, addresses: Vec<RData>) {
        if let Some(group) = task
            .az
            .as_deref()
            .and_then(label_of)
            .and_then(|l| self.groups.get_mut(&l))
        {
            group.push(Member {
                task,
                name: name.clone(),
                addresses: addresses.clone(),
            });
        }
        self.all.push(Member {
            task,
            name: name.clone(),
            addresses,
        });
    }

    /// Puts every AZ name of the service (under `service`) into `names`.
    pub(crate) fn prepare(
        self,
        preparer: &Preparer<'_>,
        service: &Name,
        names: &mut BTreeMap<Name, Pending>,
    ) -> Result<(), DnsError> {
        for (label, members) in &self.groups {
            let base =
                service
                    .prepend_label(label.as_bytes())
                    .map_err(|e| DnsError::InvalidName {
                        name: format!("{label}.{service}"),
                        reason: e.to_string(),
                    })?;
            let fallback = members.is_empty();
            let listed = if fallback { &self.all } else { members };
            for m in listed {
                // AZ tag 0: an AZ name is already one AZ, no reordering by client.
                preparer.group_records(names, &base, m.task, &m.name, &m.addresses, 0)?;
            }
            let mut strings = vec![format!("az={label}"), format!("served={}", members.len())];
            if fallback {
                strings.push("fallback=all".to_string());
            }
            names
                .entry(base)
                .or_default()
                .rrsets
                .entry(u16::from(RecordType::TXT))
                .or_default()
                .push((RData::TXT(TXT::new(strings)), None, 0));
        }
        Ok(())
    }
}
