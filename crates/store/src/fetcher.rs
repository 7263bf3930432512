//! Which blocks of the bucket to serve: Thanos's meta fetcher and its filters
//! (`pkg/block/fetcher.go`). A block is a top-level directory named by a ULID whose
//! `meta.json` exists (no `meta.json` = partial upload, ignored); then, in Thanos's order:
//! time partition (`--min-time`/`--max-time`), consistency delay, deletion marks older than
//! `--ignore-deletion-marks-delay`, and blocks whose sources another block of the same
//! group already covers (compacted).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use hypnos_objstore::{Bucket, BucketError};
use hypnos_tsdb::BlockMeta;
use serde::Deserialize;

use crate::timeutil::{TimeOrDuration, now_millis, parse_rfc3339_millis};

/// Meta downloads in flight (Thanos's `--block-meta-fetch-concurrency` default).
const META_FETCH_CONCURRENCY: usize = 32;

/// States a block can end a sync in, named like Thanos's `thanos_blocks_meta_synced{state}`.
pub mod state {
    pub const LOADED: &str = "loaded";
    pub const PARTIAL: &str = "no-meta-json";
    pub const CORRUPTED_META: &str = "corrupted-meta-json";
    pub const TIME_EXCLUDED: &str = "time-excluded";
    pub const TOO_FRESH: &str = "too-fresh";
    pub const MARKED_FOR_DELETION: &str = "marked-for-deletion";
    pub const DUPLICATE: &str = "duplicate";
    pub const ALL: [&str; 7] = [
        LOADED,
        PARTIAL,
        CORRUPTED_META,
        TIME_EXCLUDED,
        TOO_FRESH,
        MARKED_FOR_DELETION,
        DUPLICATE,
    ];
}

#[derive(Debug, Clone)]
pub struct FetcherConfig {
    pub min_time: TimeOrDuration,
    pub max_time: TimeOrDuration,
    pub consistency_delay: Duration,
    pub ignore_deletion_marks_delay: Duration,
}

/// The result of one sync of the bucket's metas.
#[derive(Debug, Default)]
pub struct SyncedMetas {
    pub metas: BTreeMap<ulid::Ulid, BlockMeta>,
    /// Blocks per state (see [`state`]).
    pub states: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Deserialize)]
struct DeletionMark {
    #[serde(default)]
    deletion_time: i64,
}

#[derive(Debug)]
pub struct MetaFetcher {
    bucket: Arc<dyn Bucket>,
    cfg: FetcherConfig,
    /// meta.json files never change once uploaded: fetched once, then only checked for existence.
    cache: Mutex<HashMap<ulid::Ulid, BlockMeta>>,
}

enum Fetched {
    Meta(Box<BlockMeta>),
    Partial,
    Corrupt(String),
}

impl MetaFetcher {
    pub fn new(bucket: Arc<dyn Bucket>, cfg: FetcherConfig) -> Self {
        MetaFetcher {
            bucket,
            cfg,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Lists the block directories of the bucket (top-level names that parse as ULIDs).
    pub async fn block_ids(bucket: &dyn Bucket) -> Result<Vec<ulid::Ulid>, BucketError> {
        let mut ids: Vec<ulid::Ulid> = bucket
            .iter("", false)
            .await?
            .into_iter()
            .filter_map(|e| e.strip_suffix('/').and_then(|d| d.parse::<ulid::Ulid>().ok()))
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn fetch_one(&self, id: ulid::Ulid) -> Result<Fetched, BucketError> {
        let key = format!("{id}/meta.json");
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
        if let Some(meta) = cached {
            return Ok(if self.bucket.exists(&key).await? {
                Fetched::Meta(Box::new(meta))
            } else {
                Fetched::Partial
            });
        }
        let bytes = match self.bucket.get(&key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(Fetched::Partial),
            Err(e) => return Err(e),
        };
        let meta = match BlockMeta::from_json(&bytes, Path::new(&key)) {
            Ok(m) => m,
            Err(e) => return Ok(Fetched::Corrupt(e.to_string())),
        };
        if meta.ulid.parse::<ulid::Ulid>().ok() != Some(id) {
            return Ok(Fetched::Corrupt(format!(
                "{key}: ulid {:?} does not match the directory name",
                meta.ulid
            )));
        }
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, meta.clone());
        Ok(Fetched::Meta(Box::new(meta)))
    }

    /// One pass over the bucket. Errors (listing, reading) fail the whole sync, as in Thanos.
    pub async fn fetch(&self) -> Result<SyncedMetas, BucketError> {
        let ids = Self::block_ids(self.bucket.as_ref()).await?;
        let fetched: Vec<(ulid::Ulid, Fetched)> = futures::stream::iter(ids)
            .map(|id| async move { self.fetch_one(id).await.map(|f| (id, f)) })
            .buffer_unordered(META_FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut out = SyncedMetas::default();
        for (id, f) in fetched {
            match f {
                Fetched::Meta(m) => {
                    out.metas.insert(id, *m);
                }
                Fetched::Partial => {
                    self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    bump(&mut out.states, state::PARTIAL);
                }
                Fetched::Corrupt(reason) => {
                    tracing::warn!(block = %id, %reason, "ignoring block with unreadable meta.json");
                    bump(&mut out.states, state::CORRUPTED_META);
                }
            }
        }
        let now = now_millis();
        // Time partition.
        let (mint, maxt) = (self.cfg.min_time.resolve(now), self.cfg.max_time.resolve(now));
        out.metas.retain(|_, m| {
            let keep = m.max_time >= mint && m.min_time <= maxt;
            if !keep {
                bump(&mut out.states, state::TIME_EXCLUDED);
            }
            keep
        });
        // Consistency delay: blocks uploaded too recently may still be changing (eventually
        // consistent listings); blocks written by the compactor or repairs are exempt.
        let delay = self.cfg.consistency_delay.as_millis() as i64;
        if delay > 0 {
            out.metas.retain(|id, m| {
                let thanos = m.thanos.clone().unwrap_or_default();
                if matches!(
                    thanos.source.as_str(),
                    "compactor" | "compactor.repair" | "bucket.repair"
                ) {
                    return true;
                }
                let uploaded = thanos
                    .upload_time
                    .as_deref()
                    .and_then(|t| parse_rfc3339_millis(t).ok())
                    .filter(|&t| t > 0)
                    .unwrap_or(id.timestamp_ms() as i64);
                let keep = now - uploaded >= delay;
                if !keep {
                    bump(&mut out.states, state::TOO_FRESH);
                }
                keep
            });
        }
        // Deletion marks.
        let ids: Vec<ulid::Ulid> = out.metas.keys().copied().collect();
        let marks: Vec<(ulid::Ulid, Option<i64>)> = futures::stream::iter(ids)
            .map(|id| async move {
                let key = format!("{id}/deletion-mark.json");
                match self.bucket.get(&key).await {
                    Ok(b) => match serde_json::from_slice::<DeletionMark>(&b) {
                        Ok(m) => Ok((id, Some(m.deletion_time))),
                        Err(e) => {
                            tracing::warn!(block = %id, err = %e, "ignoring unreadable deletion-mark.json");
                            Ok((id, None))
                        }
                    },
                    Err(e) if e.is_not_found() => Ok((id, None)),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(META_FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let delay_s = self.cfg.ignore_deletion_marks_delay.as_secs() as i64;
        for (id, mark) in marks {
            if let Some(deleted_at) = mark
                && now / 1000 - deleted_at >= delay_s
            {
                out.metas.remove(&id);
                bump(&mut out.states, state::MARKED_FOR_DELETION);
            }
        }
        // Blocks whose sources are covered by another block of the same group.
        for id in duplicates(&out.metas) {
            out.metas.remove(&id);
            bump(&mut out.states, state::DUPLICATE);
        }
        out.states.insert(state::LOADED, out.metas.len());
        Ok(out)
    }
}

fn bump(states: &mut BTreeMap<&'static str, usize>, s: &'static str) {
    *states.entry(s).or_default() += 1;
}

/// Blocks whose `compaction.sources` are a subset of another block's in the same group
/// (resolution and external labels). Of blocks with identical sources the newest ULID stays.
pub fn duplicates(metas: &BTreeMap<ulid::Ulid, BlockMeta>) -> Vec<ulid::Ulid> {
    type GroupKey = (i64, Vec<(String, String)>);
    let mut groups: BTreeMap<GroupKey, Vec<(ulid::Ulid, BTreeSet<&str>)>> = BTreeMap::new();
    for (id, m) in metas {
        let thanos = m.thanos.clone().unwrap_or_default();
        let key = (thanos.downsample.resolution, thanos.labels.into_iter().collect());
        let mut sources: BTreeSet<&str> = m.compaction.sources.iter().map(String::as_str).collect();
        if sources.is_empty() {
            sources.insert(m.ulid.as_str());
        }
        groups.entry(key).or_default().push((*id, sources));
    }
    let mut out = Vec::new();
    for blocks in groups.values() {
        for (id, sources) in blocks {
            let covered = blocks.iter().any(|(other, other_sources)| {
                other != id && sources.is_subset(other_sources) && (sources.len() < other_sources.len() || other > id)
            });
            if covered {
                out.push(*id);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypnos_tsdb::meta::BlockCompaction;

    fn meta(id: ulid::Ulid, sources: &[ulid::Ulid]) -> BlockMeta {
        BlockMeta {
            ulid: id.to_string(),
            version: 1,
            compaction: BlockCompaction {
                level: if sources.len() > 1 { 2 } else { 1 },
                sources: sources.iter().map(ToString::to_string).collect(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn compacted_block_hides_its_sources() {
        let (a, b, c) = (
            ulid::Ulid::from_parts(1, 1),
            ulid::Ulid::from_parts(2, 2),
            ulid::Ulid::from_parts(3, 3),
        );
        let mut metas = BTreeMap::new();
        metas.insert(a, meta(a, &[a]));
        metas.insert(b, meta(b, &[b]));
        metas.insert(c, meta(c, &[a, b]));
        let mut d = duplicates(&metas);
        d.sort();
        assert_eq!(d, vec![a, b]);
    }
}
