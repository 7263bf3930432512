//! A size-bounded in-memory cache for index data (postings lists and series entries), shared
//! by all blocks. Eviction is first-in-first-out: cheap, and good enough for index data whose
//! hot set is the postings of frequently queried label pairs.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use bytes::Bytes;

/// Which index item a cache entry holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexKey {
    /// Postings list of `name=value` in a block.
    Postings {
        block: ulid::Ulid,
        name: String,
        value: String,
    },
    /// Series entry (raw bytes, length prefix and CRC included) of a reference in a block.
    Series { block: ulid::Ulid, series_ref: u32 },
}

impl IndexKey {
    fn weight(&self) -> usize {
        match self {
            IndexKey::Postings { name, value, .. } => 64 + name.len() + value.len(),
            IndexKey::Series { .. } => 48,
        }
    }
}

/// Cached bytes by key, bounded by the total of key and value sizes.
#[derive(Debug)]
pub struct IndexCache {
    max_bytes: usize,
    inner: Mutex<Inner<IndexKey>>,
}

#[derive(Debug)]
struct Inner<K> {
    map: HashMap<K, Bytes>,
    order: VecDeque<K>,
    bytes: usize,
}

impl IndexCache {
    pub fn new(max_bytes: usize) -> Self {
        IndexCache {
            max_bytes,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    pub fn get(&self, key: &IndexKey) -> Option<Bytes> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.get(key).cloned()
    }

    /// Stores a copy of `value` (so that it does not pin a larger fetched buffer). Items larger
    /// than a tenth of the cache are not cached.
    pub fn put(&self, key: IndexKey, value: &[u8]) {
        let weight = key.weight() + value.len();
        if weight > self.max_bytes / 10 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.map.contains_key(&key) {
            return;
        }
        while inner.bytes + weight > self.max_bytes {
            let Some(old) = inner.order.pop_front() else { break };
            if let Some(v) = inner.map.remove(&old) {
                inner.bytes = inner.bytes.saturating_sub(old.weight() + v.len());
            }
        }
        inner.bytes += weight;
        inner.order.push_back(key.clone());
        inner.map.insert(key, Bytes::copy_from_slice(value));
    }

    /// Drops every entry of a block (when it is unloaded).
    pub fn remove_block(&self, id: ulid::Ulid) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let of_block = |k: &IndexKey| match k {
            IndexKey::Postings { block, .. } | IndexKey::Series { block, .. } => *block == id,
        };
        let mut freed = 0;
        inner.map.retain(|k, v| {
            let keep = !of_block(k);
            if !keep {
                freed += k.weight() + v.len();
            }
            keep
        });
        inner.order.retain(|k| !of_block(k));
        inner.bytes = inner.bytes.saturating_sub(freed);
    }

    pub fn used_bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_bound() {
        let cache = IndexCache::new(10_000);
        let id = ulid::Ulid::nil();
        for i in 0..1000u32 {
            cache.put(
                IndexKey::Series {
                    block: id,
                    series_ref: i,
                },
                &[0u8; 100],
            );
            assert!(cache.used_bytes() <= 10_000);
        }
        assert!(
            cache
                .get(&IndexKey::Series {
                    block: id,
                    series_ref: 999
                })
                .is_some()
        );
        assert!(
            cache
                .get(&IndexKey::Series {
                    block: id,
                    series_ref: 0
                })
                .is_none()
        );
        cache.remove_block(id);
        assert_eq!(cache.used_bytes(), 0);
    }
}
