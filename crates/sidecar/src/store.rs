//! The StoreAPI over Prometheus: `Series` through streamed remote read (labels-only `Series`
//! through `/api/v1/series`), label APIs through the HTTP API, external labels appended to
//! everything and matched on the sidecar side (Thanos's `pkg/store/prometheus.go` semantics).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use hypnos_model::{Labels, Matcher};
use hypnos_storepb::chunk::raw_aggr_chunk;
use hypnos_storepb::convert::{label_set_to_proto, labels_to_proto, matchers_from_proto};
use hypnos_storepb::info::{InfoResponse, StoreInfo, TsdbInfo};
use hypnos_storepb::shard::ShardMatcher;
use hypnos_storepb::thanos::{
    AggrChunk, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, Series, SeriesRequest,
    SeriesResponse,
};
use hypnos_storepb::{SeriesStream, StoreApi, component};
use hypnos_tsdb::chunkenc::XorAppender;
use tokio::sync::RwLock;
use tonic::Status;

use crate::promclient::{PromClient, PromError, ReadStream};
use crate::prompb;

/// Samples per chunk when re-encoding a sampled (non-streamed) answer, as Thanos does.
const SAMPLES_PER_CHUNK: usize = 120;

/// What the sidecar knows about its Prometheus, refreshed periodically.
#[derive(Debug)]
pub struct PromState {
    external_labels: RwLock<Labels>,
    /// Lowest timestamp Prometheus holds, already clamped by `--min-time`.
    min_time: AtomicI64,
}

impl PromState {
    pub fn new(external_labels: Labels, min_time: i64) -> Self {
        PromState {
            external_labels: RwLock::new(external_labels),
            min_time: AtomicI64::new(min_time),
        }
    }

    pub async fn external_labels(&self) -> Labels {
        self.external_labels.read().await.clone()
    }

    pub async fn set_external_labels(&self, ls: Labels) {
        *self.external_labels.write().await = ls;
    }

    pub fn min_time(&self) -> i64 {
        self.min_time.load(Ordering::Relaxed)
    }

    pub fn set_min_time(&self, t: i64) {
        self.min_time.store(t, Ordering::Relaxed);
    }
}

/// A [`StoreApi`] answering from one Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusStore {
    client: PromClient,
    state: Arc<PromState>,
}

/// The outcome of checking request matchers against the external labels.
enum ExternalMatch {
    /// A matcher on an external label does not match its value: the answer is empty.
    NoMatch,
    /// The matchers left for Prometheus.
    Forward(Vec<Matcher>),
}

/// Thanos's `matchesExternalLabels`: matchers on external labels are decided here and dropped.
fn match_external(matchers: Vec<Matcher>, external: &Labels) -> ExternalMatch {
    let mut rest = Vec::with_capacity(matchers.len());
    for m in matchers {
        match external.get(&m.name) {
            Some(v) if !m.matches(v) => return ExternalMatch::NoMatch,
            Some(_) => {}
            None => rest.push(m),
        }
    }
    ExternalMatch::Forward(rest)
}

fn prom_status(e: PromError) -> Status {
    if e.is_unreachable() {
        Status::unavailable(e.to_string())
    } else {
        Status::internal(e.to_string())
    }
}

fn to_prompb_matcher(m: &Matcher) -> prompb::LabelMatcher {
    prompb::LabelMatcher {
        r#type: hypnos_storepb::convert::match_op_to_proto(m.op) as i32,
        name: m.name.clone(),
        value: m.value.clone(),
    }
}

/// Series labels with the external labels set (they win over series labels of the same name),
/// minus the replica labels the caller asked to drop from the external labels.
fn final_labels(series: Vec<prompb::Label>, external: &Labels, without: &[String]) -> Labels {
    let mut b = Labels::from_pairs(series.into_iter().map(|l| (l.name, l.value))).builder();
    for l in external.iter() {
        if without.contains(&l.name) {
            b.del(&l.name);
        } else {
            b.set(l.name.clone(), l.value.clone());
        }
    }
    b.build()
}

/// Re-encodes float samples into XOR chunks of [`SAMPLES_PER_CHUNK`].
fn xor_chunks(samples: &[prompb::Sample]) -> Result<Vec<AggrChunk>, Status> {
    let mut out = Vec::new();
    for part in samples.chunks(SAMPLES_PER_CHUNK) {
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            continue;
        };
        let mut app = XorAppender::new();
        for s in part {
            app.append(s.timestamp, s.value);
        }
        let chunk = raw_aggr_chunk(
            first.timestamp,
            last.timestamp,
            hypnos_storepb::chunk::TSDB_ENC_XOR,
            Bytes::from(app.into_bytes()),
        )
        .map_err(|e| Status::internal(e.to_string()))?;
        out.push(chunk);
    }
    Ok(out)
}

impl PrometheusStore {
    pub fn new(client: PromClient, state: Arc<PromState>) -> Self {
        PrometheusStore { client, state }
    }

    /// Reads every series of the query; Prometheus may split one series over several frames,
    /// which are merged back here.
    async fn read_series(
        &self,
        req: &SeriesRequest,
        matchers: &[Matcher],
        external: &Labels,
    ) -> Result<Vec<(Labels, Vec<AggrChunk>)>, Status> {
        let query = prompb::Query {
            start_timestamp_ms: req.min_time,
            end_timestamp_ms: req.max_time,
            matchers: matchers.iter().map(to_prompb_matcher).collect(),
            hints: Some(prompb::ReadHints {
                start_ms: req.min_time,
                end_ms: req.max_time,
                ..Default::default()
            }),
        };
        let shard = ShardMatcher::new(req.shard_info.as_ref());
        let mut out: Vec<(Labels, Vec<AggrChunk>)> = Vec::new();
        let mut push = |labels: Labels, chunks: Vec<AggrChunk>| {
            if !shard.matches(&labels) {
                return;
            }
            match out.last_mut() {
                Some((last, cs)) if *last == labels => cs.extend(chunks),
                _ => out.push((labels, chunks)),
            }
        };
        // Labels only: the series API spares Prometheus reading chunks, as Thanos does. It
        // refuses selectors that match the empty label set (`{a=~".*"}`), which remote read
        // takes, so those go the remote-read way.
        if req.skip_chunks {
            match self.client.series(req.min_time, req.max_time, matchers).await {
                Ok(sets) => {
                    for set in sets {
                        let labels: Vec<prompb::Label> = set
                            .into_iter()
                            .map(|(name, value)| prompb::Label { name, value })
                            .collect();
                        push(final_labels(labels, external, &req.without_replica_labels), Vec::new());
                    }
                    return Ok(out);
                }
                Err(PromError::Api { error_type, error, .. }) => {
                    tracing::debug!(%error_type, %error, "series API refused the selector; using remote read");
                }
                Err(e) => return Err(prom_status(e)),
            }
        }
        match self.client.remote_read(query).await.map_err(prom_status)? {
            ReadStream::Chunked(mut stream) => {
                while let Some(frame) = stream.next().await.map_err(prom_status)? {
                    for s in frame.chunked_series {
                        let labels = final_labels(s.labels, external, &req.without_replica_labels);
                        let mut chunks = Vec::with_capacity(if req.skip_chunks { 0 } else { s.chunks.len() });
                        if !req.skip_chunks {
                            for c in s.chunks {
                                let enc = u8::try_from(c.r#type).unwrap_or(0);
                                let chunk = raw_aggr_chunk(c.min_time_ms, c.max_time_ms, enc, c.data).map_err(|e| {
                                    Status::internal(format!(
                                        "remote read from {}: series {labels}: {e}",
                                        self.client.url()
                                    ))
                                })?;
                                chunks.push(chunk);
                            }
                        }
                        push(labels, chunks);
                    }
                }
            }
            ReadStream::Sampled(resp) => {
                // Older Prometheus: floats only (histograms are not part of sampled answers).
                for result in resp.results {
                    for ts in result.timeseries {
                        let labels = final_labels(ts.labels, external, &req.without_replica_labels);
                        let chunks = if req.skip_chunks {
                            Vec::new()
                        } else {
                            xor_chunks(&ts.samples)?
                        };
                        push(labels, chunks);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[tonic::async_trait]
impl StoreApi for PrometheusStore {
    async fn info(&self) -> Result<InfoResponse, Status> {
        let external = self.state.external_labels().await;
        let min_time = self.state.min_time();
        let set = label_set_to_proto(&external);
        Ok(InfoResponse {
            label_sets: vec![set.clone()],
            component_type: component::SIDECAR.to_string(),
            store: Some(StoreInfo {
                min_time,
                max_time: i64::MAX,
                supports_sharding: true,
                supports_without_replica_labels: true,
                tsdb_infos: vec![TsdbInfo {
                    labels: Some(set),
                    min_time,
                    max_time: i64::MAX,
                }],
                supports_projections: false,
            }),
            ..Default::default()
        })
    }

    async fn series(&self, mut req: SeriesRequest) -> Result<SeriesStream, Status> {
        // Don't ask for more than is available, `--min-time` included (Thanos does the same).
        req.min_time = req.min_time.max(self.state.min_time());
        let matchers = matchers_from_proto(&req.matchers)?;
        let external = self.state.external_labels().await;
        let matchers = match match_external(matchers, &external) {
            ExternalMatch::NoMatch => return Ok(Box::pin(futures::stream::empty())),
            ExternalMatch::Forward(ms) => ms,
        };
        if matchers.is_empty() {
            return Err(Status::invalid_argument(
                "no matchers specified (excluding external labels)",
            ));
        }
        if req.min_time > req.max_time {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let mut series = self.read_series(&req, &matchers, &external).await?;
        // Appending external labels (and dropping replica labels) can change the order
        // Prometheus sent, so the answer is re-sorted, and series that became equal merged.
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<(Labels, Vec<AggrChunk>)> = Vec::with_capacity(series.len());
        for (labels, chunks) in series {
            match merged.last_mut() {
                Some((last, cs)) if *last == labels => cs.extend(chunks),
                _ => merged.push((labels, chunks)),
            }
        }
        if req.limit > 0 {
            merged.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        let frames = merged.into_iter().map(|(labels, mut chunks)| {
            chunks.sort_by_key(|c| (c.min_time, c.max_time));
            Ok(SeriesResponse::series(Series {
                labels: labels_to_proto(&labels),
                chunks,
            }))
        });
        Ok(Box::pin(futures::stream::iter(frames.collect::<Vec<_>>())))
    }

    async fn label_names(&self, req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
        let matchers = matchers_from_proto(&req.matchers)?;
        let external = self.state.external_labels().await;
        let matchers = match match_external(matchers, &external) {
            ExternalMatch::NoMatch => return Ok(LabelNamesResponse::default()),
            ExternalMatch::Forward(ms) => ms,
        };
        let mut names = self
            .client
            .label_names(req.start, req.end, &matchers)
            .await
            .map_err(prom_status)?;
        if !names.is_empty() {
            names.extend(external.iter().map(|l| l.name.clone()));
        }
        names.retain(|n| !req.without_replica_labels.contains(n));
        names.sort();
        names.dedup();
        if req.limit > 0 {
            names.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        Ok(LabelNamesResponse {
            names,
            ..Default::default()
        })
    }

    async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
        if req.label.is_empty() {
            return Err(Status::invalid_argument("label name parameter cannot be empty"));
        }
        let matchers = matchers_from_proto(&req.matchers)?;
        let external = self.state.external_labels().await;
        let matchers = match match_external(matchers, &external) {
            ExternalMatch::NoMatch => return Ok(LabelValuesResponse::default()),
            ExternalMatch::Forward(ms) => ms,
        };
        if let Some(v) = external.get(&req.label) {
            return Ok(LabelValuesResponse {
                values: vec![v.to_string()],
                ..Default::default()
            });
        }
        if !req.label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Status::invalid_argument(format!(
                "label name {:?} is not a valid Prometheus label name",
                req.label
            )));
        }
        let mut values = self
            .client
            .label_values(&req.label, req.start, req.end, &matchers)
            .await
            .map_err(prom_status)?;
        values.sort();
        values.dedup();
        if req.limit > 0 {
            values.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        Ok(LabelValuesResponse {
            values,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypnos_model::MatchOp;

    fn ext() -> Labels {
        Labels::from_pairs([("cluster", "c1"), ("replica", "0")])
    }

    #[test]
    fn external_matchers_are_decided_here() {
        let ms = vec![Matcher::equal("__name__", "up"), Matcher::equal("cluster", "c1")];
        match match_external(ms, &ext()) {
            ExternalMatch::Forward(rest) => assert_eq!(rest, vec![Matcher::equal("__name__", "up")]),
            ExternalMatch::NoMatch => panic!("should match"),
        }
        let ms = vec![Matcher::equal("__name__", "up"), Matcher::equal("cluster", "c2")];
        assert!(matches!(match_external(ms, &ext()), ExternalMatch::NoMatch));
        let ms = vec![Matcher::new(MatchOp::RegexMatch, "replica", "0|1").unwrap()];
        assert!(matches!(match_external(ms, &ext()), ExternalMatch::Forward(r) if r.is_empty()));
    }

    #[test]
    fn external_labels_win_and_replica_labels_go() {
        let series = vec![
            prompb::Label {
                name: "__name__".into(),
                value: "up".into(),
            },
            prompb::Label {
                name: "cluster".into(),
                value: "series-own".into(),
            },
        ];
        let ls = final_labels(series.clone(), &ext(), &[]);
        assert_eq!(
            ls,
            Labels::from_pairs([("__name__", "up"), ("cluster", "c1"), ("replica", "0")])
        );
        let ls = final_labels(series, &ext(), &["replica".to_string()]);
        assert_eq!(ls, Labels::from_pairs([("__name__", "up"), ("cluster", "c1")]));
    }

    #[test]
    fn sampled_answers_become_xor_chunks_of_120() {
        let samples: Vec<prompb::Sample> = (0..250)
            .map(|i| prompb::Sample {
                value: i as f64,
                timestamp: i * 1000,
            })
            .collect();
        let chunks = xor_chunks(&samples).unwrap();
        assert_eq!(chunks.len(), 3);
        assert_eq!((chunks[0].min_time, chunks[0].max_time), (0, 119_000));
        assert_eq!((chunks[2].min_time, chunks[2].max_time), (240_000, 249_000));
        let raw = chunks[1].raw.as_ref().unwrap();
        let decoded = hypnos_tsdb::chunkenc::decode_all(hypnos_tsdb::Encoding::Xor, &raw.data).unwrap();
        assert_eq!(decoded.len(), 120);
        assert_eq!(decoded[0].0, 120_000);
    }
}
