//! Queries per service: one relaxed counter per served service, bumped by the answer path for
//! any query that lands on one of the service's names (its A/AAAA/SRV names, port names, task
//! names), read by the dashboard's sparklines (`GET /v1/overview`).
//!
//! The query path stays one hash lookup: a service's names carry its counter slot in their
//! packed entry ([`crate::entry::NameEntry::slot`]), so counting is an index and a relaxed add
//! into the counting thread's own shard (as [`crate::DnsMetrics`] does): UDP workers on
//! different cores never write the same cache line. Reads sum the shards.
//! Slots are given out by the table's one writer when it prepares a service and taken back when
//! the service goes; a slot given out again starts from zero (readers see a reset, as with any
//! counter after a restart).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use model::ServiceKey;

/// Counters per chunk; a thread's chunks are allocated as it counts services.
const CHUNK: usize = 1024;
/// Chunks at most: 262,144 services, far past ECS's own limits.
const CHUNKS: usize = 256;
/// Shards: [`crate::metrics::shard_index`]'s range.
const SHARDS: usize = crate::metrics::SHARDS;

/// Which slot each service holds.
#[derive(Debug, Default)]
struct Slots {
    by_key: HashMap<ServiceKey, u32>,
    free: Vec<u32>,
    next: u32,
}

/// One shard's counters: chunks allocated on first use.
type Chunks = Box<[OnceLock<Box<[AtomicU64]>>]>;

/// Query counters, one per served service and counting thread.
#[derive(Debug)]
pub struct QueryCounts {
    slots: Mutex<Slots>,
    /// Per shard, its chunks of counters.
    shards: Box<[Chunks]>,
}

impl Default for QueryCounts {
    fn default() -> Self {
        Self {
            slots: Mutex::default(),
            shards: (0..SHARDS)
                .map(|_| (0..CHUNKS).map(|_| OnceLock::new()).collect())
                .collect(),
        }
    }
}

impl QueryCounts {
    fn counter(&self, shard: usize, slot: u32) -> Option<&AtomicU64> {
        let slot = slot as usize;
        let chunk = self.shards.get(shard)?.get(slot / CHUNK)?.get()?;
        chunk.get(slot % CHUNK)
    }

    /// Counts one query at `slot` (the answer path), in this thread's shard.
    #[inline]
    pub(crate) fn count(&self, slot: u32) {
        let slot = slot as usize;
        let Some(cell) = self
            .shards
            .get(crate::metrics::shard_index())
            .and_then(|chunks| chunks.get(slot / CHUNK))
        else {
            return;
        };
        let chunk = cell.get_or_init(|| (0..CHUNK).map(|_| AtomicU64::new(0)).collect());
        if let Some(c) = chunk.get(slot % CHUNK) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The sum over every shard of `slot`'s counters.
    fn total(&self, slot: u32) -> u64 {
        (0..SHARDS)
            .filter_map(|shard| self.counter(shard, slot))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The slot of `key`, given out on first use; `None` past the last chunk.
    pub(crate) fn slot(&self, key: &ServiceKey) -> Option<u32> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = slots.by_key.get(key) {
            return Some(*s);
        }
        let slot = match slots.free.pop() {
            Some(s) => s,
            None if (slots.next as usize) < CHUNK * CHUNKS => {
                slots.next += 1;
                slots.next - 1
            }
            None => return None,
        };
        for shard in 0..SHARDS {
            if let Some(c) = self.counter(shard, slot) {
                c.store(0, Ordering::Relaxed);
            }
        }
        slots.by_key.insert(key.clone(), slot);
        Some(slot)
    }

    /// Takes back `key`'s slot (the service is gone).
    pub(crate) fn release(&self, key: &ServiceKey) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = slots.by_key.remove(key) {
            slots.free.push(s);
        }
    }

    /// Queries so far per served service.
    pub fn snapshot(&self) -> Vec<(ServiceKey, u64)> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .by_key
            .iter()
            .map(|(k, s)| (k.clone(), self.total(*s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_and_are_reused_from_zero() {
        let counts = QueryCounts::default();
        let key = |n: &str| ServiceKey {
            cluster: "c".into(),
            name: n.into(),
        };
        let web = counts.slot(&key("web")).unwrap();
        assert_eq!(counts.slot(&key("web")), Some(web), "stable");
        let api = counts.slot(&key("api")).unwrap();
        assert_ne!(web, api);
        counts.count(web);
        counts.count(web);
        counts.count(api);
        let mut snap = counts.snapshot();
        snap.sort();
        assert_eq!(snap, [(key("api"), 1), (key("web"), 2)]);
        counts.release(&key("web"));
        let db = counts.slot(&key("db")).unwrap();
        assert_eq!(db, web, "the freed slot is given out again");
        let mut snap = counts.snapshot();
        snap.sort();
        assert_eq!(snap, [(key("api"), 1), (key("db"), 0)], "from zero");
        counts.count(u32::MAX);
        // Counts from several threads (shards) add up.
        let api = counts.slot(&key("api")).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..1000).for_each(|_| counts.count(api)));
            }
        });
        let total = counts
            .snapshot()
            .into_iter()
            .find(|(k, _)| *k == key("api"));
        assert_eq!(total, Some((key("api"), 4001)));
    }
}
