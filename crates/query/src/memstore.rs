//! An in-memory StoreAPI endpoint: series held as samples, served as XOR chunks. Tests use it
//! to stand in for sidecars and store gateways with crafted replicas (gaps, overlaps, resets).

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use hypnos_model::{Labels, Matcher};
use hypnos_storepb::chunk::{TSDB_ENC_XOR, raw_aggr_chunk};
use hypnos_storepb::convert::{label_sets_to_proto, labels_to_proto, matchers_from_proto};
use hypnos_storepb::info::{InfoResponse, StoreInfo};
use hypnos_storepb::thanos::{
    AggrChunk, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, Series, SeriesRequest,
    SeriesResponse,
};
use hypnos_storepb::{SeriesStream, StoreApi};
use hypnos_tsdb::chunkenc::XorAppender;
use tokio::net::TcpListener;
use tonic::Status;

/// Prometheus cuts XOR chunks at 120 samples.
const SAMPLES_PER_CHUNK: usize = 120;

/// Encodes float samples (sorted by time) as XOR chunks of at most 120 samples each.
pub fn encode_xor_chunks(samples: &[(i64, f64)]) -> Vec<AggrChunk> {
    samples
        .chunks(SAMPLES_PER_CHUNK)
        .filter_map(|part| {
            let (first, last) = (part.first()?, part.last()?);
            let mut app = XorAppender::new();
            for &(t, v) in part {
                app.append(t, v);
            }
            raw_aggr_chunk(first.0, last.0, TSDB_ENC_XOR, Bytes::from(app.into_bytes())).ok()
        })
        .collect()
}

/// A StoreAPI endpoint over fixed series. Series labels include the external labels.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    pub external_labels: Labels,
    pub component: String,
    series: Vec<(Labels, Vec<(i64, f64)>)>,
}

impl MemStore {
    pub fn new(external_labels: Labels) -> Self {
        MemStore {
            external_labels,
            component: hypnos_storepb::component::SIDECAR.to_string(),
            series: Vec::new(),
        }
    }

    /// Adds a series; its labels get the store's external labels.
    pub fn add(&mut self, labels: &Labels, mut samples: Vec<(i64, f64)>) {
        let mut b = labels.builder();
        for l in self.external_labels.iter() {
            b.set(l.name.clone(), l.value.clone());
        }
        samples.sort_by_key(|s| s.0);
        self.series.push((b.build(), samples));
        self.series.sort_by(|a, b| a.0.cmp(&b.0));
    }

    fn time_range(&self) -> (i64, i64) {
        let min = self.series.iter().filter_map(|s| s.1.first()).map(|s| s.0).min();
        let max = self.series.iter().filter_map(|s| s.1.last()).map(|s| s.0).max();
        match (min, max) {
            (Some(a), Some(b)) => (a, b),
            _ => (i64::MAX, i64::MIN),
        }
    }

    fn matching<'a>(&'a self, ms: &'a [Matcher]) -> impl Iterator<Item = &'a (Labels, Vec<(i64, f64)>)> + 'a {
        self.series
            .iter()
            .filter(move |(l, _)| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
    }

    /// Serves this store on `listener` until the returned handle is aborted or dropped with
    /// the runtime.
    pub fn serve(self, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let _ = hypnos_storepb::server::serve(Arc::new(self), listener, std::future::pending()).await;
        })
    }
}

#[tonic::async_trait]
impl StoreApi for MemStore {
    async fn info(&self) -> Result<InfoResponse, Status> {
        let (min_time, max_time) = self.time_range();
        let sets = if self.external_labels.is_empty() {
            Vec::new()
        } else {
            vec![self.external_labels.clone()]
        };
        Ok(InfoResponse {
            label_sets: label_sets_to_proto(&sets),
            component_type: self.component.clone(),
            store: Some(StoreInfo {
                min_time,
                max_time,
                supports_without_replica_labels: true,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn series(&self, req: SeriesRequest) -> Result<SeriesStream, Status> {
        let ms = matchers_from_proto(&req.matchers)?;
        let strip: Vec<&str> = req.without_replica_labels.iter().map(String::as_str).collect();
        let mut out: Vec<(Labels, Vec<AggrChunk>)> = Vec::new();
        for (labels, samples) in self.matching(&ms) {
            let lo = samples.partition_point(|s| s.0 < req.min_time);
            let hi = samples.partition_point(|s| s.0 <= req.max_time);
            if lo >= hi {
                continue;
            }
            let chunks = if req.skip_chunks {
                Vec::new()
            } else {
                encode_xor_chunks(&samples[lo..hi])
            };
            out.push((labels.without(&strip), chunks));
        }
        // Stripping replica labels changes the order; stores must send sorted series.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let frames: Vec<Result<SeriesResponse, Status>> = out
            .into_iter()
            .map(|(l, chunks)| {
                Ok(SeriesResponse::series(Series {
                    labels: labels_to_proto(&l),
                    chunks,
                }))
            })
            .collect();
        Ok(Box::pin(futures::stream::iter(frames)))
    }

    async fn label_names(&self, req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
        let ms = matchers_from_proto(&req.matchers)?;
        let names: BTreeSet<String> = self
            .matching(&ms)
            .filter(|(_, s)| s.iter().any(|p| p.0 >= req.start && p.0 <= req.end))
            .flat_map(|(l, _)| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
            .filter(|n| !req.without_replica_labels.contains(n))
            .collect();
        Ok(LabelNamesResponse {
            names: names.into_iter().collect(),
            ..Default::default()
        })
    }

    async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
        let ms = matchers_from_proto(&req.matchers)?;
        let values: BTreeSet<String> = self
            .matching(&ms)
            .filter(|(_, s)| s.iter().any(|p| p.0 >= req.start && p.0 <= req.end))
            .filter_map(|(l, _)| l.get(&req.label).map(str::to_string))
            .collect();
        Ok(LabelValuesResponse {
            values: values.into_iter().collect(),
            ..Default::default()
        })
    }
}
