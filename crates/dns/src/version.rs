//! Zone versions: immutable, sharded maps from lower-cased wire name to prepared RRsets, and
//! the draft a writer builds the next version in.
//!
//! A draft starts as a copy of the current version's shard pointers; writing to a shard copies
//! that shard first if a published version still shares it (`Arc::make_mut`). So a change copies
//! the few shards it touches, entries themselves are shared (their bytes are reference-counted),
//! and a published version never changes under a reader.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::entry::NameEntry;
use crate::table::Key;

/// Shards of a version: a change copies only the shards it touches (a few hundred names each
/// at 100,000 endpoints), never the whole map.
const SHARDS: usize = 256;

type Shard = HashTable<(Key, NameEntry)>;

/// One immutable version of the zone (and its reverse zones): every name it serves and the SOA
/// serial that describes exactly that content.
pub(crate) struct Version {
    /// The SOA serial of this content.
    pub(crate) serial: u32,
    shards: Box<[Arc<Shard>]>,
    pub(crate) names: usize,
}

impl Version {
    pub(crate) fn empty(serial: u32) -> Self {
        Self {
            serial,
            shards: (0..SHARDS).map(|_| Arc::new(Shard::new())).collect(),
            names: 0,
        }
    }

    /// The entry at `key` (a lower-cased wire name).
    pub(crate) fn get(&self, hasher: &Hasher, key: &[u8]) -> Option<&NameEntry> {
        let h = hasher.hash(key);
        self.shards[hasher.shard(h)]
            .find(h, |(k, _)| k[..] == *key)
            .map(|(_, e)| e)
    }

    /// Every name and its entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Key, &NameEntry)> {
        self.shards
            .iter()
            .flat_map(|s| s.iter().map(|(k, e)| (k, e)))
    }
}

/// The one hash of a name: its shard and its place inside the shard both come from it.
pub(crate) struct Hasher(pub(crate) ahash::RandomState);

impl Hasher {
    fn hash(&self, key: &[u8]) -> u64 {
        self.0.hash_one(key)
    }

    /// Middle bits: the shard's own table uses the low bits (bucket) and the top 7 (tag).
    fn shard(&self, hash: u64) -> usize {
        (hash >> 32) as usize % SHARDS
    }
}

/// The next version while one writer builds it.
pub(crate) struct Draft<'a> {
    hasher: &'a Hasher,
    shards: Vec<Arc<Shard>>,
    names: usize,
}

impl<'a> Draft<'a> {
    pub(crate) fn of(version: &Version, hasher: &'a Hasher) -> Self {
        Self {
            hasher,
            shards: version.shards.to_vec(),
            names: version.names,
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&NameEntry> {
        let h = self.hasher.hash(key);
        self.shards[self.hasher.shard(h)]
            .find(h, |(k, _)| k[..] == *key)
            .map(|(_, e)| e)
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The shard of `hash`, copied first if an earlier version still shares it.
    fn shard_mut(&mut self, hash: u64) -> &mut Shard {
        Arc::make_mut(&mut self.shards[self.hasher.shard(hash)])
    }

    pub(crate) fn insert(&mut self, key: Key, entry: NameEntry) {
        let h = self.hasher.hash(&key);
        let hasher = self.hasher;
        let shard = self.shard_mut(h);
        match shard.find_mut(h, |(k, _)| *k == key) {
            Some(slot) => slot.1 = entry,
            None => {
                shard.insert_unique(h, (key, entry), |(k, _)| hasher.hash(k));
                self.names += 1;
            }
        }
    }

    /// Inserts an empty entry (an empty non-terminal) unless the name exists.
    pub(crate) fn ensure(&mut self, key: Key) {
        if !self.contains(&key) {
            self.insert(key, NameEntry::default());
        }
    }

    /// Removes `key` when `keep` says no to its entry.
    pub(crate) fn remove_if(&mut self, key: &[u8], remove: impl Fn(&NameEntry) -> bool) {
        let h = self.hasher.hash(key);
        if !self.get(key).is_some_and(&remove) {
            return;
        }
        let shard = self.shard_mut(h);
        if let Ok(found) = shard.find_entry(h, |(k, _)| k[..] == *key) {
            found.remove();
            self.names -= 1;
        }
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.remove_if(key, |_| true);
    }

    pub(crate) fn finish(self, serial: u32) -> Version {
        Version {
            serial,
            shards: self.shards.into_boxed_slice(),
            names: self.names,
        }
    }
}
