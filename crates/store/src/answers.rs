//! The `Series` answers of one request, built as the gRPC encoder asks for them.
//!
//! The answers are produced by the stream the encoder polls, not by a task of their own
//! feeding a channel: the encoder encodes each answer before it asks for the next, so one
//! task builds and encodes them, without a wake-up and a context switch per answer, and the
//! memory of an answer is allocated and freed by the same thread.
//!
//! That order is also what makes handing back mapped pages safe and cheap: when the encoder
//! asks for an answer, every answer before it has been encoded, so the pages their chunks
//! touched can be released ([`TouchedPages`]). Pages are released once the estimated resident
//! size reaches [`RELEASE_BYTES`] (and when the request ends), not after a fixed number of
//! answers: each `MADV_DONTNEED` costs a TLB shootdown on every CPU running the process.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use hypnos_model::Labels;
use hypnos_storepb::chunk::encoding_from_tsdb;
use hypnos_storepb::thanos::{AggrChunk, Chunk, Label as ProtoLabel, Series, SeriesResponse};
use hypnos_tsdb::ChunkRef;
use tonic::Status;

use crate::block::{BucketBlock, FetchedChunk};
use crate::select::{Batch, ChunkSource, CursorFailure, Merge};
use crate::store::BucketStore;

/// Series per streamed batch (chunks of a batch from ranged reads are read together).
const STREAM_BATCH: usize = 256;
/// Blocks whose chunks of a batch are read at once.
const BLOCK_READ_CONCURRENCY: usize = 8;
/// Estimated resident bytes of mapped segments after which the pages read are handed back.
pub const RELEASE_BYTES: u64 = 2 << 20;
/// Granularity of the resident estimate: a fault on a mapped page maps the pages around it
/// that the page cache holds (the kernel's `fault_around_bytes`, 64 KiB).
const FAULT_WINDOW: u64 = 64 << 10;

/// The span of a segment that answers read since the last release.
#[derive(Debug, Clone, Copy)]
struct SegmentSpan {
    segment: u32,
    /// Offset of the first and of the last chunk read.
    lo: u64,
    last: u64,
    /// Fault window of the chunk read last.
    window: u64,
}

/// The mapped pages read by answers already encoded or being built, per block, and an
/// estimate of how much of them is resident (fault windows entered, counted each time a
/// segment's reads move to another window).
#[derive(Debug, Default)]
pub struct TouchedPages {
    spans: Vec<Vec<SegmentSpan>>,
    resident: u64,
}

impl TouchedPages {
    pub fn new(blocks: usize) -> Self {
        TouchedPages {
            spans: vec![Vec::new(); blocks],
            resident: 0,
        }
    }

    /// Records that the chunk at `r` of block `bi` is read.
    pub fn touch(&mut self, bi: usize, r: ChunkRef) {
        let (segment, off) = (r.segment(), u64::from(r.offset()));
        let window = off / FAULT_WINDOW;
        let Some(spans) = self.spans.get_mut(bi) else {
            return;
        };
        match spans.iter_mut().find(|s| s.segment == segment) {
            Some(s) => {
                s.lo = s.lo.min(off);
                s.last = s.last.max(off);
                if s.window != window {
                    s.window = window;
                    self.resident += FAULT_WINDOW;
                }
            }
            None => {
                spans.push(SegmentSpan {
                    segment,
                    lo: off,
                    last: off,
                    window,
                });
                self.resident += FAULT_WINDOW;
            }
        }
    }

    /// Estimated resident bytes of what was read since the last release.
    pub fn resident(&self) -> u64 {
        self.resident
    }

    /// Hands back the pages of the windows each segment's reads have moved past, keeping the
    /// window they are in. A block's chunks are read in the order they lie in its segments,
    /// so those pages are not read again by this request; the current window is: over 168
    /// blocks (14 days of 2 h blocks) every answer enters a window per block, and releasing
    /// those too made each of them fault again for every one of the hundreds of series whose
    /// chunks share it (store CPU of a 14-day query 3.8 -> 10.4 s).
    pub fn release_passed(&mut self, blocks: &[Arc<BucketBlock>]) {
        self.release_passed_with(|bi, segment, range| {
            if let Some(block) = blocks.get(bi) {
                block.release_range(segment, range);
            }
        });
    }

    /// [`TouchedPages::release_passed`] through `release(block index, segment, range)`.
    fn release_passed_with(&mut self, mut release: impl FnMut(usize, u32, std::ops::Range<u64>)) {
        for (bi, spans) in self.spans.iter_mut().enumerate() {
            for s in spans.iter_mut() {
                let current = s.window * FAULT_WINDOW;
                if s.lo < current {
                    release(bi, s.segment, s.lo..current);
                    s.lo = current;
                }
            }
        }
        self.resident = 0;
    }

    /// Hands back the pages read since the last release.
    pub fn release(&mut self, blocks: &[Arc<BucketBlock>]) {
        for (block, spans) in blocks.iter().zip(&mut self.spans) {
            for s in spans.drain(..) {
                block.release_span(s.segment, s.lo, s.last);
            }
        }
        self.resident = 0;
    }
}

/// What a `Series` request still has to send.
pub struct Answers {
    store: Arc<BucketStore>,
    blocks: Vec<Arc<BucketBlock>>,
    merge: Merge,
    skip_chunks: bool,
    abort: bool,
    warnings: Vec<String>,
    failed_blocks: HashSet<usize>,
    failures: Vec<CursorFailure>,
    /// The current batch: its series not sent yet, and the chunks of all its series.
    batch: std::vec::IntoIter<(Labels, std::ops::Range<usize>)>,
    sources: Vec<ChunkSource>,
    /// Per block of unmapped segments: the batch's chunk references, sorted, and their chunks.
    fetched: Vec<Option<(Vec<ChunkRef>, Vec<FetchedChunk>)>>,
    touched: TouchedPages,
    /// No more series: only warnings are left.
    merged: bool,
}

impl Answers {
    pub fn new(
        store: Arc<BucketStore>,
        blocks: Vec<Arc<BucketBlock>>,
        merge: Merge,
        skip_chunks: bool,
        abort: bool,
        warnings: Vec<String>,
    ) -> Self {
        let n = blocks.len();
        Answers {
            store,
            blocks,
            merge,
            skip_chunks,
            abort,
            warnings,
            failed_blocks: HashSet::new(),
            failures: Vec::new(),
            batch: Vec::new().into_iter(),
            sources: Vec::new(),
            fetched: Vec::new(),
            touched: TouchedPages::new(n),
            merged: false,
        }
    }

    /// The answers as a stream: each is built when the encoder asks for it.
    pub fn into_stream(self) -> hypnos_storepb::SeriesStream {
        Box::pin(futures::stream::unfold(self, |mut answers| async move {
            let next = answers.next().await?;
            Some((next, answers))
        }))
    }

    /// A block failed: warning to send later, or (partial responses disabled) the error that
    /// ends the stream.
    fn fail(&mut self, bi: usize, error: &crate::error::BlockError) -> Result<(), Status> {
        self.failed_blocks.insert(bi);
        match self.store.block_failure(&self.blocks[bi], error, self.abort) {
            Ok(w) => {
                self.warnings.push(w);
                Ok(())
            }
            Err(status) => {
                // Nothing follows an error.
                self.merged = true;
                self.warnings.clear();
                self.batch = Vec::new().into_iter();
                Err(status)
            }
        }
    }

    async fn next(&mut self) -> Option<Result<SeriesResponse, Status>> {
        // Every answer before this one is encoded: the pages they read may go.
        if self.touched.resident() >= RELEASE_BYTES {
            self.touched.release_passed(&self.blocks);
        }
        loop {
            if self.merged {
                return self.warnings.pop().map(|w| Ok(SeriesResponse::warning(w)));
            }
            let Some((labels, range)) = self.batch.next() else {
                if let Err(status) = self.next_batch().await {
                    return Some(Err(status));
                }
                continue;
            };
            let sources = std::mem::take(&mut self.sources);
            let answer = self.answer(labels, sources.get(range).unwrap_or_default());
            self.sources = sources;
            match answer {
                Ok(Some(series)) => return Some(Ok(SeriesResponse::series(series))),
                Ok(None) => {}
                Err(status) => return Some(Err(status)),
            }
        }
    }

    /// Merges the next batch (and reads its chunks that are not in mapped segments).
    async fn next_batch(&mut self) -> Result<(), Status> {
        let reuse = std::mem::take(&mut self.sources);
        let batch = self.merge.next_batch(STREAM_BATCH, &mut self.failures, reuse).await;
        let failures = std::mem::take(&mut self.failures);
        for CursorFailure { bi, error } in failures {
            self.fail(bi, &error)?;
        }
        if batch.is_empty() {
            self.merged = true;
            // Warnings go out in the order they were found.
            self.warnings.reverse();
            return Ok(());
        }
        self.fetched.clear();
        if !self.skip_chunks {
            let mut wanted: BTreeMap<usize, Vec<ChunkRef>> = BTreeMap::new();
            for (bi, c) in &batch.sources {
                if !self.failed_blocks.contains(bi) && !self.blocks[*bi].chunks_mapped() {
                    wanted.entry(*bi).or_default().push(c.chunk_ref);
                }
            }
            if !wanted.is_empty() {
                self.fetched = vec![None; self.blocks.len()];
                let blocks = &self.blocks;
                let results: Vec<_> = futures::stream::iter(wanted)
                    .map(|(bi, mut refs)| {
                        let block = blocks[bi].clone();
                        async move {
                            refs.sort_unstable();
                            refs.dedup();
                            let chunks = block.chunks(&refs).await;
                            (bi, refs, chunks)
                        }
                    })
                    .buffer_unordered(BLOCK_READ_CONCURRENCY)
                    .collect()
                    .await;
                for (bi, refs, result) in results {
                    match result {
                        Ok(chunks) => self.fetched[bi] = Some((refs, chunks)),
                        Err(e) => self.fail(bi, &e)?,
                    }
                }
            }
        }
        let Batch { series, sources } = batch;
        self.batch = series.into_iter();
        self.sources = sources;
        Ok(())
    }

    /// The answer for one series; `None` when none of its chunks could be read.
    fn answer(&mut self, labels: Labels, sources: &[ChunkSource]) -> Result<Option<Series>, Status> {
        let mut chunks = Vec::new();
        if !self.skip_chunks {
            chunks.reserve(sources.len());
            for &(bi, ref c) in sources {
                if self.failed_blocks.contains(&bi) {
                    continue;
                }
                let block = &self.blocks[bi];
                let f = if block.chunks_mapped() {
                    self.touched.touch(bi, c.chunk_ref);
                    match block.mapped_chunk(c.chunk_ref) {
                        Ok(f) => f,
                        Err(e) => {
                            self.fail(bi, &e)?;
                            continue;
                        }
                    }
                } else {
                    // Each chunk of a block belongs to one series: its data is moved out.
                    let Some(f) = self
                        .fetched
                        .get_mut(bi)
                        .and_then(Option::as_mut)
                        .and_then(|(refs, chunks)| {
                            let i = refs.binary_search(&c.chunk_ref).ok()?;
                            chunks.get_mut(i)
                        })
                    else {
                        continue;
                    };
                    std::mem::take(f)
                };
                match encoding_from_tsdb(f.encoding) {
                    Ok(encoding) => chunks.push(AggrChunk {
                        min_time: c.min_time,
                        max_time: c.max_time,
                        raw: Some(Chunk {
                            r#type: encoding as i32,
                            data: f.data,
                            hash: f.hash,
                        }),
                        ..AggrChunk::default()
                    }),
                    Err(e) => self.warnings.push(format!("block {}: {e}", block.id)),
                }
            }
            if chunks.is_empty() {
                return Ok(None);
            }
        }
        let metrics = &self.store.metrics;
        metrics.series_sent.inc();
        metrics.chunks_sent.inc_by(chunks.len() as u64);
        let labels = labels
            .into_vec()
            .into_iter()
            .map(|l| ProtoLabel {
                name: l.name,
                value: l.value,
            })
            .collect();
        Ok(Some(Series { labels, chunks }))
    }
}

impl Drop for Answers {
    fn drop(&mut self) {
        self.touched.release(&self.blocks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_estimate_counts_windows_entered() {
        let mut t = TouchedPages::new(2);
        t.touch(0, ChunkRef::new(0, 8));
        t.touch(0, ChunkRef::new(0, 100));
        assert_eq!(t.resident(), FAULT_WINDOW);
        t.touch(0, ChunkRef::new(0, 70_000));
        t.touch(1, ChunkRef::new(0, 8));
        t.touch(0, ChunkRef::new(1, 8));
        assert_eq!(t.resident(), 4 * FAULT_WINDOW);
        t.touch(5, ChunkRef::new(0, 8));
        assert_eq!(t.resident(), 4 * FAULT_WINDOW);
        // Releasing what was passed keeps each segment's current window.
        let mut released = Vec::new();
        t.release_passed_with(|bi, segment, range| released.push((bi, segment, range)));
        assert_eq!(released, vec![(0, 0, 8..FAULT_WINDOW)]);
        assert_eq!(t.resident(), 0);
        assert_eq!(t.spans[0][0].lo, FAULT_WINDOW);
        assert_eq!(t.spans[0][1].lo, 8);
        t.touch(0, ChunkRef::new(0, 70_100));
        assert_eq!(t.resident(), 0, "still in the window kept");
        t.touch(0, ChunkRef::new(0, 140_000));
        assert_eq!(t.resident(), FAULT_WINDOW);
    }
}
