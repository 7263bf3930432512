//! A size-bounded in-memory cache for index data (postings lists and series entries), shared
//! by all blocks, as Thanos's in-memory index cache (`--index-cache-size`). Eviction is
//! first-in-first-out: cheap, and good enough for index data whose hot set is the postings of
//! frequently queried label pairs.
//!
//! The bound counts what an entry really costs, not only its bytes: a series entry is a few
//! dozen bytes while its slot in the map, its place in the eviction queue and its allocation
//! take about as much again, so counting the value alone would let the cache grow to several
//! times its configured size.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

/// Per-entry bookkeeping beyond the value's bytes: the map slot (key, value pointer, control
/// byte, load factor), the eviction queue slot and the value allocation's header and rounding.
const ENTRY_OVERHEAD: usize = 128;

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
    /// Series entry (raw bytes, length prefix and CRC included) of a reference in a block.
    Series { block: BlockKey, series_ref: u32 },
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

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Slot, Arc<[u8]>, BuildHasherDefault<FxHasher>>,
    order: VecDeque<Slot>,
    bytes: usize,
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

    pub fn get_series(&self, block: ulid::Ulid, series_ref: u32) -> Option<Arc<[u8]>> {
        self.get(&Slot::Series {
            block: block.into(),
            series_ref,
        })
    }

    pub fn put_series(&self, block: ulid::Ulid, series_ref: u32, bytes: &[u8]) {
        self.put(
            Slot::Series {
                block: block.into(),
                series_ref,
            },
            bytes,
        );
    }

    /// Series entries of several references of a block, under one lock.
    pub fn get_many_series(&self, block: ulid::Ulid, refs: &[u32]) -> Vec<Option<Arc<[u8]>>> {
        let block = BlockKey::from(block);
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        refs.iter()
            .map(|&series_ref| inner.map.get(&Slot::Series { block, series_ref }).cloned())
            .collect()
    }

    /// Stores several series entries of a block, under one lock.
    pub fn put_many_series(&self, block: ulid::Ulid, entries: &[(u32, bytes::Bytes)]) {
        let block = BlockKey::from(block);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (series_ref, value) in entries {
            self.put_locked(
                &mut inner,
                Slot::Series {
                    block,
                    series_ref: *series_ref,
                },
                value,
            );
        }
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
        while inner.bytes + weight > self.max_bytes {
            let Some(old) = inner.order.pop_front() else { break };
            if let Some(v) = inner.map.remove(&old) {
                inner.bytes = inner.bytes.saturating_sub(old.weight(v.len()));
            }
        }
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
        inner.order.retain(|k| k.block() != id);
        inner.bytes = inner.bytes.saturating_sub(freed);
        if inner.map.is_empty() {
            // Give the tables' memory back rather than keeping them at their high-water mark.
            inner.map = HashMap::default();
            inner.order = VecDeque::new();
        }
    }

    pub fn used_bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).map.len()
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
            cache.len() < 10,
            "{} tiny entries in a cache of 10 overheads",
            cache.len()
        );
    }
}
