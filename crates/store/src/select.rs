//! The `Series` selection as a k-way merge of per-block cursors, so that memory holds a window
//! of series per block instead of every selected series of every block.
//!
//! A TSDB index stores series sorted by labels, and postings list them in that order, so a
//! block's series come out of its postings already sorted. What the store sends is not the
//! index's label set but that set with the block's external labels merged in and the
//! request's replica labels removed, which can change the order:
//!
//! - Inserting labels whose names no series of the block has keeps two series in order unless
//!   one series' labels are a strict prefix of the other's (`{a="1"}` < `{a="1",b="2"}`, but
//!   with `c="3"` inserted `{a="1",b="2",c="3"}` < `{a="1",c="3"}`). Series extending a given
//!   series lie right after it in index order, so such a cursor sorts each run of a series
//!   and its extensions, and only holds the longest such run (usually one series).
//! - Replacing or removing labels the block's series have (an external label of the same name
//!   as a series label, a replica label that is a series label) can reorder anything: such a
//!   block is read whole and sorted (the memory of the selection before this module).
//!
//! Cursors compare label sets through an order-preserving byte encoding ([`encode_key`]), so
//! merging is a heap of byte strings, and series equal across blocks (or, after removing
//! labels, within one) come out once with all their chunks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use hypnos_model::{Label, Labels};
use hypnos_storepb::shard::ShardMatcher;
use hypnos_tsdb::{ChunkMeta, SeriesRef};

use crate::block::{BucketBlock, RawSeries};
use crate::error::BlockError;

/// Series references read from a block's index per refill of its cursor.
const CURSOR_WINDOW: usize = 256;
/// Series references per read of the series section when a block is read whole.
const SERIES_BATCH: usize = 4096;

/// Where a chunk of a selected series lives: block index and chunk meta.
pub type ChunkSource = (usize, ChunkMeta);

/// What every cursor of one request applies to its block's series.
#[derive(Debug, Clone)]
pub struct SelectParams {
    pub mint: i64,
    pub maxt: i64,
    /// Replica labels to remove (`without_replica_labels`).
    pub without: Vec<String>,
    pub shard: ShardMatcher,
}

/// How a cursor gets its series in the order of the labels it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Labels sent are the index's labels: index order.
    Index,
    /// Labels are inserted whose names the block's series lack: runs of a series and its
    /// extensions are sorted.
    PrefixRuns,
    /// Labels of the series are replaced or removed: the block is read whole and sorted.
    Whole,
}

/// One series of one block, ready to merge.
#[derive(Debug)]
struct Item {
    key: Vec<u8>,
    chunks: Vec<ChunkMeta>,
}

/// A block's matching series in the order of their sent labels, read a window at a time.
#[derive(Debug)]
pub struct Cursor {
    pub bi: usize,
    pub block: Arc<BucketBlock>,
    refs: Vec<SeriesRef>,
    next_ref: usize,
    order: Order,
    ready: VecDeque<Item>,
    /// `PrefixRuns`: the current run (its first series' label references, and its items).
    run_head: Vec<(u32, u32)>,
    run: Vec<Item>,
}

impl Cursor {
    /// A cursor over `refs` (the block's postings for the request, sorted).
    pub fn new(bi: usize, block: Arc<BucketBlock>, refs: Vec<SeriesRef>, params: &SelectParams) -> Self {
        let has_name = |n: &str| block.label_names().any(|m| m == n);
        let rewrites_series =
            block.ext_labels.iter().any(|l| has_name(&l.name)) || params.without.iter().any(|w| has_name(w));
        let inserts = block.ext_labels.iter().any(|l| !params.without.contains(&l.name));
        let order = if rewrites_series {
            Order::Whole
        } else if inserts {
            Order::PrefixRuns
        } else {
            Order::Index
        };
        Cursor {
            bi,
            block,
            refs,
            next_ref: 0,
            order,
            ready: VecDeque::new(),
            run_head: Vec::new(),
            run: Vec::new(),
        }
    }

    fn is_done(&self) -> bool {
        self.ready.is_empty() && self.run.is_empty() && self.next_ref >= self.refs.len()
    }

    /// Reads series until one is ready or the block is exhausted.
    pub async fn fill(&mut self, params: &SelectParams) -> Result<(), BlockError> {
        let block = self.block.clone();
        let without: Vec<&str> = params.without.iter().map(String::as_str).collect();
        let mut view = Vec::new();
        while self.ready.is_empty() && !self.is_done() {
            if self.next_ref >= self.refs.len() {
                self.end_run();
                break;
            }
            let n = match self.order {
                Order::Whole => self.refs.len() - self.next_ref,
                _ => CURSOR_WINDOW,
            };
            let end = (self.next_ref + n).min(self.refs.len());
            let window = self.refs[self.next_ref..end].to_vec();
            self.next_ref = end;
            for part in window.chunks(SERIES_BATCH) {
                for mut s in block.raw_series(part).await? {
                    s.chunks.retain(|c| c.overlaps(params.mint, params.maxt));
                    if s.chunks.is_empty() {
                        continue;
                    }
                    block.label_view(&s, true, &without, &mut view);
                    // As Thanos: shards are assigned on the labels without the replica labels,
                    // so that replicas of a series land in the same shard.
                    if params.shard.is_sharded() && !params.shard.matches(&labels_of_view(&view)) {
                        continue;
                    }
                    let mut key =
                        Vec::with_capacity(view.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>() + 2);
                    encode_key(&view, &mut key);
                    self.push(s, key);
                }
            }
            if self.order == Order::Whole {
                self.ready.make_contiguous().sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        Ok(())
    }

    fn push(&mut self, s: RawSeries, key: Vec<u8>) {
        let item = Item { key, chunks: s.chunks };
        if self.order != Order::PrefixRuns {
            self.ready.push_back(item);
            return;
        }
        let extends_run = !self.run.is_empty()
            && s.label_refs.len() > self.run_head.len()
            && s.label_refs.starts_with(&self.run_head);
        if !extends_run {
            self.end_run();
            self.run_head = s.label_refs;
        }
        self.run.push(item);
    }

    fn end_run(&mut self) {
        if self.run.len() > 1 {
            self.run.sort_by(|a, b| a.key.cmp(&b.key));
        }
        self.ready.extend(self.run.drain(..));
    }

    fn pop(&mut self) -> Option<Item> {
        self.ready.pop_front()
    }
}

/// A failure of one block while merging.
#[derive(Debug)]
pub struct CursorFailure {
    pub bi: usize,
    pub error: BlockError,
}

/// A cursor's current series on the merge heap, ordered by key (then cursor).
#[derive(Debug)]
struct Head {
    key: Vec<u8>,
    ci: usize,
    chunks: Vec<ChunkMeta>,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.ci == other.ci
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key).then(self.ci.cmp(&other.ci))
    }
}

/// The merge of all cursors of a request: series in label order, each once, with its chunks
/// from every block in (min time, max time, block) order.
#[derive(Debug)]
pub struct Merge {
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<Head>>,
    params: SelectParams,
    limit: usize,
    sent: usize,
}

impl Merge {
    /// Starts the merge over cursors already filled (see [`Cursor::fill`]).
    pub fn new(mut cursors: Vec<Cursor>, params: SelectParams, limit: usize) -> Self {
        let mut heap = BinaryHeap::with_capacity(cursors.len());
        for (ci, c) in cursors.iter_mut().enumerate() {
            if let Some(item) = c.pop() {
                heap.push(Reverse(Head {
                    key: item.key,
                    ci,
                    chunks: item.chunks,
                }));
            }
        }
        Merge {
            cursors,
            heap,
            params,
            limit,
            sent: 0,
        }
    }

    /// The cursors' blocks, by cursor.
    pub fn block_of(&self, ci: usize) -> &Arc<BucketBlock> {
        &self.cursors[ci].block
    }

    /// Puts the next series of cursor `ci` on the heap, reading more of its block if needed.
    /// A failing cursor is dropped from the merge and reported.
    async fn advance(&mut self, ci: usize, failures: &mut Vec<CursorFailure>) {
        let cursor = &mut self.cursors[ci];
        if cursor.ready.is_empty()
            && let Err(error) = cursor.fill(&self.params).await
        {
            cursor.ready.clear();
            cursor.run.clear();
            cursor.next_ref = cursor.refs.len();
            failures.push(CursorFailure { bi: cursor.bi, error });
            return;
        }
        if let Some(item) = cursor.pop() {
            self.heap.push(Reverse(Head {
                key: item.key,
                ci,
                chunks: item.chunks,
            }));
        }
    }

    /// Up to `n` next series. Blocks that fail on the way are left out from then on and
    /// returned in `failures`. `sources` is a buffer to reuse for the batch's chunks.
    pub async fn next_batch(
        &mut self,
        n: usize,
        failures: &mut Vec<CursorFailure>,
        mut sources: Vec<ChunkSource>,
    ) -> Batch {
        sources.clear();
        let mut batch = Batch {
            series: Vec::with_capacity(n.min(self.limit.saturating_sub(self.sent))),
            sources,
        };
        while batch.series.len() < n && self.sent < self.limit {
            let Some(Reverse(Head { key, ci, chunks })) = self.heap.pop() else {
                break;
            };
            let from = batch.sources.len();
            let bi = self.cursors[ci].bi;
            batch.sources.extend(chunks.into_iter().map(|c| (bi, c)));
            self.advance(ci, failures).await;
            while self.heap.peek().is_some_and(|Reverse(h)| h.key == key) {
                let Some(Reverse(Head {
                    ci: cj, chunks: more, ..
                })) = self.heap.pop()
                else {
                    break;
                };
                let bj = self.cursors[cj].bi;
                batch.sources.extend(more.into_iter().map(|c| (bj, c)));
                self.advance(cj, failures).await;
            }
            let sources = &mut batch.sources[from..];
            let order = |&(bi, ref c): &ChunkSource| (c.min_time, c.max_time, bi);
            if !sources.is_sorted_by_key(order) {
                sources.sort_by_key(order);
            }
            batch.series.push((decode_key(&key), from..batch.sources.len()));
            self.sent += 1;
        }
        batch
    }
}

/// Series merged for one streamed batch: labels and where their chunks are in `sources`
/// (in (min time, max time, block) order), the chunks of all series in one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    pub series: Vec<(Labels, std::ops::Range<usize>)>,
    pub sources: Vec<ChunkSource>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

pub fn labels_of_view(view: &[(&str, &str)]) -> Labels {
    Labels::from_sorted_unchecked(view.iter().map(|&(n, v)| Label::new(n, v)).collect())
}

/// Appends `s` so that byte order of encodings is the order of strings: NUL is escaped as
/// `00 FF` and the string ends with `00 01`, lower than any byte that can follow.
fn encode_str(s: &str, out: &mut Vec<u8>) {
    for part in s.as_bytes().split(|&b| b == 0).enumerate() {
        if part.0 > 0 {
            out.extend_from_slice(&[0, 0xff]);
        }
        out.extend_from_slice(part.1);
    }
    out.extend_from_slice(&[0, 1]);
}

/// A label set as bytes whose order (memcmp) is Prometheus's label set order: label by label,
/// name then value, a prefix first (the set ends with `00 00`, lower than any label).
pub fn encode_key(view: &[(&str, &str)], out: &mut Vec<u8>) {
    for (n, v) in view {
        encode_str(n, out);
        encode_str(v, out);
    }
    out.extend_from_slice(&[0, 0]);
}

/// The label set of an [`encode_key`] encoding (of valid UTF-8 strings, as it always is here).
pub fn decode_key(key: &[u8]) -> Labels {
    let mut labels = Vec::with_capacity(8);
    let mut name: Option<String> = None;
    let mut rest = key;
    // Each string runs to its `00 01` end; an escaped NUL (`00 FF`) continues it.
    'strings: loop {
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let Some(z) = rest.iter().position(|&b| b == 0) else {
                break 'strings;
            };
            match rest.get(z + 1) {
                Some(0xff) => {
                    bytes.extend_from_slice(&rest[..z]);
                    bytes.push(0);
                }
                Some(1) => {
                    bytes.extend_from_slice(&rest[..z]);
                    rest = &rest[z + 2..];
                    break;
                }
                _ => break 'strings,
            }
            rest = &rest[z + 2..];
        }
        let s = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        match name.take() {
            None => name = Some(s),
            Some(name) => labels.push(Label { name, value: s }),
        }
    }
    Labels::from_sorted_unchecked(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(pairs: &[(String, String)]) -> Vec<u8> {
        let view: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut k = Vec::new();
        encode_key(&view, &mut k);
        k
    }

    fn labels(pairs: &[(String, String)]) -> Labels {
        Labels::from_sorted_unchecked(pairs.iter().map(|(n, v)| Label::new(n.clone(), v.clone())).collect())
    }

    fn label_set() -> impl Strategy<Value = Vec<(String, String)>> {
        // Few distinct characters (NUL, 0x01 and 0xff-adjacent code points included) so that
        // prefixes and equal names are frequent.
        let s = proptest::collection::vec(
            prop_oneof![Just('\0'), Just('\u{1}'), Just('a'), Just('b'), Just('ÿ')],
            0..4,
        )
        .prop_map(|cs| cs.into_iter().collect::<String>());
        proptest::collection::btree_map(s.clone(), s, 0..4).prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn key_order_is_label_order(a in label_set(), b in label_set()) {
            prop_assert_eq!(key(&a).cmp(&key(&b)), labels(&a).cmp(&labels(&b)));
        }

        #[test]
        fn keys_decode_to_their_labels(a in label_set()) {
            prop_assert_eq!(decode_key(&key(&a)), labels(&a));
        }
    }

    #[test]
    fn prefix_sorts_first() {
        let short = vec![("a".to_string(), "1".to_string())];
        let long = vec![("a".to_string(), "1".to_string()), ("b".to_string(), String::new())];
        assert!(key(&short) < key(&long));
    }
}
