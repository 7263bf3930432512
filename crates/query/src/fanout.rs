//! Fan-out: one StoreAPI request sent concurrently to every endpoint that may hold matching
//! data, the answers merged by series labels with identical chunks dropped, and failures turned
//! into warnings or an error depending on the partial-response strategy.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use hypnos_model::{Labels, Matcher};
use hypnos_storepb::api::{SeriesFrame, frames};
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

/// A chunk's time range and the hashes of its parts.
type ChunkId = (i64, i64, Vec<(u8, u64)>);

/// The hashes that identify a chunk: every part that is present.
fn chunk_key(c: &AggrChunk) -> Vec<(u8, u64)> {
    let parts: [(u8, &Option<Chunk>); 6] = [
        (0, &c.raw),
        (1, &c.count),
        (2, &c.sum),
        (3, &c.min),
        (4, &c.max),
        (5, &c.counter),
    ];
    parts
        .iter()
        .filter_map(|(i, p)| p.as_ref().map(|p| (*i, hash_or_compute(p))))
        .collect()
}

/// Drops chunks whose parts were all seen before (two stores serving the same block, or a
/// sidecar and a store gateway overlapping), then sorts by (min time, max time).
pub fn dedup_chunks(chunks: Vec<AggrChunk>) -> Vec<AggrChunk> {
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
    use bytes::Bytes;
    use hypnos_storepb::chunk::raw_aggr_chunk;

    #[test]
    fn identical_chunks_are_dropped_and_sorted() {
        let a = raw_aggr_chunk(10, 20, 1, Bytes::from_static(b"aa")).unwrap();
        let b = raw_aggr_chunk(0, 9, 1, Bytes::from_static(b"bb")).unwrap();
        let out = dedup_chunks(vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(out, vec![b, a]);
    }
}
