//! The PromQL engine's storage for one query: every selector becomes a fan-out `Series` call,
//! whose merged answer is deduplicated (or not) and decoded into the engine's series.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use hypnos_model::{Matcher, Timestamp};
use hypnos_promql::{
    FPoint, FloatThinner, HPoint, Queryable, SelectHints, SeriesSet, SeriesStream, StorageError, StorageSeries,
    keep_samples_read,
};
use hypnos_storepb::convert::matchers_to_proto;
use hypnos_storepb::thanos::{
    Aggr, Func, Grouping, LabelNamesRequest, LabelValuesRequest, QueryHints, Range, SeriesRequest,
};

use crate::dedup::{self, Point, Value};
use crate::fanout::{Fanout, MergeEvent, MergedSeries, strategy};

/// Per-request choices: the HTTP API's `dedup`, `replicaLabels[]`, `partial_response`,
/// `storeMatch[]` and `max_source_resolution`.
#[derive(Clone, Debug, Default)]
pub struct QueryOptions {
    pub dedup: bool,
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    pub store_match: Vec<Vec<Matcher>>,
    pub max_resolution_ms: i64,
}

impl QueryOptions {
    /// Dedup needs both the request's consent and at least one replica label (as in Thanos).
    pub fn dedup_active(&self) -> bool {
        self.dedup && !self.replica_labels.is_empty()
    }

    fn without_replica_labels(&self) -> Vec<String> {
        if self.dedup_active() {
            self.replica_labels.clone()
        } else {
            Vec::new()
        }
    }
}

/// Which aggregates of downsampled chunks a selector's function needs (Thanos's
/// `aggrsFromFunc`); raw chunks are always used when present.
pub fn aggregates_for(func: Option<&str>) -> Vec<i32> {
    let f = func.unwrap_or("");
    let one = |a: Aggr| vec![a as i32];
    if f == "min" || f.starts_with("min_") {
        one(Aggr::Min)
    } else if f == "max" || f.starts_with("max_") {
        one(Aggr::Max)
    } else if f == "count" || f.starts_with("count_") {
        one(Aggr::Count)
    } else if f.starts_with("sum_") {
        one(Aggr::Sum)
    } else if matches!(f, "rate" | "increase" | "irate" | "resets" | "xrate" | "xincrease") {
        one(Aggr::Counter)
    } else {
        vec![Aggr::Count as i32, Aggr::Sum as i32]
    }
}

/// A [`Queryable`] over a fan-out, collecting the warnings of every call.
#[derive(Debug)]
pub struct FanoutQueryable {
    fanout: Fanout,
    opts: QueryOptions,
    warnings: Mutex<Vec<String>>,
}

impl FanoutQueryable {
    pub fn new(fanout: Fanout, opts: QueryOptions) -> Self {
        FanoutQueryable {
            fanout,
            opts,
            warnings: Mutex::new(Vec::new()),
        }
    }

    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    fn add_warnings(&self, w: Vec<String>) {
        if w.is_empty() {
            return;
        }
        if let Ok(mut all) = self.warnings.lock() {
            for x in w {
                if !all.contains(&x) {
                    all.push(x);
                }
            }
        }
    }

    pub fn series_request(&self, hints: &SelectHints, matchers: &[Matcher], skip_chunks: bool) -> SeriesRequest {
        let func = hints.func.as_deref();
        SeriesRequest {
            min_time: hints.start,
            max_time: hints.end,
            matchers: matchers_to_proto(matchers),
            max_resolution_window: self.opts.max_resolution_ms,
            aggregates: aggregates_for(func),
            partial_response_strategy: strategy(self.opts.partial_response),
            skip_chunks,
            step: hints.step,
            range: hints.range,
            query_hints: Some(QueryHints {
                step_millis: hints.step,
                func: func.map(|f| Func { name: f.to_string() }),
                grouping: if hints.grouping.is_empty() && !hints.by {
                    None
                } else {
                    Some(Grouping {
                        by: hints.by,
                        labels: hints.grouping.clone(),
                    })
                },
                range: (hints.range > 0).then_some(Range { millis: hints.range }),
                ..Default::default()
            }),
            without_replica_labels: self.opts.without_replica_labels(),
            ..Default::default()
        }
    }

    /// Fetches merged series (labels with chunks); the `/api/v1/series` path uses it with
    /// `skip_chunks`.
    pub async fn fetch(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
        skip_chunks: bool,
    ) -> Result<Vec<MergedSeries>, StorageError> {
        let req = self.series_request(hints, matchers, skip_chunks);
        let res = self
            .fanout
            .series(req, &self.opts.store_match)
            .await
            .map_err(|e| StorageError::Other(e.to_string()))?;
        self.add_warnings(res.warnings);
        Ok(res.series)
    }
}

/// Series handed to one decoding task at most.
const DECODE_BATCH: usize = 8;
/// Decoding tasks running ahead of the engine: one being decoded while the engine works
/// through the other is enough to keep both cores busy; each more holds a batch of decoded
/// series (8 x 92 KB for a day of 15 s samples read by a 5 m range).
const DECODE_AHEAD: usize = 2;
/// Below this many chunk bytes a batch is decoded in place: handing it to another worker
/// costs more (a wake-up and a context switch) than decoding it.
const DECODE_ELSEWHERE_BYTES: usize = 32 << 10;

/// Decodes merged series on the runtime's other workers while the engine evaluates the ones
/// before them, keeping their order. Decoding is most of the querier's CPU time on a large
/// selection, and the engine's own work per series can then overlap it: on two cores the
/// querier was the slower end of the store → querier pipeline.
fn decode_ahead<'a>(
    merged: impl futures::Stream<Item = Result<MergedSeries, StorageError>> + Send + 'a,
    counter: bool,
    hints: Arc<SelectHints>,
) -> impl futures::Stream<Item = Result<Arc<StorageSeries>, StorageError>> + Send + 'a {
    merged
        .ready_chunks(DECODE_BATCH)
        .map(move |batch| {
            let hints = hints.clone();
            let bytes: usize = batch
                .iter()
                .flatten()
                .flat_map(|s| &s.chunks)
                .filter_map(|c| c.raw.as_ref())
                .map(|raw| raw.data.len())
                .sum();
            let job = move || -> Vec<Result<Arc<StorageSeries>, StorageError>> {
                batch
                    .into_iter()
                    .filter_map(|s| match s {
                        Ok(s) => decode_series(s, counter, &hints, false)
                            .map(|s| s.map(Arc::new))
                            .transpose(),
                        Err(e) => Some(Err(e)),
                    })
                    .collect()
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) if bytes >= DECODE_ELSEWHERE_BYTES => rt
                    .spawn(async move { job() })
                    .map(|done| {
                        done.unwrap_or_else(|e| vec![Err(StorageError::Other(format!("decoding series: {e}")))])
                    })
                    .left_future(),
                _ => futures::future::ready(job()).right_future(),
            }
        })
        .buffered(DECODE_AHEAD)
        .flat_map(futures::stream::iter)
}

/// A merged series' chunks decoded into the engine's series, deduplicated across replicas when
/// `dedup_active`, its floats thinned by the step grid as they are decoded.
fn decode_series(
    s: MergedSeries,
    counter: bool,
    hints: &SelectHints,
    dedup_active: bool,
) -> Result<Option<StorageSeries>, StorageError> {
    // A selector on the step grid reads only part of the samples: an instant selector
    // with a 5 m step over 15 s scrapes 1 in 20. Floats are thinned as they are decoded;
    // each kind is thinned on its own: the newest sample before a step is the newer of
    // the newest of each kind. (Not the histograms that histogram_count and friends read:
    // they detect counter resets sample by sample.)
    let thin = hints
        .eval_first
        .map(|first| FloatThinner::new(first, hints.step, hints.end, hints.range).with_window(first - hints.start));
    if !dedup_active
        && let Some((mut floats, mut histograms)) = dedup::decode_clipped(&s.chunks, hints.start, hints.end, thin)
            .map_err(|e| StorageError::Other(format!("series {}: {e}", s.labels)))?
    {
        if floats.is_empty() && histograms.is_empty() {
            return Ok(None);
        }
        // Range selectors reserve for every sample of the chunks but may keep few.
        if floats.capacity() > floats.len() + floats.len() / 4 {
            floats.shrink_to_fit();
        }
        if let Some(first) = hints.eval_first
            && !hints.histogram_stats
        {
            keep_samples_read(&mut histograms, first, hints.step, hints.end, hints.range);
            histograms.shrink_to_fit();
        }
        return Ok(Some(StorageSeries {
            labels: s.labels,
            floats,
            histograms,
        }));
    }
    let points = if dedup_active {
        dedup::dedup_series(&s.chunks, counter)
    } else {
        dedup::decode_chunks(&s.chunks).map(dedup::sort_unique)
    }
    .map_err(|e| StorageError::Other(format!("series {}: {e}", s.labels)))?;
    if points.is_empty() {
        return Ok(None);
    }
    let mut out = StorageSeries {
        labels: s.labels.clone(),
        ..Default::default()
    };
    for Point { t, v } in points {
        match v {
            Value::Float(v) => out.floats.push(FPoint { t, v }),
            Value::Histogram(h) => out.histograms.push(HPoint { t, h }),
        }
    }
    Ok(Some(out))
}

impl Queryable for FanoutQueryable {
    fn select<'a>(
        &'a self,
        hints: &'a SelectHints,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<SeriesSet, StorageError>> {
        self.select_stream(hints, matchers).try_collect().boxed()
    }

    fn select_stream<'a>(&'a self, hints: &'a SelectHints, matchers: &'a [Matcher]) -> SeriesStream<'a> {
        let counter = dedup::is_counter_func(hints.func.as_deref());
        let dedup_active = self.opts.dedup_active();
        let decode = move |s: MergedSeries| {
            decode_series(s, counter, hints, dedup_active)
                .map(|s| s.map(Arc::new))
                .transpose()
        };
        if self.opts.dedup_active() {
            // Stripping replica labels can reorder series: merge after buffering them all.
            // Each series is still decoded only when the engine asks for it.
            return futures::stream::once(self.fetch(hints, matchers, false))
                .map_ok(move |merged| futures::stream::iter(merged.into_iter().filter_map(decode)))
                .try_flatten()
                .boxed();
        }
        let req = self.series_request(hints, matchers, false);
        let opened = async move {
            self.fanout
                .series_stream(req, &self.opts.store_match)
                .await
                .map_err(|e| StorageError::Other(e.to_string()))
        };
        let shared_hints = Arc::new(hints.clone());
        futures::stream::once(opened)
            .map_ok(move |merge| {
                let merged = merge.filter_map(move |event| {
                    let out = match event {
                        Ok(MergeEvent::Series(s)) => Some(Ok(s)),
                        Ok(MergeEvent::Warning(w)) => {
                            self.add_warnings(vec![w]);
                            None
                        }
                        Err(e) => Some(Err(StorageError::Other(e.to_string()))),
                    };
                    futures::future::ready(out)
                });
                decode_ahead(merged, counter, shared_hints.clone())
            })
            .try_flatten()
            .boxed()
    }

    fn label_names<'a>(
        &'a self,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        Box::pin(async move {
            let req = LabelNamesRequest {
                start,
                end,
                matchers: matchers_to_proto(matchers),
                partial_response_strategy: strategy(self.opts.partial_response),
                without_replica_labels: self.opts.without_replica_labels(),
                ..Default::default()
            };
            let (names, warnings) = self
                .fanout
                .label_names(req, &self.opts.store_match)
                .await
                .map_err(|e| StorageError::Other(e.to_string()))?;
            self.add_warnings(warnings);
            Ok(names)
        })
    }

    fn label_values<'a>(
        &'a self,
        name: &'a str,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        Box::pin(async move {
            let req = LabelValuesRequest {
                label: name.to_string(),
                start,
                end,
                matchers: matchers_to_proto(matchers),
                partial_response_strategy: strategy(self.opts.partial_response),
                without_replica_labels: self.opts.without_replica_labels(),
                ..Default::default()
            };
            let (values, warnings) = self
                .fanout
                .label_values(req, &self.opts.store_match)
                .await
                .map_err(|e| StorageError::Other(e.to_string()))?;
            self.add_warnings(warnings);
            Ok(values)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypnos_model::Labels;

    /// Series big enough to be decoded on other workers come back complete and in order,
    /// mixed with small ones decoded in place and with an error in the stream.
    #[test]
    fn decoding_ahead_keeps_the_order() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let merged: Vec<Result<MergedSeries, StorageError>> = (0..100)
            .map(|i: i64| {
                if i == 77 {
                    return Err(StorageError::Other("store went away".into()));
                }
                // Every third series is a day of 15 s samples (tens of KiB of chunks).
                let n = if i % 3 == 0 { 5760 } else { 3 };
                let samples: Vec<(i64, f64)> = (0..n).map(|k| (k * 15_000, (i * 1000 + k) as f64)).collect();
                Ok(MergedSeries {
                    labels: Labels::from_pairs([("i", format!("{i:03}"))]),
                    chunks: crate::memstore::encode_xor_chunks(&samples),
                })
            })
            .collect();
        let hints = Arc::new(SelectHints {
            start: 0,
            end: i64::MAX,
            ..Default::default()
        });
        let got: Vec<Result<Arc<StorageSeries>, StorageError>> =
            rt.block_on(decode_ahead(futures::stream::iter(merged), false, hints).collect());
        assert_eq!(got.len(), 100);
        for (i, s) in got.iter().enumerate() {
            let i = i as i64;
            match s {
                Err(e) => assert_eq!((i, e.to_string()), (77, "store went away".to_string())),
                Ok(s) => {
                    assert_eq!(s.labels.get("i"), Some(format!("{i:03}").as_str()));
                    let n = if i % 3 == 0 { 5760 } else { 3 };
                    assert_eq!(s.floats.len(), n);
                    assert_eq!(s.floats.last().map(|p| p.v), Some((i * 1000 + n as i64 - 1) as f64));
                }
            }
        }
    }
}
