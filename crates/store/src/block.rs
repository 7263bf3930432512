//! One block of the bucket as the store gateway serves it: its meta, its index-header in
//! memory, and ranged reads (through the shared index cache) for postings, series and chunks.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hypnos_model::{Label, Labels, MatchOp, Matcher};
use hypnos_objstore::Bucket;
use hypnos_storepb::chunk::chunk_hash;
use hypnos_tsdb::chunks::parse_chunk_record;
use hypnos_tsdb::encoding::{read_uvarint, zigzag_decode};
use hypnos_tsdb::index::postings::{intersect, union, without};
use hypnos_tsdb::index::{parse_postings, parse_series_entry};
use hypnos_tsdb::{BlockMeta, ChunkMeta, ChunkRef, SeriesRef};

use crate::cache::IndexCache;
use crate::error::BlockError;
use crate::indexheader::{self, IndexHeader};
use crate::mapped::MappedSegment;

/// Bytes read for a series entry whose size is unknown; a longer entry is read again whole.
const DEFAULT_SERIES_READ: u64 = 4096;
/// Bytes read for a chunk whose size is unknown; a longer chunk is read again whole.
const DEFAULT_CHUNK_READ: u64 = 2048;
/// Chunk record overhead: length uvarint (at most 5 bytes), encoding byte, CRC.
const CHUNK_OVERHEAD: u64 = 10;
/// Largest gap between two wanted ranges of an object that is read through instead of
/// starting another read: fewer requests for a little more data. (Thanos reads through up to
/// 512 KiB; a smaller gap bounds what a batch holds that nobody asked for.)
const MAX_GAP: u64 = 64 << 10;
/// A coalesced read stops growing at this size.
const MAX_COALESCED_READ: u64 = 8 << 20;

/// A series as selected from one block: labels from the index, chunk metas in time order.
#[derive(Debug, Clone)]
pub struct BlockSeries {
    pub labels: Labels,
    pub chunks: Vec<ChunkMeta>,
}

/// A series as read from one block's index: labels as symbol references (see
/// [`BucketBlock::label_view`]), chunk metas in time order.
#[derive(Debug, Clone)]
pub struct RawSeries {
    pub label_refs: Vec<(u32, u32)>,
    pub chunks: Vec<ChunkMeta>,
}

/// A chunk read from the bucket: TSDB encoding byte, data, and the xxhash64 of the data that
/// StoreAPI chunks carry (computed as the chunk is read, while its bytes are in the CPU cache).
#[derive(Debug, Clone)]
pub struct FetchedChunk {
    pub encoding: u8,
    pub data: Bytes,
    pub hash: u64,
}

/// A chunk segment file of a block: its key and size, and its mapping when the bucket is a
/// local directory (chunks are then slices of it instead of ranged reads).
#[derive(Debug)]
struct Segment {
    key: String,
    size: u64,
    map: Option<MappedSegment>,
}

#[derive(Debug)]
pub struct BucketBlock {
    pub id: ulid::Ulid,
    pub meta: BlockMeta,
    /// External labels from `thanos.labels`.
    pub ext_labels: Labels,
    pub resolution: i64,
    bucket: Arc<dyn Bucket>,
    header: IndexHeader,
    index_key: String,
    /// Chunk segments (`<ULID>/chunks/000001`, ...) in order.
    segments: Vec<Segment>,
    cache: Arc<IndexCache>,
}

impl BucketBlock {
    /// Builds (or reuses) the index-header under `data_dir/<ULID>/` and lists the chunk segments.
    pub async fn load(
        bucket: Arc<dyn Bucket>,
        meta: BlockMeta,
        data_dir: &Path,
        cache: Arc<IndexCache>,
    ) -> Result<Self, BlockError> {
        let id: ulid::Ulid = meta.ulid.parse().map_err(|_| BlockError::Corrupt {
            file: format!("{}/meta.json", meta.ulid),
            offset: 0,
            reason: "invalid ULID".into(),
        })?;
        let name = id.to_string();
        let header = indexheader::load_or_build(bucket.as_ref(), &name, &data_dir.join(&name)).await?;
        let chunks_dir = format!("{name}/chunks/");
        let mut keys: Vec<String> = bucket
            .iter(&chunks_dir, false)
            .await
            .map_err(|e| BlockError::bucket(&chunks_dir, e))?
            .into_iter()
            .filter(|k| !k.ends_with('/'))
            .collect();
        keys.sort();
        let mut segments = Vec::with_capacity(keys.len());
        for key in keys {
            let size = bucket.head(&key).await.map_err(|e| BlockError::bucket(&key, e))?.size;
            let map = bucket
                .local_path(&key)
                .and_then(|path| match MappedSegment::open(&path, size) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::warn!(key, err = %e, "cannot map chunk segment; reading it by ranges");
                        None
                    }
                });
            segments.push(Segment { key, size, map });
        }
        if segments.is_empty() && meta.stats.num_chunks > 0 {
            return Err(BlockError::Corrupt {
                file: chunks_dir,
                offset: 0,
                reason: format!("block has {} chunks but no chunk segment files", meta.stats.num_chunks),
            });
        }
        let thanos = meta.thanos.clone().unwrap_or_default();
        let ext_labels = Labels::from_pairs(thanos.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(BucketBlock {
            id,
            ext_labels,
            resolution: thanos.downsample.resolution,
            index_key: format!("{name}/index"),
            bucket,
            header,
            segments,
            cache,
            meta,
        })
    }

    /// Whether the block's half-open range `[minTime, maxTime)` meets the closed `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && mint < self.meta.max_time
    }

    pub fn header(&self) -> &IndexHeader {
        &self.header
    }

    /// The request's matchers with those on external labels checked against this block's
    /// values and removed; `None` when an external label rules the block out.
    pub fn index_matchers(&self, matchers: &[Matcher]) -> Option<Vec<Matcher>> {
        let mut rest = Vec::with_capacity(matchers.len());
        for m in matchers {
            match self.ext_labels.get(&m.name) {
                Some(v) if !m.matches(v) => return None,
                Some(_) => {}
                None => rest.push(m.clone()),
            }
        }
        Some(rest)
    }

    /// Postings lists of several values of one label name, fetched with coalesced reads.
    /// `values` pairs each value with its postings offset from the index-header.
    async fn postings_of_values(&self, name: &str, values: &[(&str, u64)]) -> Result<Vec<Vec<SeriesRef>>, BlockError> {
        let mut out = Vec::with_capacity(values.len());
        let mut missing: Vec<usize> = Vec::new();
        for (i, &(value, offset)) in values.iter().enumerate() {
            match self.cache.get_postings(self.id, name, value) {
                Some(b) => out.push(parse_postings(&b, offset).map_err(|e| BlockError::from_tsdb(&self.index_key, e))?),
                None => {
                    out.push(Vec::new());
                    missing.push(i);
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let ranges: Vec<Range<u64>> = missing
            .iter()
            .map(|&i| self.header.postings_range(values[i].1))
            .collect();
        let parts = self.read_coalesced(&self.index_key, &ranges).await?;
        for (i, b) in missing.into_iter().zip(parts) {
            let (value, offset) = values[i];
            let list = parse_postings(&b, offset).map_err(|e| BlockError::from_tsdb(&self.index_key, e))?;
            // Cache only the section itself (length, contents, CRC), not what follows it.
            let section_len = b
                .get(..4)
                .map_or(0, |l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize);
            let used = (8 + section_len).min(b.len());
            self.cache.put_postings(self.id, name, value, &b[..used]);
            out[i] = list;
        }
        Ok(out)
    }

    /// The given values of `name` that the index has, with their postings offsets.
    fn offsets_of<'a>(&self, name: &str, values: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, u64)> {
        values
            .into_iter()
            .filter_map(|v| Some((v, self.header.postings_offset(name, v)?)))
            .collect()
    }

    /// Union of the postings of the values of `name` that `accept` accepts.
    async fn postings_where(&self, name: &str, accept: impl Fn(&str) -> bool) -> Result<Vec<SeriesRef>, BlockError> {
        let values: Vec<(&str, u64)> = self.header.label_values(name).filter(|(v, _)| accept(v)).collect();
        Ok(union(self.postings_of_values(name, &values).await?))
    }

    async fn all_postings(&self) -> Result<Vec<SeriesRef>, BlockError> {
        let values = self.offsets_of("", [""]);
        Ok(union(self.postings_of_values("", &values).await?))
    }

    /// Series matching all matchers, with Prometheus's semantics: a matcher that accepts the
    /// empty string also selects series without the label. No matchers selects every series.
    pub async fn postings_for_matchers(&self, matchers: &[Matcher]) -> Result<Vec<SeriesRef>, BlockError> {
        if matchers.is_empty() {
            return self.all_postings().await;
        }
        let mut its: Vec<Vec<SeriesRef>> = Vec::new();
        let mut not_its: Vec<Vec<SeriesRef>> = Vec::new();
        for m in matchers {
            let must_be_set = matchers.iter().any(|o| o.name == m.name && !o.matches_empty());
            if !must_be_set || (m.op.is_negative() && m.matches_empty()) {
                // Subtract the series whose value the matcher rejects.
                not_its.push(self.postings_where(&m.name, |v| !m.matches(v)).await?);
                continue;
            }
            let it = if m.op == MatchOp::Equal {
                let values = self.offsets_of(&m.name, [m.value.as_str()]);
                union(self.postings_of_values(&m.name, &values).await?)
            } else if let Some(set) = m.set_matches() {
                let values = self.offsets_of(&m.name, set.iter().map(String::as_str));
                union(self.postings_of_values(&m.name, &values).await?)
            } else {
                self.postings_where(&m.name, |v| m.matches(v)).await?
            };
            if it.is_empty() {
                return Ok(Vec::new());
            }
            its.push(it);
        }
        if its.is_empty() {
            its.push(self.all_postings().await?);
        }
        let mut out = intersect(its);
        for n in &not_its {
            if out.is_empty() {
                break;
            }
            out = without(&out, n);
        }
        Ok(out)
    }

    /// Labels and chunk metas of the given series references (sorted, as postings are). With
    /// `external_labels`, the block's external labels are part of the labels (and win over
    /// series labels of the same name).
    pub async fn series(&self, refs: &[SeriesRef], external_labels: bool) -> Result<Vec<BlockSeries>, BlockError> {
        let raw = self.raw_series(refs).await?;
        let mut view = Vec::new();
        Ok(raw
            .into_iter()
            .map(|s| {
                self.label_view(&s, external_labels, &[], &mut view);
                BlockSeries {
                    labels: Labels::from_sorted_unchecked(view.iter().map(|&(n, v)| Label::new(n, v)).collect()),
                    chunks: s.chunks,
                }
            })
            .collect())
    }

    /// The labels of `s` as borrowed `(name, value)` pairs in label order, into `out`: with
    /// `external_labels` the block's external labels are merged in (and win over series
    /// labels of the same name); names in `without` are left out.
    pub fn label_view<'a>(
        &'a self,
        s: &RawSeries,
        external_labels: bool,
        without: &[&str],
        out: &mut Vec<(&'a str, &'a str)>,
    ) {
        out.clear();
        let ext: &[Label] = if external_labels {
            self.ext_labels.as_slice()
        } else {
            &[]
        };
        let mut ext = ext.iter().map(|l| (l.name.as_str(), l.value.as_str())).peekable();
        // Symbols were checked when the series was read.
        let own = s
            .label_refs
            .iter()
            .filter_map(|&(n, v)| Some((self.header.symbol(n)?, self.header.symbol(v)?)));
        for (name, value) in own {
            while let Some(&e) = ext.peek().filter(|e| e.0 <= name) {
                out.push(e);
                ext.next();
            }
            if out.last().is_none_or(|l| l.0 != name) {
                out.push((name, value));
            }
        }
        out.extend(ext);
        if !without.is_empty() {
            out.retain(|(n, _)| !without.contains(n));
        }
    }

    /// Label references and chunk metas of the given series references (sorted, as postings
    /// are), symbols checked: label names are in order and every symbol exists.
    pub async fn raw_series(&self, refs: &[SeriesRef]) -> Result<Vec<RawSeries>, BlockError> {
        let series_start = self.header.toc.series;
        let series_end = self.header.series_end();
        let max_read = match self.meta.thanos.as_ref().map(|t| t.index_stats.series_max_size) {
            Some(n) if n > 0 => n as u64,
            _ => DEFAULT_SERIES_READ,
        };
        let offset_of = |r: SeriesRef| -> Result<u64, BlockError> {
            let off = u64::from(r) * 16;
            if off < series_start || off >= series_end {
                return Err(BlockError::Corrupt {
                    file: self.index_key.clone(),
                    offset: off,
                    reason: format!("series reference {r} lies outside the series section"),
                });
            }
            Ok(off)
        };
        // Cached entries passed their CRC check before they were cached (below), so they are
        // parsed without it; entries read now are checked, and cached only then.
        let mut raw: Vec<Option<Bytes>> = self.cache.get_many_series(self.id, refs);
        let mut fresh = vec![false; raw.len()];
        let missing: Vec<usize> = (0..raw.len()).filter(|&i| raw[i].is_none()).collect();
        if !missing.is_empty() {
            let mut ranges = Vec::with_capacity(missing.len());
            for &i in &missing {
                let off = offset_of(refs[i])?;
                ranges.push(off..(off + max_read).min(series_end));
            }
            let parts = self.read_coalesced(&self.index_key, &ranges).await?;
            for (&i, mut b) in missing.iter().zip(parts) {
                let off = offset_of(refs[i])?;
                let total = series_entry_len(&b).ok_or_else(|| BlockError::Corrupt {
                    file: self.index_key.clone(),
                    offset: off,
                    reason: "series entry length is not a valid varint".into(),
                })?;
                if total > b.len() as u64 {
                    if off + total > series_end {
                        return Err(BlockError::Corrupt {
                            file: self.index_key.clone(),
                            offset: off,
                            reason: format!("series entry of {total} bytes runs past the series section"),
                        });
                    }
                    b = self.read_range(&self.index_key, off..off + total).await?;
                }
                raw[i] = Some(b.slice(..(total as usize).min(b.len())));
                fresh[i] = true;
            }
        }
        let symbols = self.header.symbol_count();
        let mut out = Vec::with_capacity(refs.len());
        let mut to_cache = Vec::with_capacity(missing.len());
        for ((&r, b), fresh) in refs.iter().zip(raw).zip(fresh) {
            let off = offset_of(r)?;
            let bytes = b.as_deref().unwrap_or_default();
            let series = match (fresh, parse_checked_entry(bytes)) {
                (false, Some(parsed)) => parsed,
                _ => {
                    let entry =
                        parse_series_entry(bytes, off).map_err(|e| BlockError::from_tsdb(&self.index_key, e))?;
                    RawSeries {
                        label_refs: entry.label_refs,
                        chunks: entry.chunks,
                    }
                }
            };
            let corrupt = |reason: String| BlockError::Corrupt {
                file: self.index_key.clone(),
                offset: off,
                reason,
            };
            let mut prev: Option<&str> = None;
            for &(n, v) in &series.label_refs {
                if n as usize >= symbols || v as usize >= symbols {
                    return Err(corrupt(format!("series {r} refers to a symbol out of range")));
                }
                let name = self.header.symbol(n).unwrap_or_default();
                if prev.is_some_and(|p| p >= name) {
                    return Err(corrupt(format!("labels of series {r} are not sorted")));
                }
                prev = Some(name);
            }
            if fresh && let Some(b) = b {
                to_cache.push((r, b));
            }
            out.push(series);
        }
        if !to_cache.is_empty() {
            self.cache.put_many_series(self.id, &to_cache);
        }
        Ok(out)
    }

    /// Reads chunks, CRC checked; the result is in the order of `refs`. Chunks close to each
    /// other in a segment are read together and returned as slices of that read.
    pub async fn chunks(&self, refs: &[ChunkRef]) -> Result<Vec<FetchedChunk>, BlockError> {
        let max_read = match self.meta.thanos.as_ref().map(|t| t.index_stats.chunk_max_size) {
            Some(n) if n > 0 => n as u64 + CHUNK_OVERHEAD,
            _ => DEFAULT_CHUNK_READ,
        };
        let mut by_segment: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, r) in refs.iter().enumerate() {
            by_segment.entry(r.segment()).or_default().push(i);
        }
        let mut out: Vec<FetchedChunk> = vec![FetchedChunk::default(); refs.len()];
        for (segment, idxs) in by_segment {
            let seg = self.segment(segment)?;
            let (key, size) = (&seg.key, seg.size);
            for &i in &idxs {
                let off = u64::from(refs[i].offset());
                if off < hypnos_tsdb::chunks::SEGMENT_HEADER_SIZE as u64 || off >= size {
                    return Err(BlockError::Corrupt {
                        file: key.clone(),
                        offset: off,
                        reason: format!("chunk offset outside the segment of {size} bytes"),
                    });
                }
            }
            if let Some(map) = &seg.map {
                for &i in &idxs {
                    out[i] = mapped_chunk_at(key, map, u64::from(refs[i].offset()))?;
                }
                continue;
            }
            let ranges: Vec<Range<u64>> = idxs
                .iter()
                .map(|&i| {
                    let off = u64::from(refs[i].offset());
                    off..(off + max_read).min(size)
                })
                .collect();
            let parts = self.read_coalesced(key, &ranges).await?;
            let mut read = Vec::with_capacity(idxs.len());
            for (&i, mut b) in idxs.iter().zip(parts) {
                let off = u64::from(refs[i].offset());
                let (total, _) = chunk_record_len(&b).ok_or_else(|| BlockError::Corrupt {
                    file: key.clone(),
                    offset: off,
                    reason: "chunk length is not a valid varint".into(),
                })?;
                if total > b.len() as u64 {
                    if off + total > size {
                        return Err(BlockError::Corrupt {
                            file: key.clone(),
                            offset: off,
                            reason: format!("chunk record of {total} bytes runs past the end of the segment"),
                        });
                    }
                    b = self.read_range(key, off..off + total).await?;
                }
                let (range, encoding) = chunk_in(key, &b, off)?;
                read.push(FetchedChunk {
                    encoding,
                    hash: chunk_hash(&b[range.clone()]),
                    data: b.slice(range),
                });
            }
            for (&i, c) in idxs.iter().zip(compact(read)) {
                out[i] = c;
            }
        }
        Ok(out)
    }

    /// Whether every chunk segment is mapped: chunks are then read one at a time, without
    /// I/O, by [`BucketBlock::mapped_chunk`].
    pub fn chunks_mapped(&self) -> bool {
        !self.segments.is_empty() && self.segments.iter().all(|s| s.map.is_some())
    }

    /// One chunk of a mapped segment, CRC checked (see [`BucketBlock::chunks_mapped`]).
    pub fn mapped_chunk(&self, r: ChunkRef) -> Result<FetchedChunk, BlockError> {
        let seg = self.segment(r.segment())?;
        let off = u64::from(r.offset());
        if off < hypnos_tsdb::chunks::SEGMENT_HEADER_SIZE as u64 || off >= seg.size {
            return Err(BlockError::Corrupt {
                file: seg.key.clone(),
                offset: off,
                reason: format!("chunk offset outside the segment of {} bytes", seg.size),
            });
        }
        match &seg.map {
            Some(map) => mapped_chunk_at(&seg.key, map, off),
            None => Err(BlockError::Corrupt {
                file: seg.key.clone(),
                offset: off,
                reason: "chunk segment is not mapped".into(),
            }),
        }
    }

    fn segment(&self, segment: u32) -> Result<&Segment, BlockError> {
        self.segments.get(segment as usize).ok_or_else(|| BlockError::Corrupt {
            file: self.index_key.clone(),
            offset: 0,
            reason: format!(
                "chunk reference to segment {} but the block has {}",
                segment + 1,
                self.segments.len()
            ),
        })
    }

    /// Hands back the resident pages of the mapped segments that reading `refs` touched
    /// (from the first chunk to the end of the last, per segment). Chunks already handed out
    /// stay valid.
    pub fn release_chunks(&self, refs: &[ChunkRef]) {
        let mut spans: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for r in refs {
            let off = u64::from(r.offset());
            let span = spans.entry(r.segment()).or_insert((off, off));
            span.0 = span.0.min(off);
            span.1 = span.1.max(off);
        }
        for (segment, (lo, last)) in spans {
            self.release_span(segment, lo, last);
        }
    }

    /// Hands back the resident pages of mapped segment `segment` from offset `lo` to the end
    /// of the chunk at offset `last`. Chunks already handed out stay valid.
    /// Hands back the mapped pages of `range` of a segment (nothing for unmapped segments).
    pub fn release_range(&self, segment: u32, range: Range<u64>) {
        if let Some(map) = self.segments.get(segment as usize).and_then(|s| s.map.as_ref()) {
            map.release(range);
        }
    }

    pub fn release_span(&self, segment: u32, lo: u64, last: u64) {
        let Some(map) = self.segments.get(segment as usize).and_then(|s| s.map.as_ref()) else {
            return;
        };
        // The last chunk's record ends where its length says.
        let end = map
            .bytes()
            .get(last as usize..)
            .and_then(chunk_record_len)
            .map_or(last + 1, |(total, _)| last.saturating_add(total));
        map.release(lo..end);
    }

    async fn read_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, BlockError> {
        self.bucket
            .get_range(key, range)
            .await
            .map_err(|e| BlockError::bucket(key, e))
    }

    async fn read_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, BlockError> {
        let parts = self
            .bucket
            .get_ranges(key, ranges)
            .await
            .map_err(|e| BlockError::bucket(key, e))?;
        if parts.len() != ranges.len() {
            return Err(BlockError::Corrupt {
                file: key.to_string(),
                offset: 0,
                reason: format!("asked for {} ranges, got {}", ranges.len(), parts.len()),
            });
        }
        Ok(parts)
    }

    /// Reads `ranges` of `key` with as few ranged reads as [`coalesce`] allows. Each result
    /// starts at its range's start and runs to the end of the read covering it (so possibly
    /// past the range's end, and short of it only where the object ends).
    async fn read_coalesced(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, BlockError> {
        let (reads, covering) = coalesce(ranges, MAX_GAP, MAX_COALESCED_READ);
        let parts = self.read_ranges(key, &reads).await?;
        Ok(ranges
            .iter()
            .zip(covering)
            .map(|(r, m)| {
                let from = usize::try_from(r.start - reads[m].start).unwrap_or(usize::MAX);
                let part = &parts[m];
                part.slice(from.min(part.len())..)
            })
            .collect())
    }

    /// Label names present in the block's index.
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.header.label_names()
    }

    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.header.label_values(name).map(|(v, _)| v)
    }
}

impl Default for FetchedChunk {
    fn default() -> Self {
        FetchedChunk {
            encoding: 0,
            data: Bytes::new(),
            hash: 0,
        }
    }
}

/// The chunks copied into one buffer of their own. Coalesced reads also hold the gaps between
/// the chunks asked for (for a sparse selection, most of the read), and chunks sent as slices
/// of them would keep every read of a streamed batch alive until the batch is encoded.
fn compact(chunks: Vec<FetchedChunk>) -> Vec<FetchedChunk> {
    let total: usize = chunks.iter().map(|c| c.data.len()).sum();
    let mut buf = BytesMut::with_capacity(total);
    for c in &chunks {
        buf.extend_from_slice(&c.data);
    }
    let buf = buf.freeze();
    let mut at = 0;
    chunks
        .into_iter()
        .map(|c| {
            let len = c.data.len();
            at += len;
            FetchedChunk {
                encoding: c.encoding,
                data: buf.slice(at - len..at),
                hash: c.hash,
            }
        })
        .collect()
}

/// Groups `ranges` (any order) into reads: a read covers ranges sorted by start whose gaps are
/// at most `max_gap`, and stops growing at `max_read` bytes. Returns the reads and, for each
/// range, the index of the read covering it.
pub fn coalesce(ranges: &[Range<u64>], max_gap: u64, max_read: u64) -> (Vec<Range<u64>>, Vec<usize>) {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].start, ranges[i].end));
    let mut reads: Vec<Range<u64>> = Vec::new();
    let mut covering = vec![0; ranges.len()];
    for i in order {
        let r = &ranges[i];
        match reads.last_mut() {
            Some(m) if r.start <= m.end.saturating_add(max_gap) && r.end.max(m.end) - m.start <= max_read => {
                m.end = m.end.max(r.end);
            }
            _ => reads.push(r.clone()),
        }
        covering[i] = reads.len() - 1;
    }
    (reads, covering)
}

/// Total bytes of the series entry at the start of `b` (uvarint length, body, CRC), or `None`
/// when the length prefix is malformed.
fn series_entry_len(b: &[u8]) -> Option<u64> {
    let (len, n) = read_uvarint(&b[..b.len().min(10)]).ok()?;
    len.checked_add(n as u64)?.checked_add(4)
}

/// One uvarint at `*at` of `b` (advancing `*at`), `None` when malformed or truncated; as
/// `hypnos_tsdb::encoding::read_uvarint`, inlined for the one-byte case.
#[inline]
fn uvarint_at(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    if first < 0x80 {
        *at += 1;
        return Some(u64::from(first));
    }
    let (v, n) = read_uvarint(b.get(*at..)?).ok()?;
    *at += n;
    Some(v)
}

/// The label references and chunk metas of a series entry whose CRC was checked before (one
/// from the index cache), with the same results as `parse_series_entry` for every entry
/// that function accepts. `None` for anything else: the caller then lets that function
/// report what is wrong.
fn parse_checked_entry(b: &[u8]) -> Option<RawSeries> {
    let mut at = 0;
    let len = usize::try_from(uvarint_at(b, &mut at)?).ok()?;
    let body = b.get(at..)?;
    if len > body.len().saturating_sub(4) {
        return None;
    }
    let body = &body[..len];
    let mut at = 0;
    let nl = usize::try_from(uvarint_at(body, &mut at)?).ok()?;
    if nl > (body.len() - at) / 2 {
        return None;
    }
    let mut label_refs = Vec::with_capacity(nl);
    for _ in 0..nl {
        let n = u32::try_from(uvarint_at(body, &mut at)?).ok()?;
        let v = u32::try_from(uvarint_at(body, &mut at)?).ok()?;
        label_refs.push((n, v));
    }
    let nc = usize::try_from(uvarint_at(body, &mut at)?).ok()?;
    if nc > (body.len() - at) / 3 {
        return None;
    }
    let mut chunks = Vec::with_capacity(nc);
    if nc > 0 {
        let min_time = zigzag_decode(uvarint_at(body, &mut at)?);
        let max_time = min_time.wrapping_add(uvarint_at(body, &mut at)? as i64);
        let mut r = uvarint_at(body, &mut at)?;
        chunks.push(ChunkMeta {
            min_time,
            max_time,
            chunk_ref: ChunkRef(r),
        });
        let mut t0 = max_time;
        for _ in 1..nc {
            let min_time = t0.wrapping_add(uvarint_at(body, &mut at)? as i64);
            let max_time = min_time.wrapping_add(uvarint_at(body, &mut at)? as i64);
            r = (r as i64).wrapping_add(zigzag_decode(uvarint_at(body, &mut at)?)) as u64;
            chunks.push(ChunkMeta {
                min_time,
                max_time,
                chunk_ref: ChunkRef(r),
            });
            t0 = max_time;
        }
    }
    Some(RawSeries { label_refs, chunks })
}

/// Total bytes of the chunk record at the start of `b` (uvarint length, encoding, data, CRC)
/// and the size of its length field.
fn chunk_record_len(b: &[u8]) -> Option<(u64, usize)> {
    let (len, n) = read_uvarint(&b[..b.len().min(hypnos_tsdb::chunks::MAX_CHUNK_LEN_FIELD)]).ok()?;
    Some((len.checked_add(n as u64)?.checked_add(5)?, n))
}

/// The chunk at `off` (checked to lie in the segment) of a mapped segment.
fn mapped_chunk_at(key: &str, map: &MappedSegment, off: u64) -> Result<FetchedChunk, BlockError> {
    let all = map.bytes();
    let record = &all[off as usize..];
    let (range, encoding) = chunk_in(key, record, off)?;
    Ok(FetchedChunk {
        encoding,
        hash: chunk_hash(&record[range.clone()]),
        data: all.slice(off as usize + range.start..off as usize + range.end),
    })
}

/// The chunk record at the start of `b` (at offset `off` of `key`), CRC checked: where its
/// data lies in `b`, and its TSDB encoding byte.
fn chunk_in(key: &str, b: &[u8], off: u64) -> Result<(Range<usize>, u8), BlockError> {
    let (chunk, total) = parse_chunk_record(b, off).map_err(|e| BlockError::from_tsdb(key, e))?;
    // The data ends where the 4-byte CRC that closes the record starts.
    let end = total - 4;
    Ok((end - chunk.data.len()..end, chunk.encoding.to_byte()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn coalesced_reads_cover_every_range(
            raw in proptest::collection::vec((0u64..1_000_000, 1u64..5_000), 0..60),
            gap in 0u64..100_000,
            max_read in 1u64..200_000,
        ) {
            let ranges: Vec<Range<u64>> = raw.iter().map(|&(s, l)| s..s + l).collect();
            let (reads, covering) = coalesce(&ranges, gap, max_read);
            prop_assert_eq!(covering.len(), ranges.len());
            for (r, &m) in ranges.iter().zip(&covering) {
                let read = &reads[m];
                prop_assert!(read.start <= r.start && r.end <= read.end, "{:?} not in {:?}", r, read);
            }
            for w in reads.windows(2) {
                prop_assert!(w[0].start <= w[1].start);
            }
            // A read grows past `max_read` only by holding one range that is longer already.
            for (m, read) in reads.iter().enumerate() {
                let longest = ranges
                    .iter()
                    .zip(&covering)
                    .filter(|&(_, &c)| c == m)
                    .map(|(r, _)| r.end - r.start)
                    .max()
                    .unwrap_or(0);
                prop_assert!(read.end - read.start <= max_read.max(longest));
            }
            let total: u64 = reads.iter().map(|r| r.end - r.start).sum();
            let asked: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            prop_assert!(reads.len() <= ranges.len());
            prop_assert!(reads.is_empty() || total <= asked + gap * (ranges.len() as u64));
        }
    }

    /// A series entry (length, body, CRC) from raw fields; `extra` is appended to the body.
    fn entry(labels: &[(u64, u64)], chunks: &[(i64, u64, u64, i64)], extra: &[u8]) -> Vec<u8> {
        use hypnos_tsdb::encoding::{put_uvarint, zigzag_encode};
        let mut body = Vec::new();
        put_uvarint(&mut body, labels.len() as u64);
        for &(n, v) in labels {
            put_uvarint(&mut body, n);
            put_uvarint(&mut body, v);
        }
        put_uvarint(&mut body, chunks.len() as u64);
        for (i, &(t, d, dt, dr)) in chunks.iter().enumerate() {
            if i == 0 {
                put_uvarint(&mut body, zigzag_encode(t));
                put_uvarint(&mut body, dt);
                put_uvarint(&mut body, dr as u64);
            } else {
                put_uvarint(&mut body, d);
                put_uvarint(&mut body, dt);
                put_uvarint(&mut body, zigzag_encode(dr));
            }
        }
        body.extend_from_slice(extra);
        let mut out = Vec::new();
        put_uvarint(&mut out, body.len() as u64);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out
    }

    proptest! {
        /// The parser of cached (already checked) entries agrees with the TSDB's on every
        /// entry the TSDB accepts, and leaves the rest to it.
        #[test]
        fn checked_entries_parse_as_the_tsdb_parses_them(
            labels in proptest::collection::vec((0u64..(1 << 33), 0u64..300), 0..5),
            chunks in proptest::collection::vec((any::<i64>(), 0u64..(1 << 40), 0u64..(1 << 40), any::<i64>()), 0..5),
            extra in proptest::collection::vec(any::<u8>(), 0..3),
            cut in 0usize..8,
            flip in proptest::option::of((any::<proptest::sample::Index>(), any::<u8>())),
        ) {
            let mut b = entry(&labels, &chunks, &extra);
            b.truncate(b.len().saturating_sub(cut % 3 * cut));
            if let Some((i, x)) = flip {
                let i = i.index(b.len().max(1)).min(b.len().saturating_sub(1));
                if let Some(byte) = b.get_mut(i) {
                    *byte ^= x;
                }
            }
            let ours = parse_checked_entry(&b).map(|s| (s.label_refs, s.chunks));
            match parse_series_entry(&b, 0) {
                Ok(e) => prop_assert_eq!(ours, Some((e.label_refs, e.chunks))),
                // A broken CRC is the one thing the checked parser does not see.
                Err(e) if e.to_string().contains("checksum") => {}
                Err(_) => prop_assert_eq!(ours, None),
            }
        }
    }

    #[test]
    fn neighbouring_ranges_share_a_read() {
        let ranges = [100..200, 0..50, 250..300, 10_000..10_100];
        let (reads, covering) = coalesce(&ranges, 60, 1 << 20);
        assert_eq!(reads, vec![0..300, 10_000..10_100]);
        assert_eq!(covering, vec![0, 0, 0, 1]);
    }
}
