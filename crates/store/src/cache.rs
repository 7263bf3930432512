//! A size-bounded in-memory cache for index data (postings lists and series entries), shared
//! by all blocks, as Thanos's in-memory index cache (`--index-cache-size`). Eviction is
//! first-in-first-out: cheap, and good enough for index data whose hot set is the postings of
//! frequently queried label pairs.
//!
//! The bound counts what an entry really costs, not only its bytes. Series entries are a few
//! dozen bytes each, so they are not stored one allocation each: the entries a read puts in
//! the cache are copied together into a shared slab and indexed per block by series reference
//! (12 bytes a slot), and evicted together; one entry costs its bytes plus about 20.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

/// Per-entry bookkeeping beyond the value's bytes: the map slot (key, value pointer, control
/// byte, load factor), the eviction queue slot and the value allocation's header and rounding.
const ENTRY_OVERHEAD: usize = 128;
/// Per series entry beyond its bytes: its slot in the block's map (reference, place; control
/// byte, load factor) and its reference in the group's list.
const SERIES_ENTRY_OVERHEAD: usize = 24;
/// Per group of series entries: the group's descriptor and eviction queue slot.
const SERIES_GROUP_OVERHEAD: usize = 96;
/// Size of the slabs series entries are copied into.
const SERIES_SLAB: usize = 256 << 10;

/// A block as a cache key: its ULID as two words, so that series keys stay small (a `u128`
/// would force 16-byte alignment and padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BlockKey(u64, u64);

impl From<ulid::Ulid> for BlockKey {
    fn from(id: ulid::Ulid) -> Self {
        BlockKey((id.0 >> 64) as u64, id.0 as u64)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PostingsKey {
    block: BlockKey,
    name: Box<str>,
    value: Box<str>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Slot {
    /// Postings list of `name=value` in a block.
    Postings(Arc<PostingsKey>),
    /// A group of series entries of a block, stored together (see [`SeriesGroup`]).
    Series { block: BlockKey, group: u64 },
}

impl Slot {
    fn block(&self) -> BlockKey {
        match self {
            Slot::Postings(k) => k.block,
            Slot::Series { block, .. } => *block,
        }
    }

    fn weight(&self, value_len: usize) -> usize {
        let key = match self {
            Slot::Postings(k) => 16 + k.name.len() + k.value.len(),
            // Groups are weighed by `group_weight`.
            Slot::Series { .. } => 0,
        };
        ENTRY_OVERHEAD + key + value_len
    }
}

/// Cached bytes by key, bounded by the estimated memory of keys, values and bookkeeping.
#[derive(Debug)]
pub struct IndexCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

/// A multiply-rotate hasher (as rustc's FxHash): several times cheaper than SipHash for the
/// small keys here, which come from block indexes rather than from clients, so no flooding
/// protection is needed.
#[derive(Default)]
struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]));
        }
        let mut tail = [0u8; 8];
        let rest = words.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 56));
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Series entries (raw bytes, length prefix and CRC included) put in the cache together: one
/// slice of a slab, and the references they are stored under.
#[derive(Debug)]
struct SeriesGroup {
    data: Bytes,
    refs: Vec<u32>,
}

/// Where a cached series entry is: its group, and its offset and length in the group's data.
#[derive(Clone, Copy, Debug)]
struct SeriesPlace {
    group: u64,
    offset: u32,
    len: u32,
}

#[derive(Debug, Default)]
struct Inner {
    /// Postings lists.
    map: FxMap<Slot, Arc<[u8]>>,
    /// Postings and series groups in the order they were added (first out first).
    order: VecDeque<Slot>,
    bytes: usize,
    groups: FxMap<u64, SeriesGroup>,
    series: FxMap<BlockKey, FxMap<u32, SeriesPlace>>,
    next_group: u64,
    slab: BytesMut,
}

impl Inner {
    /// Frees the oldest item (postings list or series group); false when there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some(old) = self.order.pop_front() else {
            return false;
        };
        match &old {
            Slot::Postings(_) => {
                if let Some(v) = self.map.remove(&old) {
                    self.bytes = self.bytes.saturating_sub(old.weight(v.len()));
                }
            }
            Slot::Series { block, group } => {
                if let Some(g) = self.groups.remove(group) {
                    self.bytes = self.bytes.saturating_sub(group_weight(&g));
                    if let Some(places) = self.series.get_mut(block) {
                        for r in &g.refs {
                            if places.get(r).is_some_and(|p| p.group == *group) {
                                places.remove(r);
                            }
                        }
                    }
                }
            }
        }
        true
    }
}

fn group_weight(g: &SeriesGroup) -> usize {
    SERIES_GROUP_OVERHEAD + g.data.len() + g.refs.len() * SERIES_ENTRY_OVERHEAD
}

impl IndexCache {
    pub fn new(max_bytes: usize) -> Self {
        IndexCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn postings_slot(block: ulid::Ulid, name: &str, value: &str) -> Slot {
        Slot::Postings(Arc::new(PostingsKey {
            block: block.into(),
            name: name.into(),
            value: value.into(),
        }))
    }

    pub fn get_postings(&self, block: ulid::Ulid, name: &str, value: &str) -> Option<Arc<[u8]>> {
        self.get(&Self::postings_slot(block, name, value))
    }

    pub fn put_postings(&self, block: ulid::Ulid, name: &str, value: &str, bytes: &[u8]) {
        self.put(Self::postings_slot(block, name, value), bytes);
    }

    pub fn get_series(&self, block: ulid::Ulid, series_ref: u32) -> Option<Bytes> {
        self.get_many_series(block, &[series_ref]).pop().flatten()
    }

    pub fn put_series(&self, block: ulid::Ulid, series_ref: u32, bytes: &[u8]) {
        self.put_many_series(block, &[(series_ref, Bytes::copy_from_slice(bytes))]);
    }

    /// Series entries of several references of a block, under one lock.
    pub fn get_many_series(&self, block: ulid::Ulid, refs: &[u32]) -> Vec<Option<Bytes>> {
        let block = BlockKey::from(block);
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(places) = inner.series.get(&block) else {
            return vec![None; refs.len()];
        };
        refs.iter()
            .map(|r| {
                let p = places.get(r)?;
                let data = &inner.groups.get(&p.group)?.data;
                let (from, to) = (p.offset as usize, p.offset as usize + p.len as usize);
                (to <= data.len()).then(|| data.slice(from..to))
            })
            .collect()
    }

    /// Stores several series entries of a block, under one lock, copied together into one
    /// slice of a slab (so that they neither pin larger fetched buffers nor cost an allocation
    /// each). Entries already cached are skipped.
    pub fn put_many_series(&self, block: ulid::Ulid, entries: &[(u32, Bytes)]) {
        let block = BlockKey::from(block);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let known = inner.series.get(&block);
        let fresh: Vec<&(u32, Bytes)> = entries
            .iter()
            .filter(|(r, v)| known.is_none_or(|m| !m.contains_key(r)) && u32::try_from(v.len()).is_ok())
            .collect();
        let len: usize = fresh.iter().map(|(_, v)| v.len()).sum();
        if fresh.is_empty() || u32::try_from(len).is_err() {
            return;
        }
        let weight = SERIES_GROUP_OVERHEAD + len + fresh.len() * SERIES_ENTRY_OVERHEAD;
        if weight > self.max_bytes / 10 {
            return;
        }
        while inner.bytes + weight > self.max_bytes && inner.evict_oldest() {}
        if inner.slab.capacity() - inner.slab.len() < len {
            inner.slab = BytesMut::with_capacity(SERIES_SLAB.max(len));
        }
        let group = inner.next_group;
        inner.next_group += 1;
        let mut refs = Vec::with_capacity(fresh.len());
        let mut places = Vec::with_capacity(fresh.len());
        for (r, v) in fresh {
            let offset = inner.slab.len() as u32;
            inner.slab.extend_from_slice(v);
            refs.push(*r);
            places.push((
                *r,
                SeriesPlace {
                    group,
                    offset,
                    len: v.len() as u32,
                },
            ));
        }
        let data = inner.slab.split().freeze();
        inner.series.entry(block).or_default().extend(places);
        inner.bytes += weight;
        inner.groups.insert(group, SeriesGroup { data, refs });
        inner.order.push_back(Slot::Series { block, group });
    }

    fn get(&self, key: &Slot) -> Option<Arc<[u8]>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.get(key).cloned()
    }

    fn put(&self, key: Slot, value: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        self.put_locked(&mut inner, key, value);
    }

    /// Stores a copy of `value` (so that it does not pin a larger fetched buffer). Items larger
    /// than a tenth of the cache are not cached.
    fn put_locked(&self, inner: &mut Inner, key: Slot, value: &[u8]) {
        let weight = key.weight(value.len());
        if weight > self.max_bytes / 10 {
            return;
        }
        if inner.map.contains_key(&key) {
            return;
        }
        while inner.bytes + weight > self.max_bytes && inner.evict_oldest() {}
        inner.bytes += weight;
        inner.order.push_back(key.clone());
        inner.map.insert(key, Arc::from(value));
    }

    /// Drops every entry of a block (when it is unloaded).
    pub fn remove_block(&self, id: ulid::Ulid) {
        let id = BlockKey::from(id);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut freed = 0;
        inner.map.retain(|k, v| {
            let keep = k.block() != id;
            if !keep {
                freed += k.weight(v.len());
            }
            keep
        });
        let groups: Vec<u64> = inner
            .order
            .iter()
            .filter_map(|k| match k {
                Slot::Series { block, group } if *block == id => Some(*group),
                _ => None,
            })
            .collect();
        for g in groups {
            if let Some(g) = inner.groups.remove(&g) {
                freed += group_weight(&g);
            }
        }
        inner.series.remove(&id);
        inner.order.retain(|k| k.block() != id);
        inner.bytes = inner.bytes.saturating_sub(freed);
        if inner.order.is_empty() {
            // Give the tables' memory back rather than keeping them at their high-water mark.
            inner.map = HashMap::default();
            inner.order = VecDeque::new();
            inner.groups = HashMap::default();
            inner.series = HashMap::default();
            inner.slab = BytesMut::new();
        }
    }

    pub fn used_bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    /// Cached postings lists and series entries.
    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.len() + inner.series.values().map(HashMap::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_bound() {
        let cache = IndexCache::new(100_000);
        let id = ulid::Ulid::nil();
        for i in 0..1000u32 {
            cache.put_series(id, i, &[0u8; 100]);
            assert!(cache.used_bytes() <= 100_000);
        }
        assert!(cache.get_series(id, 999).is_some());
        assert!(cache.get_series(id, 0).is_none());
        cache.put_postings(id, "job", "a", &[1, 2, 3]);
        assert_eq!(cache.get_postings(id, "job", "a").as_deref(), Some(&[1u8, 2, 3][..]));
        assert!(cache.get_postings(id, "job", "b").is_none());
        let other = ulid::Ulid::from_parts(1, 1);
        cache.put_series(other, 7, &[9]);
        cache.remove_block(id);
        assert_eq!(cache.len(), 1);
        assert!(cache.get_series(other, 7).is_some());
        cache.remove_block(other);
        assert_eq!(cache.used_bytes(), 0);
        assert!(cache.is_empty());
    }

    #[test]
    fn counts_bookkeeping_not_only_bytes() {
        let cache = IndexCache::new(10 * ENTRY_OVERHEAD);
        let id = ulid::Ulid::nil();
        for i in 0..100u32 {
            cache.put_series(id, i, &[0u8; 4]);
        }
        assert!(
            cache.len() <= 10,
            "{} tiny entries in a cache of 10 overheads",
            cache.len()
        );
    }

    #[test]
    fn series_groups_are_evicted_whole_and_skip_known_entries() {
        let cache = IndexCache::new(10_000);
        let id = ulid::Ulid::nil();
        let entry = |i: u32| (i, Bytes::from(vec![i as u8; 50]));
        let group = |g: u32| (g * 10..g * 10 + 10).map(entry).collect::<Vec<_>>();
        cache.put_many_series(id, &group(0));
        // Known entries are not stored again.
        let before = cache.used_bytes();
        cache.put_many_series(id, &group(0));
        assert_eq!(cache.used_bytes(), before);
        assert_eq!(cache.get_series(id, 7).as_deref(), Some(&[7u8; 50][..]));
        // Filling the cache evicts the first group whole.
        for g in 1..15 {
            cache.put_many_series(id, &group(g));
            assert!(cache.used_bytes() <= 10_000);
        }
        let got = cache.get_many_series(id, &[0, 9, 140, 149]);
        assert!(got[0].is_none() && got[1].is_none(), "first group evicted");
        assert_eq!(got[3].as_deref(), Some(&[149u8; 50][..]));
        let all: Vec<u32> = (0..150).collect();
        assert_eq!(cache.len(), cache.get_many_series(id, &all).iter().flatten().count());
        cache.remove_block(id);
        assert!(cache.is_empty());
        assert_eq!(cache.used_bytes(), 0);
    }
}
