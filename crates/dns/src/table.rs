//! The answer table: lower-cased wire name -> prepared RRsets, shared by every query thread and
//! updated per changed service by one writer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;
use hickory_proto::rr::Name;
use model::ServiceKey;
use registry::ServiceSnapshot;

use crate::entry::{NameEntry, RrsetParts};
use crate::xfr::{Journal, in_zone, records_of};

/// Records the IXFR journal may hold; past it, the oldest steps go (secondaries that far
/// behind get a full transfer).
const JOURNAL_RECORDS: usize = 200_000;
use crate::prepare::Preparer;
use crate::served::ServeLog;
use crate::{DnsError, ZoneConfig};

/// Shared between the table and the owners index, so each name's bytes are held once.
pub(crate) type Key = Arc<[u8]>;

/// Lower-cased wire form of a name: the table key.
pub(crate) fn wire_key(name: &Name) -> Key {
    let mut out = Vec::with_capacity(64);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out.into()
}

/// Names each service owns, and reference counts of the shared empty non-terminals (cluster
/// names) above them.
#[derive(Default)]
struct Owners {
    owned: HashMap<ServiceKey, Vec<Key>>,
    shared: HashMap<Key, usize>,
    /// PTR records by reverse name and by the service that contributes them: several services'
    /// tasks may share an address (bridge tasks on one host), so a reverse name is rebuilt from
    /// every contributor.
    ptr_holders: HashMap<Key, BTreeMap<ServiceKey, Vec<Vec<u8>>>>,
    ptr_owned: HashMap<ServiceKey, Vec<Key>>,
}

/// A reverse zone served alongside the main zone: its apex and its negative-answer SOA.
pub(crate) struct ReverseZone {
    pub(crate) key: Key,
    pub(crate) negative_soa: Box<[u8]>,
    pub(crate) negative_serial_at: usize,
}

/// The prepared answers of one zone.
pub struct AnswerTable {
    pub(crate) zone: ZoneConfig,
    pub(crate) origin_key: Key,
    pub(crate) names: DashMap<Key, NameEntry, ahash::RandomState>,
    pub(crate) negative_soa: Box<[u8]>,
    pub(crate) negative_serial_at: usize,
    /// Reverse zones, in configuration order.
    pub(crate) reverse: Vec<ReverseZone>,
    serial: AtomicU32,
    owners: Mutex<Owners>,
    /// Held by the follower for each whole generation it applies, and by zone transfers while
    /// they collect records: a transfer is a consistent cut at one serial.
    sync: Mutex<()>,
    /// Changes by serial, for IXFR; kept only when transfers are offered.
    pub(crate) journal: Mutex<Journal>,
    /// Which tasks the answers carry, and since when they no longer do.
    pub(crate) served: ServeLog,
}

impl AnswerTable {
    /// An empty zone: apex SOA and NS only.
    pub fn new(zone: ZoneConfig) -> Result<Self, DnsError> {
        let preparer = Preparer { zone: &zone };
        let (negative_soa, negative_serial_at) = preparer.negative_soa()?;
        let names = DashMap::with_hasher(ahash::RandomState::new());
        for (name, entry) in preparer.apex()? {
            names.insert(wire_key(&name), entry);
        }
        let mut reverse = Vec::new();
        for origin in &zone.reverse_zones {
            let mut rz = zone.clone();
            rz.origin = origin.clone();
            let preparer = Preparer { zone: &rz };
            let (soa, serial_at) = preparer.negative_soa()?;
            for (name, entry) in preparer.apex()? {
                names.insert(wire_key(&name), entry);
            }
            reverse.push(ReverseZone {
                key: wire_key(origin),
                negative_soa: soa.into(),
                negative_serial_at: serial_at,
            });
        }
        let origin_key = wire_key(&zone.origin);
        let serial = AtomicU32::new(zone.serial_base);
        let served = ServeLog::new(zone.transfer.notify.iter().map(|a| a.ip()).collect());
        Ok(Self {
            zone,
            origin_key,
            names,
            negative_soa: negative_soa.into(),
            negative_serial_at,
            reverse,
            serial,
            owners: Mutex::new(Owners::default()),
            sync: Mutex::new(()),
            journal: Mutex::new(Journal::new(JOURNAL_RECORDS)),
            served,
        })
    }

    /// Holds off zone transfers (and other syncs) while one generation is applied.
    pub fn sync_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The zone this table serves.
    pub fn zone(&self) -> &ZoneConfig {
        &self.zone
    }

    /// The SOA serial now.
    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Relaxed)
    }

    /// Moves the SOA serial to follow the registry generation (RFC 1982 arithmetic: it wraps).
    pub fn set_generation(&self, generation: u64) {
        let serial = self.zone.serial_base.wrapping_add(generation as u32);
        let old = self.serial.swap(serial, Ordering::Relaxed);
        if self.transfers_enabled() {
            self.journal().seal(old, serial);
        }
        self.served.sealed(serial);
    }

    /// Which tasks the answers carry and since when they no longer do: the drain API's source.
    pub fn served(&self) -> &ServeLog {
        &self.served
    }

    /// Number of names held (served names and empty non-terminals).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether only the apex is held.
    pub fn is_empty(&self) -> bool {
        self.names.len() <= 2
    }

    /// Replaces everything `key` serves with what `snapshot` says (`None`: the service is gone).
    /// New names are inserted before old ones are removed, so a name that stays never
    /// disappears in between.
    pub fn set_service(
        &self,
        key: &ServiceKey,
        snapshot: Option<&ServiceSnapshot>,
    ) -> Result<(), DnsError> {
        let preparer = Preparer { zone: &self.zone };
        let (entries, ptrs, served, ttl) = match snapshot {
            Some(s) => {
                let p = preparer.service(s)?;
                (p.names, p.ptrs, p.served, p.ttl)
            }
            None => (Vec::new(), Vec::new(), Vec::new(), preparer.ttl_of(key)),
        };
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let journaling = self.transfers_enabled();
        let mut old_records = Vec::new();
        let mut new_records = Vec::new();
        if journaling {
            for k in owners.owned.get(key).into_iter().flatten() {
                if let Some(e) = self.names.get(k) {
                    old_records.extend(records_of(k, &e, 0));
                }
            }
        }
        let mut new_keys = Vec::with_capacity(entries.len());
        for (name, entry) in entries {
            let k = wire_key(&name);
            if journaling {
                new_records.extend(records_of(&k, &entry, 0));
            }
            new_keys.push(k.clone());
            self.names.insert(k, entry);
        }
        if journaling {
            self.journal().change(old_records, new_records);
        }
        let cluster = Name::from_labels([key.cluster.as_bytes()])
            .and_then(|c| c.append_name(&self.zone.origin))
            .map(|c| wire_key(&c))
            .map_err(|e| DnsError::InvalidName {
                name: key.cluster.clone(),
                reason: e.to_string(),
            })?;
        let existed = owners.owned.contains_key(key);
        let exists = !new_keys.is_empty();
        let old_keys = if exists {
            owners.owned.insert(key.clone(), new_keys.clone())
        } else {
            owners.owned.remove(key)
        };
        let keep: HashSet<&Key> = new_keys.iter().collect();
        for old in old_keys.iter().flatten().filter(|k| !keep.contains(k)) {
            self.names.remove(old);
        }
        self.set_ptrs(&mut owners, key, ptrs);
        match (existed, exists) {
            (false, true) => {
                *owners.shared.entry(cluster.clone()).or_default() += 1;
                self.names.entry(cluster).or_default();
            }
            (true, false) => {
                let count = owners.shared.entry(cluster.clone()).or_default();
                *count = count.saturating_sub(1);
                if *count == 0 {
                    owners.shared.remove(&cluster);
                    self.names.remove_if(&cluster, |_, e| e.is_empty());
                }
            }
            _ => {}
        }
        // After the new answers are visible and the old ones gone.
        self.served
            .service_changed(key, served, ttl, crate::served::now_ms());
        Ok(())
    }

    /// Replaces the PTR records `key` contributes, rebuilding each reverse name it touches from
    /// all its contributors.
    fn set_ptrs(&self, owners: &mut Owners, key: &ServiceKey, ptrs: Vec<(Name, Vec<u8>)>) {
        let mut mine: BTreeMap<Key, Vec<Vec<u8>>> = BTreeMap::new();
        for (name, unit) in ptrs {
            let units = mine.entry(wire_key(&name)).or_default();
            if !units.contains(&unit) {
                units.push(unit);
            }
        }
        let old = owners.ptr_owned.remove(key).unwrap_or_default();
        let touched: BTreeSet<Key> = old.into_iter().chain(mine.keys().cloned()).collect();
        if !mine.is_empty() {
            owners
                .ptr_owned
                .insert(key.clone(), mine.keys().cloned().collect());
        }
        for name in touched {
            let holders = owners.ptr_holders.entry(name.clone()).or_default();
            match mine.remove(&name) {
                Some(units) => {
                    holders.insert(key.clone(), units);
                }
                None => {
                    holders.remove(key);
                }
            }
            if holders.is_empty() {
                owners.ptr_holders.remove(&name);
                self.names.remove(&name);
                self.set_ents(owners, &name, false);
                continue;
            }
            let mut answer: Vec<(Vec<u8>, u16)> = Vec::new();
            for unit in holders.values().flatten() {
                if !answer.iter().any(|(u, _)| u == unit) {
                    answer.push((unit.clone(), 1));
                }
            }
            let entry = NameEntry::new(vec![RrsetParts {
                qtype: 12,
                answer,
                ..RrsetParts::default()
            }]);
            if !self.names.contains_key(&name) {
                self.set_ents(owners, &name, true);
            }
            self.names.insert(name, entry);
        }
    }

    /// Counts a PTR name in (or out of) the empty non-terminals between it and its reverse
    /// zone's apex, which then answer NODATA rather than NXDOMAIN (RFC 8020).
    fn set_ents(&self, owners: &mut Owners, name: &Key, add: bool) {
        let Some(zone) = self.reverse.iter().find(|z| in_zone(name, &z.key)) else {
            return;
        };
        let mut at = 1 + usize::from(name[0]);
        while at < name.len() && name[at..] != zone.key[..] {
            let ent: Key = name[at..].into();
            if add {
                *owners.shared.entry(ent.clone()).or_default() += 1;
                self.names.entry(ent).or_default();
            } else {
                let count = owners.shared.entry(ent.clone()).or_default();
                *count = count.saturating_sub(1);
                if *count == 0 {
                    owners.shared.remove(&ent);
                    self.names.remove_if(&ent, |_, e| e.is_empty());
                }
            }
            at += 1 + usize::from(name[at]);
        }
    }

    /// Services the table serves now, for full rebuilds.
    pub fn services(&self) -> Vec<ServiceKey> {
        let owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.owned.keys().cloned().collect()
    }
}
