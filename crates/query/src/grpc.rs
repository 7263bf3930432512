//! The querier as a StoreAPI endpoint, so that queriers can be stacked: `Series` fans out with
//! the caller's request and streams the merged series with their chunks as the stores sent
//! them (identical chunks dropped), like Thanos's proxy store. Replica labels the caller lists
//! in `without_replica_labels` are stripped; deduplication itself is left to the top querier,
//! which sees every replica's chunks and runs the penalty algorithm once over all of them.

use hypnos_storepb::convert::label_sets_to_proto;
use hypnos_storepb::info::{InfoResponse, StoreInfo};
use hypnos_storepb::thanos::{
    LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, SeriesRequest, SeriesResponse,
};
use hypnos_storepb::{SeriesStream, StoreApi, component};
use tonic::Status;

use crate::fanout::{Fanout, to_proto};

/// [`StoreApi`] over a querier's fan-out.
#[derive(Clone, Debug)]
pub struct QuerierStore {
    pub fanout: Fanout,
}

#[tonic::async_trait]
impl StoreApi for QuerierStore {
    /// The union of the endpoints' label sets and time ranges, as Thanos's querier reports.
    async fn info(&self) -> Result<InfoResponse, Status> {
        let mut sets = Vec::new();
        let (mut min, mut max) = (i64::MAX, i64::MIN);
        for ep in &self.fanout.set.endpoints {
            if let Some(info) = ep.status().info {
                for s in info.label_sets {
                    if !sets.contains(&s) {
                        sets.push(s);
                    }
                }
                min = min.min(info.min_time);
                max = max.max(info.max_time);
            }
        }
        if min > max {
            (min, max) = (i64::MAX, i64::MIN);
        }
        sets.sort();
        Ok(InfoResponse {
            label_sets: label_sets_to_proto(&sets),
            component_type: component::QUERY.to_string(),
            store: Some(StoreInfo {
                min_time: min,
                max_time: max,
                supports_without_replica_labels: true,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn series(&self, req: SeriesRequest) -> Result<SeriesStream, Status> {
        let res = self.fanout.series(req, &[]).await?;
        let mut frames: Vec<Result<SeriesResponse, Status>> = res
            .warnings
            .into_iter()
            .map(|w| Ok(SeriesResponse::warning(w)))
            .collect();
        frames.extend(res.series.iter().map(|s| Ok(SeriesResponse::series(to_proto(s)))));
        Ok(Box::pin(futures::stream::iter(frames)))
    }

    async fn label_names(&self, req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
        let (names, warnings) = self.fanout.label_names(req, &[]).await?;
        Ok(LabelNamesResponse {
            names,
            warnings,
            hints: None,
        })
    }

    async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
        let (values, warnings) = self.fanout.label_values(req, &[]).await?;
        Ok(LabelValuesResponse {
            values,
            warnings,
            hints: None,
        })
    }
}
