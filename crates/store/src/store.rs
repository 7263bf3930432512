//! The bucket store: the set of loaded blocks, kept in step with the bucket by [`BucketStore::sync`],
//! and the StoreAPI over them.
//!
//! A `Series` call opens one cursor per block overlapping the time range whose external
//! labels pass the matchers (several blocks at a time): postings intersected, then series
//! entries read a window at a time (see [`crate::select`]). The cursors are merged in label
//! order (external labels added, replica labels removed), so output is sorted and a series
//! spread over several blocks is sent once. Series are sent in batches, each batch's chunks
//! read with coalesced ranged reads (blocks concurrently), or, for a local bucket, sliced out
//! of the mapped segment files as each answer is built (pages handed back once about 2 MiB of
//! them were read and encoded), so memory holds a window of series per block and chunk data
//! of one batch only. Answers are built as the gRPC encoder asks for them, in its task
//! (see `answers`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use hypnos_model::{Labels, Matcher};
use hypnos_objstore::{Bucket, BucketError};
use hypnos_storepb::convert::{label_set_to_proto, matchers_from_proto};
use hypnos_storepb::info::{InfoResponse, StoreInfo, TsdbInfo};
use hypnos_storepb::shard::ShardMatcher;
use hypnos_storepb::thanos::{
    LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, PartialResponseStrategy,
    SeriesRequest,
};
use hypnos_storepb::{SeriesStream, StoreApi, component};
use hypnos_tsdb::BlockMeta;
use tonic::Status;

use crate::answers::Answers;
use crate::block::{BucketBlock, RawSeries};
use crate::cache::IndexCache;
use crate::error::BlockError;
use crate::fetcher::{FetcherConfig, MetaFetcher, state};
use crate::metrics::Metrics;
use crate::select::{Cursor, Merge, SelectParams};
use crate::timeutil::{TimeOrDuration, now_millis};

/// Series references resolved per read of the series section.
const SERIES_BATCH: usize = 4096;
/// Blocks queried at once within one request.
const BLOCK_QUERY_CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub fetcher: FetcherConfig,
    pub block_sync_concurrency: usize,
    pub index_cache_bytes: usize,
}

#[derive(Debug)]
pub struct BucketStore {
    bucket: Arc<dyn Bucket>,
    fetcher: MetaFetcher,
    cfg: StoreConfig,
    cache: Arc<IndexCache>,
    blocks: RwLock<BTreeMap<ulid::Ulid, Arc<BucketBlock>>>,
    /// Blocks found corrupt, with the reason; not loaded again until they leave the bucket.
    corrupt: Mutex<BTreeMap<ulid::Ulid, String>>,
    pub metrics: Metrics,
}

/// A block, its matchers after its external labels, and the series matching them.
type BlockMatches = (
    Arc<BucketBlock>,
    Option<Vec<Matcher>>,
    Option<Result<Vec<RawSeries>, BlockError>>,
);

impl BucketStore {
    pub fn new(bucket: Arc<dyn Bucket>, cfg: StoreConfig) -> Self {
        BucketStore {
            fetcher: MetaFetcher::new(bucket.clone(), cfg.fetcher.clone()),
            cache: Arc::new(IndexCache::new(cfg.index_cache_bytes)),
            bucket,
            cfg,
            blocks: RwLock::new(BTreeMap::new()),
            corrupt: Mutex::new(BTreeMap::new()),
            metrics: Metrics::default(),
        }
    }

    pub fn bucket(&self) -> &Arc<dyn Bucket> {
        &self.bucket
    }

    /// Loaded blocks, in ULID order.
    pub fn blocks(&self) -> Vec<Arc<BucketBlock>> {
        self.blocks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Blocks skipped as corrupt, with the reason.
    pub fn corrupt_blocks(&self) -> BTreeMap<ulid::Ulid, String> {
        self.corrupt.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Brings the loaded blocks in line with the bucket: loads new blocks (building their
    /// index-headers), drops blocks that left the bucket or were filtered out. A block that
    /// fails to load as corrupt is logged, counted and skipped; the others keep serving.
    pub async fn sync(&self) -> Result<(), BucketError> {
        self.metrics.syncs.inc();
        let synced = match self.fetcher.fetch().await {
            Ok(s) => s,
            Err(e) => {
                self.metrics.sync_failures.inc();
                return Err(e);
            }
        };
        for s in state::ALL {
            let n = synced.states.get(s).copied().unwrap_or(0);
            self.metrics
                .meta_synced
                .get_or_create(&vec![("state".to_string(), s.to_string())])
                .set(n as i64);
        }
        let loaded: HashSet<ulid::Ulid> = self
            .blocks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        let corrupt: HashSet<ulid::Ulid> = self.corrupt_blocks().keys().copied().collect();
        let to_load: Vec<BlockMeta> = synced
            .metas
            .iter()
            .filter(|(id, _)| !loaded.contains(id) && !corrupt.contains(id))
            .filter(|(id, m)| {
                let res = m.thanos.as_ref().map_or(0, |t| t.downsample.resolution);
                if res != 0 {
                    tracing::warn!(block = %id, resolution = res, "skipping downsampled block: only raw data is served");
                }
                res == 0
            })
            .map(|(_, m)| m.clone())
            .collect();
        let results: Vec<(String, Result<BucketBlock, BlockError>)> = futures::stream::iter(to_load)
            .map(|meta| async move {
                let id = meta.ulid.clone();
                (
                    id,
                    BucketBlock::load(self.bucket.clone(), meta, &self.cfg.data_dir, self.cache.clone()).await,
                )
            })
            .buffer_unordered(self.cfg.block_sync_concurrency.max(1))
            .collect()
            .await;
        for (id, result) in results {
            self.metrics.block_loads.inc();
            match result {
                Ok(block) => {
                    tracing::info!(block = %id, min_time = block.meta.min_time, max_time = block.meta.max_time, ext_labels = %block.ext_labels, "loaded block");
                    self.blocks
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(block.id, Arc::new(block));
                }
                Err(e) => {
                    self.metrics.block_load_failures.inc();
                    match (e.is_corrupt(), id.parse::<ulid::Ulid>()) {
                        (true, Ok(ulid)) => self.mark_corrupt(ulid, &e),
                        _ => tracing::warn!(block = %id, err = %e, "loading block failed; retrying at the next sync"),
                    }
                }
            }
        }
        // Drop blocks no longer wanted.
        let gone: Vec<ulid::Ulid> = loaded
            .iter()
            .filter(|id| !synced.metas.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            self.blocks.write().unwrap_or_else(|p| p.into_inner()).remove(&id);
            self.cache.remove_block(id);
            let _ = tokio::fs::remove_dir_all(self.cfg.data_dir.join(id.to_string())).await;
            self.metrics.block_drops.inc();
            tracing::info!(block = %id, "dropped block");
        }
        {
            let mut corrupt = self.corrupt.lock().unwrap_or_else(|p| p.into_inner());
            corrupt.retain(|id, _| synced.metas.contains_key(id));
            self.metrics.corrupt_blocks.set(corrupt.len() as i64);
        }
        let n = self.blocks.read().unwrap_or_else(|p| p.into_inner()).len();
        self.metrics.blocks_loaded.set(n as i64);
        Ok(())
    }

    /// Stops serving a block whose data turned out corrupt.
    fn mark_corrupt(&self, id: ulid::Ulid, err: &BlockError) {
        tracing::error!(block = %id, err = %err, "corrupt block: skipping it, other blocks keep serving");
        self.metrics.corrupt_block_detections.inc();
        let removed = self
            .blocks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
            .is_some();
        if removed {
            self.cache.remove_block(id);
        }
        let mut corrupt = self.corrupt.lock().unwrap_or_else(|p| p.into_inner());
        corrupt.insert(id, err.to_string());
        self.metrics.corrupt_blocks.set(corrupt.len() as i64);
        let n = self.blocks.read().unwrap_or_else(|p| p.into_inner()).len();
        self.metrics.blocks_loaded.set(n as i64);
    }

    /// Records a block failure during a request: corrupt blocks are taken out of service. Returns
    /// the warning to send, or the error status with partial responses disabled.
    pub(crate) fn block_failure(&self, block: &BucketBlock, err: &BlockError, abort: bool) -> Result<String, Status> {
        if err.is_corrupt() {
            self.mark_corrupt(block.id, err);
        } else {
            tracing::warn!(block = %block.id, err = %err, "reading block failed");
        }
        let msg = format!("block {}: {err}", block.id);
        if abort { Err(Status::aborted(msg)) } else { Ok(msg) }
    }

    /// The `--min-time`/`--max-time` window resolved now.
    fn time_window(&self) -> (i64, i64) {
        let now = now_millis();
        (
            self.cfg.fetcher.min_time.resolve(now),
            self.cfg.fetcher.max_time.resolve(now),
        )
    }

    fn blocks_in(&self, mint: i64, maxt: i64) -> Vec<Arc<BucketBlock>> {
        let (lo, hi) = self.time_window();
        let (mint, maxt) = (mint.max(lo), maxt.min(hi));
        if mint > maxt {
            return Vec::new();
        }
        // Filtered under the lock: only the blocks a request reads are cloned out.
        self.blocks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|b| b.overlaps(mint, maxt))
            .cloned()
            .collect()
    }

    async fn series_impl(self: Arc<Self>, req: SeriesRequest) -> Result<SeriesStream, Status> {
        self.metrics.series_requests.inc();
        let matchers = matchers_from_proto(&req.matchers)?;
        if matchers.is_empty() {
            return Err(Status::invalid_argument("no matchers specified"));
        }
        let abort =
            req.partial_response_disabled || req.partial_response_strategy == PartialResponseStrategy::Abort as i32;
        let blocks = self.blocks_in(req.min_time, req.max_time);
        let params = SelectParams {
            mint: req.min_time,
            maxt: req.max_time,
            without: req.without_replica_labels.clone(),
            shard: ShardMatcher::new(req.shard_info.as_ref()),
        };

        // Postings and the first window of series of every block, several blocks at a time,
        // so that most failures are known before the stream starts.
        let mut opened = futures::stream::iter(blocks.iter().cloned().enumerate())
            .map(|(bi, block)| {
                let (matchers, params) = (&matchers, &params);
                async move {
                    let Some(ms) = block.index_matchers(matchers) else {
                        return (bi, Ok(None));
                    };
                    let open = async {
                        let refs = block.postings_for_matchers(&ms).await?;
                        let mut cursor = Cursor::new(bi, block.clone(), refs, params);
                        cursor.fill(params).await?;
                        Ok::<_, BlockError>(Some(cursor))
                    };
                    (bi, open.await)
                }
            })
            .buffer_unordered(BLOCK_QUERY_CONCURRENCY);
        let mut cursors = Vec::with_capacity(blocks.len());
        let mut warnings = Vec::new();
        while let Some((bi, result)) = opened.next().await {
            match result {
                Ok(Some(cursor)) => cursors.push(cursor),
                Ok(None) => {}
                Err(e) => warnings.push(self.block_failure(&blocks[bi], &e, abort)?),
            }
        }
        drop(opened);
        cursors.sort_unstable_by_key(|c| c.bi);
        let limit = if req.limit > 0 {
            usize::try_from(req.limit).unwrap_or(usize::MAX)
        } else {
            usize::MAX
        };
        let merge = Merge::new(cursors, params, limit);
        Ok(Answers::new(self, blocks, merge, req.skip_chunks, abort, warnings).into_stream())
    }

    /// Series of `block` matching `ms` (already free of external-label matchers) in `[mint, maxt]`.
    async fn matching_series(
        &self,
        block: &BucketBlock,
        ms: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>, BlockError> {
        let refs = block.postings_for_matchers(ms).await?;
        let mut out = Vec::new();
        for batch in refs.chunks(SERIES_BATCH) {
            for s in block.raw_series(batch).await? {
                if s.chunks.iter().any(|c| c.overlaps(mint, maxt)) {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// For each block overlapping `[start, end]`, in block order, several at a time: the block,
    /// its matchers left after its external labels (`None` when those rule it out), and, when
    /// matchers are left, the series matching them.
    fn matches_per_block<'a>(
        &'a self,
        matchers: &'a [Matcher],
        start: i64,
        end: i64,
    ) -> impl futures::Stream<Item = BlockMatches> + Send + 'a {
        futures::stream::iter(self.blocks_in(start, end))
            .map(move |block| async move {
                let ms = block.index_matchers(matchers);
                let found = match &ms {
                    Some(ms) if !ms.is_empty() => Some(self.matching_series(&block, ms, start, end).await),
                    _ => None,
                };
                (block, ms, found)
            })
            .buffered(BLOCK_QUERY_CONCURRENCY)
    }

    async fn label_names_impl(&self, req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
        let matchers = matchers_from_proto(&req.matchers)?;
        let abort =
            req.partial_response_disabled || req.partial_response_strategy == PartialResponseStrategy::Abort as i32;
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut warnings = Vec::new();
        let mut per_block = std::pin::pin!(self.matches_per_block(&matchers, req.start, req.end));
        while let Some((block, ms, found)) = per_block.next().await {
            if ms.is_none() {
                continue;
            }
            let mut view = Vec::new();
            match found {
                None => {
                    names.extend(block.label_names().map(str::to_string));
                    names.extend(block.ext_labels.iter().map(|l| l.name.clone()));
                }
                Some(Ok(series)) => {
                    for s in &series {
                        block.label_view(s, false, &[], &mut view);
                        for (n, _) in &view {
                            if !names.contains(*n) {
                                names.insert(n.to_string());
                            }
                        }
                    }
                    if !series.is_empty() {
                        names.extend(block.ext_labels.iter().map(|l| l.name.clone()));
                    }
                }
                Some(Err(e)) => warnings.push(self.block_failure(&block, &e, abort)?),
            }
        }
        for w in &req.without_replica_labels {
            names.remove(w);
        }
        let mut names: Vec<String> = names.into_iter().collect();
        if req.limit > 0 {
            names.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        Ok(LabelNamesResponse {
            names,
            warnings,
            hints: None,
        })
    }

    async fn label_values_impl(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
        if req.label.is_empty() {
            return Err(Status::invalid_argument("label name parameter cannot be empty"));
        }
        let matchers = matchers_from_proto(&req.matchers)?;
        let abort =
            req.partial_response_disabled || req.partial_response_strategy == PartialResponseStrategy::Abort as i32;
        let mut values: BTreeSet<String> = BTreeSet::new();
        let mut warnings = Vec::new();
        if req.without_replica_labels.contains(&req.label) {
            return Ok(LabelValuesResponse::default());
        }
        let mut per_block = std::pin::pin!(self.matches_per_block(&matchers, req.start, req.end));
        while let Some((block, ms, found)) = per_block.next().await {
            if ms.is_none() {
                continue;
            }
            let mut view = Vec::new();
            let ext_value = block.ext_labels.get(&req.label).map(str::to_string);
            match found {
                None => match ext_value {
                    Some(v) => {
                        values.insert(v);
                    }
                    None => values.extend(block.label_values(&req.label).map(str::to_string)),
                },
                Some(Ok(series)) => match ext_value {
                    Some(v) if !series.is_empty() => {
                        values.insert(v);
                    }
                    Some(_) => {}
                    None => {
                        for s in &series {
                            block.label_view(s, false, &[], &mut view);
                            if let Some((_, v)) = view.iter().find(|(n, _)| *n == req.label)
                                && !values.contains(*v)
                            {
                                values.insert(v.to_string());
                            }
                        }
                    }
                },
                Some(Err(e)) => warnings.push(self.block_failure(&block, &e, abort)?),
            }
        }
        let mut values: Vec<String> = values.into_iter().collect();
        if req.limit > 0 {
            values.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        Ok(LabelValuesResponse {
            values,
            warnings,
            hints: None,
        })
    }

    /// Label sets, time range (clamped to `--min-time`/`--max-time`) and per-label-set ranges.
    pub fn info_response(&self) -> InfoResponse {
        let blocks = self.blocks();
        let (lo, hi) = self.time_window();
        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        let mut by_labels: BTreeMap<Labels, Vec<(i64, i64)>> = BTreeMap::new();
        for b in &blocks {
            mint = mint.min(b.meta.min_time);
            maxt = maxt.max(b.meta.max_time);
            by_labels
                .entry(b.ext_labels.clone())
                .or_default()
                .push((b.meta.min_time, b.meta.max_time));
        }
        if !blocks.is_empty() {
            mint = mint.max(lo);
            maxt = maxt.min(hi);
        }
        let mut tsdb_infos = Vec::new();
        for (labels, mut ranges) in by_labels.clone() {
            ranges.sort_unstable();
            let mut merged: Vec<(i64, i64)> = Vec::new();
            for (a, b) in ranges {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            for (a, b) in merged {
                tsdb_infos.push(TsdbInfo {
                    labels: Some(label_set_to_proto(&labels)),
                    min_time: a,
                    max_time: b,
                });
            }
        }
        // Thanos sorts label sets by their string form.
        let mut label_sets: Vec<Labels> = by_labels.into_keys().collect();
        label_sets.sort_by_key(|l| l.to_string());
        InfoResponse {
            label_sets: label_sets.iter().map(label_set_to_proto).collect(),
            component_type: component::STORE.to_string(),
            store: Some(StoreInfo {
                min_time: mint,
                max_time: maxt,
                supports_sharding: true,
                supports_without_replica_labels: true,
                tsdb_infos,
                supports_projections: false,
            }),
            ..InfoResponse::default()
        }
    }
}

/// The StoreAPI face of a [`BucketStore`].
#[derive(Debug, Clone)]
pub struct StoreService(pub Arc<BucketStore>);

#[tonic::async_trait]
impl StoreApi for StoreService {
    async fn info(&self) -> Result<InfoResponse, Status> {
        Ok(self.0.info_response())
    }

    async fn series(&self, req: SeriesRequest) -> Result<SeriesStream, Status> {
        self.0.clone().series_impl(req).await
    }

    async fn label_names(&self, req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
        self.0.label_names_impl(req).await
    }

    async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
        self.0.label_values_impl(req).await
    }
}

impl StoreConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        StoreConfig {
            data_dir,
            fetcher: FetcherConfig {
                min_time: TimeOrDuration::Time(i64::MIN),
                max_time: TimeOrDuration::Time(i64::MAX),
                consistency_delay: std::time::Duration::ZERO,
                ignore_deletion_marks_delay: std::time::Duration::from_secs(24 * 3600),
            },
            block_sync_concurrency: 20,
            index_cache_bytes: 250 << 20,
        }
    }
}
