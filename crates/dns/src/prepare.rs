//! Prepares wire-format answers for the naming schema, once per registry change.
//!
//! Every record is encoded by hickory-proto as if it followed the question of a query for its
//! RRset's name: the owner name is compressed against the question, everything else is written
//! uncompressed. The bytes are then valid at any position after that question, which lets the
//! answer path rotate, truncate and splice records with plain copies.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use model::{Task, port_label};
use registry::{ServiceSnapshot, TaskView};

use crate::azname::Groups;
use crate::config::reverse_name;
use crate::entry::{AzTags, NameEntry, RrsetParts};
use crate::{AzPreference, DnsError, ZoneConfig};

/// Encodes one record positioned after a question for `qname`.
fn encode(qname: &Name, owner: &Name, ttl: u32, rdata: &RData) -> Result<Vec<u8>, DnsError> {
    let err = |e: hickory_proto::ProtoError| DnsError::Encode {
        name: owner.to_string(),
        reason: e.to_string(),
    };
    // The owner, compressed against the question.
    let mut seeded = Vec::with_capacity(128);
    let mut enc = BinEncoder::new(&mut seeded);
    enc.emit_vec(&[0u8; 12]).map_err(err)?;
    qname.emit(&mut enc).map_err(err)?;
    let start = enc.offset();
    owner.emit(&mut enc).map_err(err)?;
    // The rest, uncompressed, so nothing points inside the record itself.
    let mut rest = Vec::with_capacity(128);
    let mut enc = BinEncoder::new(&mut rest);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    rdata.record_type().emit(&mut enc).map_err(err)?;
    DNSClass::IN.emit(&mut enc).map_err(err)?;
    enc.emit_u32(ttl).map_err(err)?;
    let place = enc.place::<u16>().map_err(err)?;
    rdata.emit(&mut enc).map_err(err)?;
    let len = enc.len_since_place(&place) as u16;
    place.replace(&mut enc, len).map_err(err)?;
    let mut out = seeded[start..].to_vec();
    out.extend_from_slice(&rest);
    Ok(out)
}

/// `label.parent`, or the error naming it.
pub(crate) fn under(parent: &Name, label: &str) -> Result<Name, DnsError> {
    parent
        .prepend_label(label.as_bytes())
        .map_err(|e| DnsError::InvalidName {
            name: format!("{label}.{parent}"),
            reason: e.to_string(),
        })
}

/// Builds the prepared entries of one zone from registry snapshots.
pub(crate) struct Preparer<'a> {
    pub(crate) zone: &'a ZoneConfig,
}

/// Everything one service contributes to the table.
pub(crate) struct Prepared {
    /// The names it owns alone, with their RRsets.
    pub(crate) names: Vec<(Name, NameEntry)>,
    /// PTR records (one unit each) at reverse names, which tasks of several services may share
    /// (bridge tasks on one host): the table merges them per name.
    pub(crate) ptrs: Vec<(Name, Vec<u8>)>,
    /// The tasks whose addresses these answers carry (the drain API's served set).
    pub(crate) served: Vec<std::sync::Arc<str>>,
    /// The TTL of every record prepared.
    pub(crate) ttl: u32,
}

impl Prepared {
    /// What a service that is gone contributes: nothing, at the TTL its answers had.
    pub(crate) fn gone(ttl: u32) -> Self {
        Self {
            names: Vec::new(),
            ptrs: Vec::new(),
            served: Vec::new(),
            ttl,
        }
    }
}

/// What one owner name holds while a service is being prepared.
#[derive(Default)]
pub(crate) struct Pending {
    /// qtype -> records (owner = this name), each with the target whose addresses go in the
    /// additional section and the index of its task's AZ (0: unknown).
    pub(crate) rrsets: BTreeMap<u16, Vec<(RData, Option<Name>, u8)>>,
    /// Addresses already in its A/AAAA sets (tasks sharing a host address appear once), so
    /// adding a task costs a lookup, not a scan of the set.
    seen: std::collections::HashSet<IpAddr>,
}

impl Pending {
    /// Adds a record with no additional section and no AZ order (a TXT, a task's own address).
    pub(crate) fn push(&mut self, rdata: RData) {
        self.rrsets
            .entry(u16::from(rdata.record_type()))
            .or_default()
            .push((rdata, None, 0));
    }
}

impl Preparer<'_> {
    fn name(&self, labels: &[&str]) -> Result<Name, DnsError> {
        let mut name = self.zone.origin.clone();
        for label in labels.iter().rev() {
            name = name
                .prepend_label(label.as_bytes())
                .map_err(|e| DnsError::InvalidName {
                    name: format!("{label}.{name}"),
                    reason: e.to_string(),
                })?;
        }
        Ok(name)
    }

    /// Address records of one task name, for answers and for SRV additional data.
    fn address_rdata(task: &Task) -> (Vec<RData>, Vec<RData>) {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for addr in &task.addresses {
            match addr {
                IpAddr::V4(a) => v4.push(RData::A(A(*a))),
                IpAddr::V6(a) => v6.push(RData::AAAA(AAAA(*a))),
            }
        }
        v4.dedup();
        v6.dedup();
        (v4, v6)
    }

    /// The per-task TXT: the task's state; for a task left out of the answers, first
    /// `served=no` and the reason.
    fn txt(view: &TaskView) -> RData {
        let task = &view.task;
        let mut strings = Vec::new();
        if let Some(why) = view.left_out() {
            strings.push("served=no".to_string());
            strings.push(format!("reason={why}"));
        }
        strings.extend([
            format!("status={}", task.last_status.as_str()),
            format!("desired={}", task.desired_status.as_str()),
            format!("health={}", task.health.as_str()),
        ]);
        if let Some(az) = &task.az {
            strings.push(format!("az={az}"));
        }
        if let Some(td) = &task.task_definition {
            strings.push(format!("taskdef={}", td.rsplit('/').next().unwrap_or(td)));
        }
        if let Some(check) = &task.check {
            let verdict = match &view.check {
                None => "pending",
                Some(c) if c.passing => "passing",
                Some(_) => "failing",
            };
            strings.push(format!("check={check} {verdict}"));
            if let Some(c) = view.check.as_ref().filter(|c| !c.passing) {
                strings.push(format!("check_reason={}", c.reason));
            }
        }
        for (k, v) in task.labels.iter().flat_map(|l| l.iter()) {
            strings.push(format!("label.{k}={v}"));
        }
        strings.push(format!("version={}", task.version));
        strings.retain(|s| s.len() <= 255);
        RData::TXT(TXT::new(strings))
    }

    /// Every name a served service owns, with its prepared RRsets. Names that exist but hold no
    /// data (`_tcp.S.C.Z`, or `S.C.Z` with nothing served) come back with no RRsets.
    /// `slot`: the service's query-counter slot, carried by each of its names.
    pub(crate) fn service(
        &self,
        snapshot: &ServiceSnapshot,
        slot: Option<u32>,
    ) -> Result<Prepared, DnsError> {
        let key = &snapshot.key;
        let ttl = self.ttl_of(key);
        let preference = self.zone.az.preference(&key.to_string());
        let fit = self.overflow_of(key) == crate::UdpOverflow::Fit;
        let service = self.name(&[&key.name, &key.cluster])?;
        let mut names: BTreeMap<Name, Pending> = BTreeMap::new();
        names.entry(service.clone()).or_default();
        let mut additional: BTreeMap<Name, Vec<RData>> = BTreeMap::new();
        let mut ptrs = Vec::new();
        let mut served = Vec::new();
        let mut groups = Groups::new(self.zone, snapshot);
        for view in snapshot.served_views() {
            let task = view.task.as_ref();
            let Some(id) = model::task_label(task.id()) else {
                continue;
            };
            let task_name = under(&service, &id)?;
            let (v4, v6) = Self::address_rdata(task);
            // The served log keeps one service per task: its own (a Service Connect name's
            // tasks are its service's, which reports them).
            if snapshot.connect.is_none() {
                served.push(std::sync::Arc::clone(&task.arn));
            }
            let az = self.zone.az.index_of(task.az.as_deref());
            // Reverse names only where reverse zones are served: no work per task otherwise.
            // A Service Connect name adds none: the task's own service names it.
            let reverse_zones = &self.zone.reverse_zones;
            let reverse = !reverse_zones.is_empty() && snapshot.connect.is_none();
            for ip in task.addresses.iter().filter(|_| reverse) {
                let Ok(reverse) = reverse_name(*ip) else {
                    continue;
                };
                if self.zone.reverse_zones.iter().any(|z| z.zone_of(&reverse)) {
                    let ptr = RData::PTR(PTR(task_name.clone()));
                    ptrs.push((reverse.clone(), encode(&reverse, &reverse, ttl, &ptr)?));
                }
            }
            let own = names.entry(task_name.clone()).or_default();
            for rdata in v4.iter().chain(&v6) {
                own.push(rdata.clone());
            }
            own.push(Self::txt(view));
            additional.insert(task_name.clone(), v4.iter().chain(&v6).cloned().collect());
            let addresses: Vec<RData> = v4.iter().chain(&v6).cloned().collect();
            self.group_records(&mut names, &service, task, &task_name, &addresses, az)?;
            groups.add(task, &task_name, addresses);
        }
        // Known but unserved tasks keep their own name with TXT only (no address: nothing
        // routes to them), so `dig TXT T.S.C.Z` says why a task is left out.
        for view in snapshot.tasks.iter().filter(|v| !v.served) {
            let Some(id) = model::task_label(view.task.id()) else {
                continue;
            };
            let task_name = under(&service, &id)?;
            names.entry(task_name).or_default().push(Self::txt(view));
        }
        groups.prepare(self, &service, &mut names)?;
        // A Service Connect name says whose it is: `dig TXT orders-api.C.Z`.
        if let Some(c) = &snapshot.connect {
            let mut strings = vec![
                format!("service-connect={}", c.service),
                format!("port={}", c.port_name),
            ];
            strings.extend(c.client_port.map(|p| format!("client-port={p}")));
            names
                .entry(service.clone())
                .or_default()
                .push(RData::TXT(hickory_proto::rr::rdata::TXT::new(strings)));
        }
        let mut out = Vec::with_capacity(names.len());
        for (name, pending) in names {
            let mut rrsets = Vec::with_capacity(pending.rrsets.len());
            for (qtype, records) in pending.rrsets {
                let mut answer = Vec::with_capacity(records.len());
                let mut extra = Vec::new();
                for (rdata, target, _) in &records {
                    answer.push((encode(&name, &name, ttl, rdata)?, 1));
                    if let Some(target) = target {
                        let mut unit = Vec::new();
                        let addrs = additional.get(target).map(Vec::as_slice).unwrap_or(&[]);
                        for addr in addrs {
                            unit.extend(encode(&name, target, ttl, addr)?);
                        }
                        extra.push((unit, addrs.len() as u16));
                    }
                }
                // Task names hold one task: only the shared names follow the client's AZ.
                let azs = match preference {
                    _ if records.iter().all(|(_, _, az)| *az == 0) => None,
                    AzPreference::Off => None,
                    AzPreference::First => Some(None),
                    AzPreference::Only { min } => Some(Some(min)),
                }
                .map(|only_min| AzTags {
                    only_min,
                    tags: records.iter().map(|(_, _, az)| *az).collect(),
                });
                rrsets.push(RrsetParts {
                    qtype,
                    answer,
                    additional: extra,
                    serial_at: None,
                    azs,
                    fit,
                });
            }
            out.push((name, NameEntry::counted(rrsets, slot)));
        }
        Ok(Prepared {
            names: out,
            ptrs,
            served,
            ttl,
        })
    }

    /// One task's records in a name that lists several tasks (`base`: the service's name, or
    /// one of its AZ names): its addresses (each once), the SRV of its primary port, and an
    /// SRV in `_P._proto.base` per named port; `az`: the task's AZ index for same-AZ order.
    pub(crate) fn group_records(
        &self,
        names: &mut BTreeMap<Name, Pending>,
        base: &Name,
        task: &Task,
        task_name: &Name,
        addresses: &[RData],
        az: u8,
    ) -> Result<(), DnsError> {
        let group = names.entry(base.clone()).or_default();
        for rdata in addresses {
            let ip = match rdata {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            if group.seen.insert(ip) {
                group
                    .rrsets
                    .entry(u16::from(rdata.record_type()))
                    .or_default()
                    .push((rdata.clone(), None, az));
            }
        }
        for (i, port) in task.ports.iter().enumerate() {
            let srv = RData::SRV(SRV::new(0, 1, port.port, task_name.clone()));
            if i == 0 {
                names
                    .entry(base.clone())
                    .or_default()
                    .rrsets
                    .entry(u16::from(RecordType::SRV))
                    .or_default()
                    .push((srv.clone(), Some(task_name.clone()), az));
            }
            let Ok(plabel) = port_label(&port.name) else {
                continue;
            };
            let proto = under(base, port.protocol.label())?;
            names.entry(proto.clone()).or_default();
            names
                .entry(under(&proto, &plabel)?)
                .or_default()
                .rrsets
                .entry(u16::from(RecordType::SRV))
                .or_default()
                .push((srv, Some(task_name.clone()), az));
        }
        Ok(())
    }

    /// What an oversized UDP answer of a service's names carries: its own setting, or the
    /// zone's.
    pub(crate) fn overflow_of(&self, key: &model::ServiceKey) -> crate::UdpOverflow {
        self.zone
            .service_udp_overflow
            .get(&key.to_string())
            .copied()
            .unwrap_or(self.zone.udp_overflow)
    }

    /// The TTL of a service's records: its own, or the zone's.
    pub(crate) fn ttl_of(&self, key: &model::ServiceKey) -> u32 {
        self.zone
            .service_ttl
            .get(&key.to_string())
            .copied()
            .unwrap_or(self.zone.ttl)
    }

    fn soa(&self, serial: u32) -> Result<RData, DnsError> {
        let rname = self.name(&["hostmaster"])?;
        Ok(RData::SOA(SOA::new(
            self.zone.ns_name.clone(),
            rname,
            serial,
            self.zone.refresh,
            self.zone.retry,
            self.zone.expire,
            self.zone.negative_ttl,
        )))
    }

    /// The apex (SOA, NS) and the in-zone name server's addresses.
    pub(crate) fn apex(&self) -> Result<Vec<(Name, NameEntry)>, DnsError> {
        let origin = &self.zone.origin;
        let soa = encode(origin, origin, self.zone.soa_ttl, &self.soa(0)?)?;
        // The serial is the fifth-from-last u32 of the SOA RDATA.
        let serial_at = soa.len() - 20;
        let ns = RData::NS(NS(self.zone.ns_name.clone()));
        let ns_name = &self.zone.ns_name;
        let in_zone = origin.zone_of(ns_name) && ns_name != origin;
        let addresses: Vec<RData> = self
            .zone
            .ns_addresses
            .iter()
            .map(|addr| match addr {
                IpAddr::V4(a) => RData::A(A(*a)),
                IpAddr::V6(a) => RData::AAAA(AAAA(*a)),
            })
            .collect();
        // RFC 1034 4.3.2: the apex NS answer carries the in-zone server's addresses.
        let mut glue = Vec::new();
        for rdata in addresses.iter().filter(|_| in_zone) {
            glue.extend(encode(origin, ns_name, self.zone.soa_ttl, rdata)?);
        }
        let ns_additional = if glue.is_empty() {
            Vec::new()
        } else {
            vec![(glue, addresses.len() as u16)]
        };
        let mut entries = vec![(
            origin.clone(),
            NameEntry::new(vec![
                RrsetParts {
                    qtype: u16::from(RecordType::SOA),
                    answer: vec![(soa, 1)],
                    additional: Vec::new(),
                    serial_at: Some(serial_at),
                    azs: None,
                    fit: false,
                },
                RrsetParts {
                    qtype: u16::from(RecordType::NS),
                    answer: vec![(encode(origin, origin, self.zone.soa_ttl, &ns)?, 1)],
                    additional: ns_additional,
                    serial_at: None,
                    azs: None,
                    fit: false,
                },
            ]),
        )];
        if in_zone {
            let mut by_type: BTreeMap<u16, Vec<(Vec<u8>, u16)>> = BTreeMap::new();
            for rdata in addresses {
                let bytes = encode(ns_name, ns_name, self.zone.soa_ttl, &rdata)?;
                by_type
                    .entry(u16::from(rdata.record_type()))
                    .or_default()
                    .push((bytes, 1));
            }
            let rrsets = by_type
                .into_iter()
                .map(|(qtype, answer)| RrsetParts {
                    qtype,
                    answer,
                    additional: Vec::new(),
                    serial_at: None,
                    azs: None,
                    fit: false,
                })
                .collect();
            entries.push((ns_name.clone(), NameEntry::new(rrsets)));
        }
        Ok(entries)
    }

    /// The SOA for negative answers without its owner name (the answer path writes a pointer to
    /// the zone inside the question), TTL = min(SOA TTL, MINIMUM) per RFC 2308. Returns the bytes
    /// and the serial's offset in them.
    pub(crate) fn negative_soa(&self) -> Result<(Vec<u8>, usize), DnsError> {
        let origin = &self.zone.origin;
        let ttl = self.zone.soa_ttl.min(self.zone.negative_ttl);
        let soa = encode(origin, origin, ttl, &self.soa(0)?)?;
        // encode() compressed the owner (the question itself) to a 2-byte pointer.
        let body = soa[2..].to_vec();
        let serial_at = body.len() - 20;
        Ok((body, serial_at))
    }
}
