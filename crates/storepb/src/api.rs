//! The trait every StoreAPI component implements (store gateway, sidecar, querier as a proxy,
//! and the gRPC client itself), and the adapter that serves it over tonic.
//!
//! Requests and responses are the wire messages: they carry fields (hints, shard info,
//! `without_replica_labels`, batching) that an implementation may honour or ignore, and keeping
//! them lets a proxy forward what it does not understand. [`crate::convert`] turns matchers and
//! labels into model types.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status};

use crate::proto::thanos::info::{InfoRequest, InfoResponse, info_server::Info};
use crate::proto::thanos::{
    LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, Series, SeriesBatch, SeriesRequest,
    SeriesResponse, series_response, store_server::Store,
};

/// The frames of a `Series` call. An error item ends the call with that gRPC status.
pub type SeriesStream = Pin<Box<dyn Stream<Item = Result<SeriesResponse, Status>> + Send + 'static>>;

/// A StoreAPI endpoint. Errors are gRPC statuses because they cross the wire unchanged:
/// `InvalidArgument` for bad matchers, `Aborted` for partial-response aborts, and so on.
#[tonic::async_trait]
pub trait StoreApi: Send + Sync + 'static {
    /// `thanos.info.Info/Info`: external label sets, time range and which APIs are served.
    async fn info(&self) -> Result<InfoResponse, Status>;

    /// `thanos.Store/Series`: series sorted by their full label set (external labels included),
    /// each series complete before the next starts.
    async fn series(&self, req: SeriesRequest) -> Result<SeriesStream, Status>;

    /// `thanos.Store/LabelNames`: sorted, unique.
    async fn label_names(&self, req: LabelNamesRequest) -> Result<LabelNamesResponse, Status>;

    /// `thanos.Store/LabelValues`: sorted, unique.
    async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status>;
}

#[tonic::async_trait]
impl<T: StoreApi + ?Sized> StoreApi for Arc<T> {
    async fn info(&self) -> Result<InfoResponse, Status> {
        (**self).info().await
    }
    async fn series(&self, req: SeriesRequest) -> Result<SeriesStream, Status> {
        (**self).series(req).await
    }
    async fn label_names(&self, req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
        (**self).label_names(req).await
    }
    async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
        (**self).label_values(req).await
    }
}

/// Serves a [`StoreApi`] as the generated `thanos.Store` and `thanos.info.Info` services; see
/// [`crate::server`] for the ready-made tonic services with Thanos's size limits.
pub struct StoreApiService<S: ?Sized> {
    api: Arc<S>,
}

impl<S: ?Sized> StoreApiService<S> {
    pub fn new(api: Arc<S>) -> Self {
        StoreApiService { api }
    }
}

impl<S: ?Sized> Clone for StoreApiService<S> {
    fn clone(&self) -> Self {
        StoreApiService { api: self.api.clone() }
    }
}

#[tonic::async_trait]
impl<S: StoreApi + ?Sized> Store for StoreApiService<S> {
    type SeriesStream = SeriesStream;

    async fn series(&self, request: Request<SeriesRequest>) -> Result<Response<SeriesStream>, Status> {
        let req = request.into_inner();
        tracing::debug!(
            min_time = req.min_time,
            max_time = req.max_time,
            matchers = req.matchers.len(),
            "StoreAPI Series"
        );
        self.api.series(req).await.map(Response::new)
    }

    async fn label_names(&self, request: Request<LabelNamesRequest>) -> Result<Response<LabelNamesResponse>, Status> {
        self.api.label_names(request.into_inner()).await.map(Response::new)
    }

    async fn label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        self.api.label_values(request.into_inner()).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl<S: StoreApi + ?Sized> Info for StoreApiService<S> {
    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        self.api.info().await.map(Response::new)
    }
}

/// Constructors for the `SeriesResponse` oneof.
impl SeriesResponse {
    pub fn series(s: Series) -> Self {
        SeriesResponse {
            result: Some(series_response::Result::Series(s)),
        }
    }

    pub fn warning(w: impl Into<String>) -> Self {
        SeriesResponse {
            result: Some(series_response::Result::Warning(w.into())),
        }
    }

    pub fn hints(h: prost_types::Any) -> Self {
        SeriesResponse {
            result: Some(series_response::Result::Hints(h)),
        }
    }

    pub fn batch(series: Vec<Series>) -> Self {
        SeriesResponse {
            result: Some(series_response::Result::Batch(SeriesBatch { series })),
        }
    }
}

/// One logical item of a `Series` response, with `batch` frames (v0.41+) flattened.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesFrame {
    Series(Series),
    Warning(String),
    Hints(prost_types::Any),
}

/// Flattens a received frame; an empty oneof (which a peer may send) yields nothing.
pub fn frames(resp: SeriesResponse) -> Vec<SeriesFrame> {
    match resp.result {
        Some(series_response::Result::Series(s)) => vec![SeriesFrame::Series(s)],
        Some(series_response::Result::Warning(w)) => vec![SeriesFrame::Warning(w)],
        Some(series_response::Result::Hints(h)) => vec![SeriesFrame::Hints(h)],
        Some(series_response::Result::Batch(b)) => b.series.into_iter().map(SeriesFrame::Series).collect(),
        None => Vec::new(),
    }
}
