//! Fan-out: one StoreAPI request sent concurrently to every endpoint that may hold matching
//! data, the answers merged by series labels with identical chunks dropped, and failures turned
//! into warnings or an error depending on the partial-response strategy.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use hypnos_model::{Labels, Matcher};
use hypnos_storepb::api::{SeriesFrame, SeriesStream, frames};
use hypnos_storepb::chunk::hash_or_compute;
use hypnos_storepb::convert::{labels_from_proto, labels_to_proto, matchers_from_proto};
use hypnos_storepb::thanos::{
    AggrChunk, Chunk, LabelNamesRequest, LabelValuesRequest, PartialResponseStrategy, Series, SeriesRequest,
};
use tonic::Status;

use crate::endpoints::{Endpoint, EndpointSet};

/// Thanos's name for the label that `storeMatch[]` matchers select endpoints by.
pub const ADDRESS_LABEL: &str = "__address__";

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// An endpoint failed while partial response was disabled.
    #[error("{0}")]
    Aborted(String),
    #[error("invalid matchers: {0}")]
    InvalidMatchers(String),
}

impl From<FanoutError> for Status {
    fn from(e: FanoutError) -> Self {
        match e {
            FanoutError::Aborted(m) => Status::aborted(m),
            FanoutError::InvalidMatchers(m) => Status::invalid_argument(m),
        }
    }
}

/// One merged series: labels as the stores sent them (minus stripped replica labels) and the
/// distinct chunks of every store, sorted by (min time, max time).
#[derive(Clone, Debug, PartialEq)]
pub struct MergedSeries {
    pub labels: Labels,
    pub chunks: Vec<AggrChunk>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesResult {
    /// Sorted by labels, each label set once.
    pub series: Vec<MergedSeries>,
    pub warnings: Vec<String>,
}

/// Whether partial response is allowed for a request (Thanos honours the deprecated bool too).
pub fn is_abort(disabled: bool, strategy: i32) -> bool {
    disabled || strategy == PartialResponseStrategy::Abort as i32
}

pub fn strategy(partial_response: bool) -> i32 {
    if partial_response {
        PartialResponseStrategy::Warn as i32
    } else {
        PartialResponseStrategy::Abort as i32
    }
}

fn rpc_error(s: &Status) -> String {
    format!("rpc error: code = {:?} desc = {}", s.code(), s.message())
}

/// Sends StoreAPI requests to the endpoints of a set.
#[derive(Clone, Debug)]
pub struct Fanout {
    pub set: Arc<EndpointSet>,
}

impl Fanout {
    pub fn new(set: Arc<EndpointSet>) -> Self {
        Fanout { set }
    }

    /// Endpoints whose time range and external labels fit, and whose address matches one of
    /// the `storeMatch[]` sets (all endpoints when there are none).
    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher], store_match: &[Vec<Matcher>]) -> Vec<Arc<Endpoint>> {
        self.set
            .endpoints
            .iter()
            .filter(|e| e.matches(mint, maxt, matchers))
            .filter(|e| {
                store_match.is_empty()
                    || store_match.iter().any(|set| {
                        set.iter()
                            .filter(|m| m.name == ADDRESS_LABEL)
                            .all(|m| m.matches(&e.addr))
                    })
            })
            .cloned()
            .collect()
    }

    /// Fans a `Series` request out and merges the answers.
    pub async fn series(&self, req: SeriesRequest, store_match: &[Vec<Matcher>]) -> Result<SeriesResult, FanoutError> {
        let matchers = matchers_from_proto(&req.matchers).map_err(|e| FanoutError::InvalidMatchers(e.to_string()))?;
        let abort = is_abort(req.partial_response_disabled, req.partial_response_strategy);
        let targets = self.select(req.min_time, req.max_time, &matchers, store_match);
        let calls = targets.iter().map(|ep| {
            let req = req.clone();
            let ep = ep.clone();
            async move {
                let mut out = Vec::new();
                let mut warnings = Vec::new();
                let res: Result<(), Status> = async {
                    let mut stream = ep.api.series(req).await?;
                    while let Some(frame) = futures::StreamExt::next(&mut stream).await {
                        for f in frames(frame?) {
                            match f {
                                SeriesFrame::Series(s) => out.push(s),
                                SeriesFrame::Warning(w) => warnings.push(w),
                                SeriesFrame::Hints(_) => {}
                            }
                        }
                    }
                    Ok(())
                }
                .await;
                (ep.addr.clone(), res, out, warnings)
            }
        });
        let answers = futures::future::join_all(calls).await;
        let strip: Vec<&str> = req.without_replica_labels.iter().map(String::as_str).collect();
        let mut merged: BTreeMap<Labels, Vec<AggrChunk>> = BTreeMap::new();
        let mut warnings = Vec::new();
        for (addr, res, series, store_warnings) in answers {
            if let Err(s) = res {
                let msg = format!("receive series from {addr}: {}", rpc_error(&s));
                if abort {
                    return Err(FanoutError::Aborted(msg));
                }
                tracing::warn!(endpoint = %addr, error = %msg, "endpoint failed, answering with partial data");
                warnings.push(msg);
            }
            for w in store_warnings {
                if abort {
                    return Err(FanoutError::Aborted(format!("{addr}: {w}")));
                }
                warnings.push(w);
            }
            for s in series {
                let mut labels = labels_from_proto(s.labels);
                if !strip.is_empty() {
                    labels = labels.without(&strip);
                }
                merged.entry(labels).or_default().extend(s.chunks);
            }
        }
        let series = merged
            .into_iter()
            .map(|(labels, chunks)| MergedSeries {
                labels,
                chunks: dedup_chunks(chunks),
            })
            .collect();
        Ok(SeriesResult { series, warnings })
    }

    /// Fans a `Series` request out and merges the answers as they stream in, relying on
    /// each endpoint's series being sorted by labels (the StoreAPI contract Thanos's lazy
    /// retrieval relies on too): only the series being merged is in memory, and the querier
    /// works while the stores still send. Labels must not be stripped here (stripping can
    /// reorder series); [`Fanout::series`] handles that case by buffering.
    pub async fn series_stream(
        &self,
        req: SeriesRequest,
        store_match: &[Vec<Matcher>],
    ) -> Result<BoxStream<'static, Result<MergeEvent, FanoutError>>, FanoutError> {
        let matchers = matchers_from_proto(&req.matchers).map_err(|e| FanoutError::InvalidMatchers(e.to_string()))?;
        let abort = is_abort(req.partial_response_disabled, req.partial_response_strategy);
        let mut calls = Vec::new();
        let split = time_split(&req);
        for ep in self.select(req.min_time, req.max_time, &matchers, store_match) {
            let halves = match (&ep.second_lane, split.as_slice()) {
                (Some(second), &[first_half, second_half]) => {
                    vec![(ep.api.clone(), first_half), (second.clone(), second_half)]
                }
                _ => vec![(ep.api.clone(), (req.min_time, req.max_time))],
            };
            for (api, (min_time, max_time)) in halves {
                let req = SeriesRequest {
                    min_time,
                    max_time,
                    ..req.clone()
                };
                let addr = ep.addr.clone();
                calls.push(async move { (addr, api.series(req).await) });
            }
        }
        let mut merge = LazyMerge {
            sources: Vec::new(),
            abort,
            events: VecDeque::new(),
            done: false,
        };
        for (addr, res) in futures::future::join_all(calls).await {
            match res {
                Ok(stream) => merge.sources.push(Source {
                    addr,
                    stream: Some(stream),
                    pending: VecDeque::new(),
                    head: None,
                    last: None,
                }),
                Err(s) => {
                    let msg = format!("receive series from {addr}: {}", rpc_error(&s));
                    if abort {
                        return Err(FanoutError::Aborted(msg));
                    }
                    tracing::warn!(endpoint = %addr, error = %msg, "endpoint failed, answering with partial data");
                    merge.events.push_back(MergeEvent::Warning(msg));
                }
            }
        }
        Ok(futures::stream::unfold(merge, |mut m| async move {
            let item = m.next_event().await?;
            Some((item, m))
        })
        .boxed())
    }

    /// Fans a `LabelNames` request out; sorted, unique names and the warnings.
    pub async fn label_names(
        &self,
        req: LabelNamesRequest,
        store_match: &[Vec<Matcher>],
    ) -> Result<(Vec<String>, Vec<String>), FanoutError> {
        let matchers = matchers_from_proto(&req.matchers).map_err(|e| FanoutError::InvalidMatchers(e.to_string()))?;
        let abort = is_abort(req.partial_response_disabled, req.partial_response_strategy);
        let targets = self.select(req.start, req.end, &matchers, store_match);
        let calls = targets.iter().map(|ep| {
            let req = req.clone();
            async move { (ep.addr.clone(), ep.api.label_names(req).await) }
        });
        let mut names = BTreeSet::new();
        let mut warnings = Vec::new();
        for (addr, res) in futures::future::join_all(calls).await {
            match res {
                Ok(r) => {
                    names.extend(r.names);
                    warnings.extend(r.warnings);
                }
                Err(s) => {
                    let msg = format!("receive label names from {addr}: {}", rpc_error(&s));
                    if abort {
                        return Err(FanoutError::Aborted(msg));
                    }
                    warnings.push(msg);
                }
            }
        }
        for r in &req.without_replica_labels {
            names.remove(r);
        }
        Ok((names.into_iter().collect(), warnings))
    }

    /// Fans a `LabelValues` request out; sorted, unique values and the warnings.
    pub async fn label_values(
        &self,
        req: LabelValuesRequest,
        store_match: &[Vec<Matcher>],
    ) -> Result<(Vec<String>, Vec<String>), FanoutError> {
        if req.without_replica_labels.contains(&req.label) {
            return Ok((Vec::new(), Vec::new()));
        }
        let matchers = matchers_from_proto(&req.matchers).map_err(|e| FanoutError::InvalidMatchers(e.to_string()))?;
        let abort = is_abort(req.partial_response_disabled, req.partial_response_strategy);
        let targets = self.select(req.start, req.end, &matchers, store_match);
        let calls = targets.iter().map(|ep| {
            let req = req.clone();
            async move { (ep.addr.clone(), ep.api.label_values(req).await) }
        });
        let mut values = BTreeSet::new();
        let mut warnings = Vec::new();
        for (addr, res) in futures::future::join_all(calls).await {
            match res {
                Ok(r) => {
                    values.extend(r.values);
                    warnings.extend(r.warnings);
                }
                Err(s) => {
                    let msg = format!("receive label values from {addr}: {}", rpc_error(&s));
                    if abort {
                        return Err(FanoutError::Aborted(msg));
                    }
                    warnings.push(msg);
                }
            }
        }
        Ok((values.into_iter().collect(), warnings))
    }
}

/// What the lazy merge hands out, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum MergeEvent {
    Series(MergedSeries),
    /// An endpoint's warning, or its failure under the partial-response "warn" strategy.
    Warning(String),
}

/// One endpoint's stream in a [`LazyMerge`].
struct Source {
    addr: String,
    /// None once the stream ended or failed.
    stream: Option<SeriesStream>,
    /// Series of a batch frame not yet taken.
    pending: VecDeque<Series>,
    /// The next series of this endpoint.
    head: Option<(Labels, Vec<AggrChunk>)>,
    /// Labels of the series before `head`, to catch an endpoint breaking the sort order.
    last: Option<Labels>,
}

impl Source {
    /// Loads the next series into `head` (leaves it empty at the end of the stream).
    async fn advance(&mut self, abort: bool, warnings: &mut Vec<String>) -> Result<(), FanoutError> {
        while self.head.is_none() {
            if let Some(s) = self.pending.pop_front() {
                let labels = labels_from_proto(s.labels);
                if let Some(last) = &self.last
                    && labels < *last
                {
                    return Err(FanoutError::Aborted(format!(
                        "receive series from {}: series out of order ({labels} after {last})",
                        self.addr
                    )));
                }
                self.last = Some(labels.clone());
                self.head = Some((labels, s.chunks));
                return Ok(());
            }
            let Some(stream) = self.stream.as_mut() else {
                return Ok(());
            };
            match futures::StreamExt::next(stream).await {
                Some(Ok(frame)) => {
                    for f in frames(frame) {
                        match f {
                            SeriesFrame::Series(s) => self.pending.push_back(s),
                            SeriesFrame::Warning(w) if abort => {
                                return Err(FanoutError::Aborted(format!("{}: {w}", self.addr)));
                            }
                            SeriesFrame::Warning(w) => warnings.push(w),
                            SeriesFrame::Hints(_) => {}
                        }
                    }
                }
                Some(Err(s)) => {
                    self.stream = None;
                    let msg = format!("receive series from {}: {}", self.addr, rpc_error(&s));
                    if abort {
                        return Err(FanoutError::Aborted(msg));
                    }
                    tracing::warn!(endpoint = %self.addr, error = %msg, "endpoint failed, answering with partial data");
                    warnings.push(msg);
                }
                None => self.stream = None,
            }
        }
        Ok(())
    }
}

/// A k-way merge of endpoint streams sorted by labels.
struct LazyMerge {
    sources: Vec<Source>,
    abort: bool,
    events: VecDeque<MergeEvent>,
    done: bool,
}

impl LazyMerge {
    async fn next_event(&mut self) -> Option<Result<MergeEvent, FanoutError>> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(Ok(e));
            }
            if self.done {
                return None;
            }
            match self.merge_next().await {
                Ok(Some(s)) => return Some(Ok(MergeEvent::Series(s))),
                Ok(None) if self.events.is_empty() => {
                    self.done = true;
                    return None;
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    /// The smallest label set among the endpoints' heads, with the chunks of every endpoint
    /// (and of consecutive frames of one endpoint) that sent it.
    async fn merge_next(&mut self) -> Result<Option<MergedSeries>, FanoutError> {
        let abort = self.abort;
        let mut warnings = Vec::new();
        // Endpoints whose head was taken read their next series concurrently.
        let fills = self
            .sources
            .iter_mut()
            .filter(|s| s.head.is_none())
            .map(|s| async move {
                let mut w = Vec::new();
                let r = s.advance(abort, &mut w).await;
                (r, w)
            });
        for (r, w) in futures::future::join_all(fills).await {
            warnings.extend(w);
            r?;
        }
        self.events.extend(warnings.drain(..).map(MergeEvent::Warning));
        let Some(min) = self
            .sources
            .iter()
            .filter_map(|s| s.head.as_ref().map(|h| &h.0))
            .min()
            .cloned()
        else {
            return Ok(None);
        };
        let mut chunks = Vec::new();
        for s in self.sources.iter_mut() {
            while s.head.as_ref().is_some_and(|h| h.0 == min) {
                if let Some((_, c)) = s.head.take() {
                    chunks.extend(c);
                }
                s.advance(abort, &mut warnings).await?;
            }
        }
        self.events.extend(warnings.into_iter().map(MergeEvent::Warning));
        Ok(Some(MergedSeries {
            labels: min,
            chunks: dedup_chunks(chunks),
        }))
    }
}

/// Requests reading more than this are split in two by time (see [`time_split`]).
const SPLIT_OVER_MS: i64 = 3 * 24 * 3_600_000;

/// Where a request is split: on a 2 h block boundary, so that chunks of 2 h blocks fall on
/// one side only.
const SPLIT_ALIGN_MS: i64 = 2 * 3_600_000;

/// The time ranges a `Series` request is sent as. A store answers one request on one core,
/// and over weeks of blocks the store, not the querier, is what a query waits for: two
/// halves are served at once, each on its own connection (`Endpoint::second_lane`). The merge
/// puts each series' chunks back together; a chunk of a longer block overlapping both halves
/// comes twice and `dedup_chunks` drops the copy.
fn time_split(req: &SeriesRequest) -> Vec<(i64, i64)> {
    let (min, max) = (req.min_time, req.max_time);
    if req.skip_chunks || max.saturating_sub(min) <= SPLIT_OVER_MS {
        return vec![(min, max)];
    }
    let mid = (min / 2 + max / 2).div_euclid(SPLIT_ALIGN_MS) * SPLIT_ALIGN_MS;
    if mid <= min || mid > max {
        return vec![(min, max)];
    }
    vec![(min, mid - 1), (mid, max)]
}

/// A chunk's time range and the hashes of its parts.
type ChunkId = (i64, i64, Vec<(u8, u64)>);

/// The hashes that identify a chunk: every part that is present.
fn chunk_key(c: &AggrChunk) -> Vec<(u8, u64)> {
    let parts: [(u8, Option<&Chunk>); 6] = [
        (0, c.raw.as_ref()),
        (1, c.count.as_deref()),
        (2, c.sum.as_deref()),
        (3, c.min.as_deref()),
        (4, c.max.as_deref()),
        (5, c.counter.as_deref()),
    ];
    parts
        .iter()
        .filter_map(|&(i, p)| p.map(|p| (i, hash_or_compute(p))))
        .collect()
}

/// Drops chunks whose parts were all seen before (two stores serving the same block, or a
/// sidecar and a store gateway overlapping), then sorts by (min time, max time).
pub fn dedup_chunks(chunks: Vec<AggrChunk>) -> Vec<AggrChunk> {
    // One store's series comes sorted, each chunk with its own time range: no two can be
    // the same chunk, and hashing every chunk's parts would cost more than its decoding.
    if chunks
        .windows(2)
        .all(|w| (w[0].min_time, w[0].max_time) < (w[1].min_time, w[1].max_time))
    {
        return chunks;
    }
    let mut seen: HashSet<ChunkId> = HashSet::new();
    let mut out: Vec<AggrChunk> = chunks
        .into_iter()
        .filter(|c| seen.insert((c.min_time, c.max_time, chunk_key(c))))
        .collect();
    out.sort_by_key(|c| (c.min_time, c.max_time));
    out
}

/// A merged series back in wire form.
pub fn to_proto(s: &MergedSeries) -> Series {
    Series {
        labels: labels_to_proto(&s.labels),
        chunks: s.chunks.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::Endpoint;
    use bytes::Bytes;
    use hypnos_storepb::chunk::raw_aggr_chunk;
    use hypnos_storepb::convert::matchers_to_proto;

    use futures::TryStreamExt;
    use hypnos_storepb::api::StoreApi;
    use hypnos_storepb::thanos::info::InfoResponse;
    use hypnos_storepb::thanos::{LabelNamesResponse, LabelValuesResponse, SeriesResponse};

    /// An endpoint that answers every `Series` call with the same frames.
    struct Scripted(Vec<Result<SeriesResponse, Status>>);

    #[tonic::async_trait]
    impl StoreApi for Scripted {
        async fn info(&self) -> Result<InfoResponse, Status> {
            Ok(InfoResponse::default())
        }
        async fn series(&self, _req: SeriesRequest) -> Result<SeriesStream, Status> {
            Ok(Box::pin(futures::stream::iter(self.0.clone())))
        }
        async fn label_names(&self, _req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
            Ok(LabelNamesResponse::default())
        }
        async fn label_values(&self, _req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
            Ok(LabelValuesResponse::default())
        }
    }

    fn series(name: &str, chunk_at: i64) -> Series {
        let data = Bytes::from(format!("{name}{chunk_at}"));
        Series {
            labels: labels_to_proto(&Labels::from_pairs([("__name__", name)])),
            chunks: vec![raw_aggr_chunk(chunk_at, chunk_at + 9, 1, data).unwrap()],
        }
    }

    fn fanout(endpoints: Vec<Vec<Result<SeriesResponse, Status>>>) -> Fanout {
        let endpoints = endpoints
            .into_iter()
            .enumerate()
            .map(|(i, frames)| Arc::new(Endpoint::new(format!("ep{i}"), Arc::new(Scripted(frames)))))
            .collect();
        Fanout::new(Arc::new(EndpointSet { endpoints }))
    }

    fn request(partial_response: bool) -> SeriesRequest {
        SeriesRequest {
            // Short enough not to be split by time: the scripted endpoints ignore the range.
            max_time: 3_600_000,
            matchers: matchers_to_proto(&[Matcher::new(hypnos_model::MatchOp::RegexMatch, "__name__", ".+").unwrap()]),
            partial_response_strategy: strategy(partial_response),
            ..Default::default()
        }
    }

    async fn lazy(f: &Fanout, partial_response: bool) -> Result<Vec<MergeEvent>, FanoutError> {
        f.series_stream(request(partial_response), &[])
            .await?
            .try_collect()
            .await
    }

    #[tokio::test]
    async fn lazy_merge_equals_the_buffered_merge() {
        let a = vec![
            Ok(SeriesResponse::series(series("a", 0))),
            // One series split over two frames, then a batch.
            Ok(SeriesResponse::series(series("c", 0))),
            Ok(SeriesResponse::series(series("c", 10))),
            Ok(SeriesResponse::batch(vec![series("d", 0), series("f", 0)])),
        ];
        let b = vec![
            Ok(SeriesResponse::series(series("b", 0))),
            // The same chunk as the other endpoint's: sent once.
            Ok(SeriesResponse::series(series("c", 10))),
            Ok(SeriesResponse::series(series("c", 20))),
            Ok(SeriesResponse::warning("b is slow")),
            Ok(SeriesResponse::series(series("e", 0))),
        ];
        let f = fanout(vec![a, b]);
        let events = lazy(&f, true).await.unwrap();
        let (mut got, mut warnings) = (Vec::new(), Vec::new());
        for e in events {
            match e {
                MergeEvent::Series(s) => got.push(s),
                MergeEvent::Warning(w) => warnings.push(w),
            }
        }
        let want = f.series(request(true), &[]).await.unwrap();
        assert_eq!(got, want.series);
        assert_eq!(warnings, want.warnings);
        let c = &got[2];
        assert_eq!(c.chunks.iter().map(|c| c.min_time).collect::<Vec<_>>(), vec![0, 10, 20]);
    }

    #[tokio::test]
    async fn lazy_merge_reports_failures_and_disorder() {
        let failing = || {
            vec![
                Ok(SeriesResponse::series(series("a", 0))),
                Err(Status::unavailable("gone")),
            ]
        };
        let healthy = vec![Ok(SeriesResponse::series(series("b", 0)))];
        // Partial response allowed: the failure is a warning and the rest is answered.
        let events = lazy(&fanout(vec![failing(), healthy.clone()]), true).await.unwrap();
        assert_eq!(events.iter().filter(|e| matches!(e, MergeEvent::Series(_))).count(), 2);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, MergeEvent::Warning(w) if w.contains("ep0") && w.contains("gone")))
        );
        // Not allowed: an error naming the endpoint.
        let err = lazy(&fanout(vec![failing(), healthy]), false).await.unwrap_err();
        assert!(err.to_string().contains("ep0"), "{err}");
        // An endpoint breaking the sort order is an error, never a silently wrong merge.
        let unsorted = vec![
            Ok(SeriesResponse::series(series("b", 0))),
            Ok(SeriesResponse::series(series("a", 0))),
        ];
        let err = lazy(&fanout(vec![unsorted]), true).await.unwrap_err();
        assert!(err.to_string().contains("out of order"), "{err}");
    }

    #[test]
    fn identical_chunks_are_dropped_and_sorted() {
        let a = raw_aggr_chunk(10, 20, 1, Bytes::from_static(b"aa")).unwrap();
        let b = raw_aggr_chunk(0, 9, 1, Bytes::from_static(b"bb")).unwrap();
        let out = dedup_chunks(vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(out, vec![b, a]);
    }

    #[test]
    fn long_requests_are_split_on_a_block_boundary() {
        let req = |min_time, max_time| SeriesRequest {
            min_time,
            max_time,
            ..Default::default()
        };
        assert_eq!(time_split(&req(0, SPLIT_OVER_MS)), vec![(0, SPLIT_OVER_MS)]);
        let day = 24 * 3_600_000;
        assert_eq!(
            time_split(&req(0, 14 * day)),
            vec![(0, 7 * day - 1), (7 * day, 14 * day)]
        );
        // The middle goes down to a 2 h boundary.
        let two_hours = 2 * 3_600_000;
        let parts = time_split(&req(-300_000, 14 * day));
        assert_eq!(
            parts,
            vec![(-300_000, 7 * day - two_hours - 1), (7 * day - two_hours, 14 * day)]
        );
        assert_eq!(time_split(&req(i64::MIN, i64::MAX)).len(), 2);
        let skip = SeriesRequest {
            skip_chunks: true,
            ..req(0, 14 * day)
        };
        assert_eq!(time_split(&skip).len(), 1);
    }

    /// A request split by time merges back into the samples of the whole request.
    #[tokio::test]
    async fn split_requests_merge_into_the_whole() {
        let mut store = crate::memstore::MemStore::new(Labels::default());
        let day = 24 * 3_600_000;
        for i in 0..3 {
            let samples: Vec<(i64, f64)> = (0..5 * 24 * 60)
                .map(|k| (k * 60_000 + i, (k * (i + 1)) as f64))
                .collect();
            store.add(&Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]), samples);
        }
        let store = Arc::new(store);
        let ep = Endpoint::new("mem".to_string(), store.clone()).with_second_lane(store);
        let f = Fanout::new(Arc::new(EndpointSet {
            endpoints: vec![Arc::new(ep)],
        }));
        let req = SeriesRequest {
            min_time: 3_600_000,
            max_time: 5 * day - 1,
            ..request(true)
        };
        assert_eq!(time_split(&req).len(), 2);
        let whole = f.series(req.clone(), &[]).await.unwrap().series;
        let events: Vec<MergeEvent> = f
            .series_stream(req.clone(), &[])
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let split: Vec<MergedSeries> = events
            .into_iter()
            .filter_map(|e| match e {
                MergeEvent::Series(s) => Some(s),
                MergeEvent::Warning(_) => None,
            })
            .collect();
        assert_eq!(split.len(), 3);
        for (a, b) in whole.iter().zip(&split) {
            assert_eq!(a.labels, b.labels);
            let decode = |s: &MergedSeries| {
                crate::dedup::decode_clipped(&s.chunks, req.min_time, req.max_time, None)
                    .unwrap()
                    .unwrap()
                    .0
            };
            assert_eq!(decode(a), decode(b));
        }
    }

    #[test]
    fn sorted_distinct_chunks_are_kept_as_they_are() {
        let a = raw_aggr_chunk(0, 9, 1, Bytes::from_static(b"aa")).unwrap();
        let b = raw_aggr_chunk(0, 12, 1, Bytes::from_static(b"bb")).unwrap();
        let c = raw_aggr_chunk(10, 20, 1, Bytes::from_static(b"cc")).unwrap();
        assert_eq!(
            dedup_chunks(vec![a.clone(), b.clone(), c.clone()]),
            vec![a.clone(), b.clone(), c.clone()]
        );
        // Same time range, different data (two replicas' chunks): both kept, in order.
        let a2 = raw_aggr_chunk(0, 9, 1, Bytes::from_static(b"a2")).unwrap();
        assert_eq!(
            dedup_chunks(vec![c.clone(), a.clone(), a2.clone(), a.clone()]),
            vec![a, a2, c]
        );
    }
}
