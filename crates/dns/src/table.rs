//! The answer table: immutable zone versions, one per published change, each a complete map
//! from lower-cased wire name to prepared RRsets.
//!
//! A query loads the current version (one atomic load, no lock, no shared write) and answers
//! everything from it, serial included. One writer at a time builds the next version from the
//! current one (copy-on-write shards: only the shards a change touches are copied, unchanged
//! entries are shared), then publishes it with one atomic swap. So every answer and every zone
//! transfer sees one whole version: no name missing between the removal of an old entry and the
//! insertion of its replacement, no serial describing other content.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::{ArcSwap, Guard};
use hickory_proto::rr::Name;
use model::ServiceKey;
use registry::ServiceSnapshot;

use crate::entry::{NameEntry, RrsetParts};
use crate::prepare::{Prepared, Preparer};
use crate::served::ServeLog;
use crate::stats::QueryCounts;
use crate::version::{Draft, Hasher, Version};
use crate::xfr::{Journal, Rr, in_zone, records_of};
use crate::{DnsError, ZoneConfig};

/// Records the IXFR journal may hold; past it, the oldest steps go (secondaries that far
/// behind get a full transfer).
const JOURNAL_RECORDS: usize = 200_000;

/// Shared between versions and the owners index, so each name's bytes are held once.
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
/// names) above them: the writer's bookkeeping, never read by queries.
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
    pub(crate) negative_soa: Box<[u8]>,
    pub(crate) negative_serial_at: usize,
    /// Reverse zones, in configuration order.
    pub(crate) reverse: Vec<ReverseZone>,
    pub(crate) hasher: Hasher,
    /// The version queries and transfers read.
    current: ArcSwap<Version>,
    /// The writer's bookkeeping; held for each whole change, so writers take turns.
    owners: Mutex<Owners>,
    /// Changes by serial, for IXFR; kept only when transfers are offered. A version is
    /// published under this lock, so a transfer holding it sees a version and a journal that
    /// end at the same serial.
    pub(crate) journal: Mutex<Journal>,
    /// Which tasks the answers carry, and since when they no longer do.
    pub(crate) served: ServeLog,
    /// Queries per service, counted by the answer path.
    pub(crate) queries: QueryCounts,
}

/// One service's change, prepared, waiting to go into a draft.
struct Pending {
    key: ServiceKey,
    prepared: Result<Prepared, DnsError>,
}

impl AnswerTable {
    /// An empty zone: apex SOA and NS only.
    pub fn new(zone: ZoneConfig) -> Result<Self, DnsError> {
        let hasher = Hasher(ahash::RandomState::new());
        let first = Version::empty(zone.serial_base);
        let mut draft = Draft::of(&first, &hasher);
        let preparer = Preparer { zone: &zone };
        let (negative_soa, negative_serial_at) = preparer.negative_soa()?;
        for (name, entry) in preparer.apex()? {
            draft.insert(wire_key(&name), entry);
        }
        let mut reverse = Vec::new();
        for origin in &zone.reverse_zones {
            let mut rz = zone.clone();
            rz.origin = origin.clone();
            let preparer = Preparer { zone: &rz };
            let (soa, serial_at) = preparer.negative_soa()?;
            for (name, entry) in preparer.apex()? {
                draft.insert(wire_key(&name), entry);
            }
            reverse.push(ReverseZone {
                key: wire_key(origin),
                negative_soa: soa.into(),
                negative_serial_at: serial_at,
            });
        }
        let version = draft.finish(zone.serial_base);
        let origin_key = wire_key(&zone.origin);
        let served = ServeLog::new(zone.transfer.notify.iter().map(|a| a.ip()).collect());
        Ok(Self {
            zone,
            origin_key,
            negative_soa: negative_soa.into(),
            negative_serial_at,
            reverse,
            hasher,
            current: ArcSwap::from_pointee(version),
            owners: Mutex::new(Owners::default()),
            journal: Mutex::new(Journal::new(JOURNAL_RECORDS)),
            served,
            queries: QueryCounts::default(),
        })
    }

    /// The version to answer from: hold it for the whole answer, so every part of it (records,
    /// serial) comes from the same content.
    pub(crate) fn version(&self) -> Guard<Arc<Version>> {
        self.current.load()
    }

    pub(crate) fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The zone this table serves.
    pub fn zone(&self) -> &ZoneConfig {
        &self.zone
    }

    /// The SOA serial now.
    pub fn serial(&self) -> u32 {
        self.current.load().serial
    }

    /// The SOA serial of registry generation `generation` (RFC 1982 arithmetic: it wraps).
    fn serial_of(&self, generation: u64) -> u32 {
        self.zone.serial_base.wrapping_add(generation as u32)
    }

    /// Moves the SOA serial to follow the registry generation, with no other change.
    pub fn set_generation(&self, generation: u64) {
        self.publish(Vec::new(), Some(generation));
    }

    /// Which tasks the answers carry and since when they no longer do: the drain API's source.
    pub fn served(&self) -> &ServeLog {
        &self.served
    }

    /// Number of names held (served names and empty non-terminals).
    pub fn len(&self) -> usize {
        self.current.load().names
    }

    /// Whether only the apex is held.
    pub fn is_empty(&self) -> bool {
        self.len() <= 2
    }

    /// Replaces everything `key` serves with what `snapshot` says (`None`: the service is gone)
    /// and publishes the result at the current serial. Followers of the registry use
    /// [`AnswerTable::update`], which publishes a whole generation at once.
    pub fn set_service(
        &self,
        key: &ServiceKey,
        snapshot: Option<&ServiceSnapshot>,
    ) -> Result<(), DnsError> {
        match self.update([(key, snapshot)], None).into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// Applies changed services (`None`: gone) and, with `generation`, moves the serial to it,
    /// all in one new version published at once. Preparing (the expensive part) happens before
    /// the writer's lock is taken. Returns the services that could not be prepared: they keep
    /// what they served before.
    pub fn update<'s>(
        &self,
        changes: impl IntoIterator<Item = (&'s ServiceKey, Option<&'s ServiceSnapshot>)>,
        generation: Option<u64>,
    ) -> Vec<(ServiceKey, DnsError)> {
        let preparer = Preparer { zone: &self.zone };
        let pending: Vec<Pending> = changes
            .into_iter()
            .map(|(key, snapshot)| Pending {
                key: key.clone(),
                prepared: match snapshot {
                    Some(s) => preparer.service(s, self.queries.slot(key)),
                    None => Ok(Prepared::gone(preparer.ttl_of(key))),
                },
            })
            .collect();
        let gone: Vec<ServiceKey> = pending
            .iter()
            .filter(|p| p.prepared.as_ref().is_ok_and(|p| p.names.is_empty()))
            .map(|p| p.key.clone())
            .collect();
        let failed = self.publish(pending, generation);
        for key in gone {
            self.queries.release(&key);
        }
        failed
    }

    /// Queries so far per served service (any of its names, any type).
    pub fn query_counts(&self) -> Vec<(ServiceKey, u64)> {
        self.queries.snapshot()
    }

    /// Every service the table serves now, for full rebuilds.
    pub fn services(&self) -> Vec<ServiceKey> {
        self.owners().owned.keys().cloned().collect()
    }

    fn owners(&self) -> MutexGuard<'_, Owners> {
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(
        &self,
        pending: Vec<Pending>,
        generation: Option<u64>,
    ) -> Vec<(ServiceKey, DnsError)> {
        let mut owners = self.owners();
        let current = self.current.load_full();
        let mut draft = Draft::of(&current, &self.hasher);
        let journaling = self.transfers_enabled();
        let mut records = Vec::new();
        let mut reports = Vec::new();
        let mut failed = Vec::new();
        for Pending { key, prepared } in pending {
            let prepared =
                match prepared.and_then(|p| self.cluster_key(&key).map(|cluster| (p, cluster))) {
                    Ok(p) => p,
                    Err(e) => {
                        failed.push((key, e));
                        continue;
                    }
                };
            let (p, cluster) = prepared;
            let (old, new) =
                Self::set_service_in(&mut draft, &mut owners, &key, p.names, &cluster, journaling);
            if journaling {
                records.push((old, new));
            }
            self.set_ptrs(&mut draft, &mut owners, &key, p.ptrs);
            reports.push((key, p.served, p.ttl));
        }
        let serial = generation.map_or(current.serial, |g| self.serial_of(g));
        let version = Arc::new(draft.finish(serial));
        {
            let mut journal = self.journal();
            if journaling {
                for (old, new) in records {
                    journal.change(old, new);
                }
                if serial != current.serial {
                    journal.seal(current.serial, serial);
                }
            }
            self.current.store(version);
        }
        drop(owners);
        // After the new answers are visible and the old ones gone.
        let now = crate::served::now_ms();
        for (key, served, ttl) in reports {
            self.served.service_changed(&key, served, ttl, now);
        }
        if generation.is_some() {
            self.served.sealed(serial);
        }
        failed
    }

    fn cluster_key(&self, key: &ServiceKey) -> Result<Key, DnsError> {
        Name::from_labels([key.cluster.as_bytes()])
            .and_then(|c| c.append_name(&self.zone.origin))
            .map(|c| wire_key(&c))
            .map_err(|e| DnsError::InvalidName {
                name: key.cluster.clone(),
                reason: e.to_string(),
            })
    }

    /// Puts one service's names into the draft; returns its records before and after (for
    /// the journal, when `journaling`).
    fn set_service_in(
        draft: &mut Draft<'_>,
        owners: &mut Owners,
        key: &ServiceKey,
        entries: Vec<(Name, NameEntry)>,
        cluster: &Key,
        journaling: bool,
    ) -> (Vec<Rr>, Vec<Rr>) {
        let mut old_records = Vec::new();
        let mut new_records = Vec::new();
        if journaling {
            for k in owners.owned.get(key).into_iter().flatten() {
                if let Some(e) = draft.get(k) {
                    old_records.extend(records_of(k, e, 0));
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
            draft.insert(k, entry);
        }
        let existed = owners.owned.contains_key(key);
        let exists = !new_keys.is_empty();
        let old_keys = if exists {
            owners.owned.insert(key.clone(), new_keys.clone())
        } else {
            owners.owned.remove(key)
        };
        let keep: HashSet<&Key> = new_keys.iter().collect();
        for old in old_keys.iter().flatten().filter(|k| !keep.contains(k)) {
            draft.remove(old);
        }
        match (existed, exists) {
            (false, true) => {
                *owners.shared.entry(cluster.clone()).or_default() += 1;
                draft.ensure(cluster.clone());
            }
            (true, false) => {
                let count = owners.shared.entry(cluster.clone()).or_default();
                *count = count.saturating_sub(1);
                if *count == 0 {
                    owners.shared.remove(cluster);
                    draft.remove_if(cluster, NameEntry::is_empty);
                }
            }
            _ => {}
        }
        (old_records, new_records)
    }

    /// Replaces the PTR records `key` contributes, rebuilding each reverse name it touches from
    /// all its contributors.
    fn set_ptrs(
        &self,
        draft: &mut Draft<'_>,
        owners: &mut Owners,
        key: &ServiceKey,
        ptrs: Vec<(Name, Vec<u8>)>,
    ) {
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
                draft.remove(&name);
                self.set_ents(draft, owners, &name, false);
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
            if !draft.contains(&name) {
                self.set_ents(draft, owners, &name, true);
            }
            draft.insert(name, entry);
        }
    }

    /// Counts a PTR name in (or out of) the empty non-terminals between it and its reverse
    /// zone's apex, which then answer NODATA rather than NXDOMAIN (RFC 8020).
    fn set_ents(&self, draft: &mut Draft<'_>, owners: &mut Owners, name: &Key, add: bool) {
        let Some(zone) = self.reverse.iter().find(|z| in_zone(name, &z.key)) else {
            return;
        };
        let mut at = 1 + usize::from(name[0]);
        while at < name.len() && name[at..] != zone.key[..] {
            let ent: Key = name[at..].into();
            if add {
                *owners.shared.entry(ent.clone()).or_default() += 1;
                draft.ensure(ent);
            } else {
                let count = owners.shared.entry(ent.clone()).or_default();
                *count = count.saturating_sub(1);
                if *count == 0 {
                    owners.shared.remove(&ent);
                    draft.remove_if(&ent, NameEntry::is_empty);
                }
            }
            at += 1 + usize::from(name[at]);
        }
    }
}
