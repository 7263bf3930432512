//! `hypnos query`: a Thanos-compatible querier.
//!
//! Data flow of one PromQL request: [`api`] parses the Prometheus API parameters (plus
//! Thanos's `dedup`, `partial_response`, `replicaLabels[]`, `storeMatch[]`) → the PromQL engine
//! asks [`storage::FanoutQueryable`] for each selector → [`fanout::Fanout`] sends one StoreAPI
//! `Series` request (with `without_replica_labels` when deduplicating) concurrently to every
//! endpoint of the [`endpoints::EndpointSet`] whose time range and external labels fit →
//! answers are merged by labels, identical chunks dropped → [`dedup`] splits overlapping chunks
//! into replicas and merges them with Thanos's penalty algorithm → the engine evaluates → the
//! result is written as Prometheus writes JSON ([`api::json`]). Failing endpoints become
//! warnings, or an error when partial response is off.
//!
//! The querier also serves StoreAPI itself ([`grpc::QuerierStore`]) so queriers can be stacked.

pub mod api;
mod args;
pub mod dedup;
pub mod endpoints;
pub mod fanout;
pub mod grpc;
pub mod memstore;
pub mod storage;

use std::sync::Arc;

use axum::serve::ListenerExt;
use hypnos_promql::EngineOptions;
use hypnos_server::{OpsState, Readiness, ops_router};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use args::QueryArgs;

use crate::api::ApiState;
use crate::endpoints::EndpointSet;
use crate::fanout::Fanout;
use crate::grpc::QuerierStore;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("endpoint: {0}")]
    Endpoint(#[from] hypnos_storepb::client::ClientError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// The engine settings the flags ask for.
pub fn engine_options(args: &QueryArgs) -> EngineOptions {
    EngineOptions {
        lookback_delta: args.lookback_delta,
        max_samples: args.max_samples,
        timeout: args.timeout,
        no_step_subquery_interval: args.default_evaluation_interval,
    }
}

/// Runs the component until `shutdown` resolves.
pub async fn run(
    args: QueryArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), QueryError> {
    let set = Arc::new(EndpointSet::connect(&args.endpoints)?);
    let fanout = Fanout::new(set.clone());
    let http = TcpListener::bind(args.http_address)
        .await
        .map_err(|source| QueryError::Listen {
            addr: args.http_address,
            source,
        })?;
    let grpc = TcpListener::bind(args.grpc_address)
        .await
        .map_err(|source| QueryError::Listen {
            addr: args.grpc_address,
            source,
        })?;
    tracing::info!(
        http = %args.http_address,
        grpc = %args.grpc_address,
        endpoints = ?args.endpoints,
        replica_labels = ?args.replica_labels,
        "starting querier"
    );

    let readiness = Readiness::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // Ready once every endpoint was asked for its Info once (answered or not).
    let poller = {
        let set = set.clone();
        let readiness = readiness.clone();
        let interval = args.info_interval;
        tokio::spawn(async move {
            set.refresh_all(interval).await;
            readiness.set_ready(true);
            tracing::info!("endpoints polled once; ready");
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                set.refresh_all(interval).await;
            }
        })
    };

    let state = Arc::new(ApiState {
        fanout: fanout.clone(),
        engine: engine_options(&args),
        replica_labels: args.replica_labels.clone(),
        partial_response: args.partial_response,
        max_concurrent: Arc::new(Semaphore::new(args.max_concurrent.max(1))),
    });
    let ops = ops_router(OpsState {
        component: "query",
        registry: Arc::new(Registry::default()),
        readiness,
    });
    // The web UI (crates/ui) answers `/`, `/graph`, `/stores` and `/static/…`.
    let app = api::router(state).merge(ops).merge(hypnos_ui::router());
    // Without TCP_NODELAY a response written in two segments waits for the client's delayed
    // ACK (about 40 ms on Linux) before its second segment leaves: a latency floor on small
    // queries. Go's net/http, which Prometheus uses, sets it on every connection.
    let http = http.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY on an HTTP connection: {e}");
        }
    });
    let http_server = axum::serve(http, app).with_graceful_shutdown(stopped(stop_rx.clone()));
    let grpc_server = hypnos_storepb::server::serve(Arc::new(QuerierStore { fanout }), grpc, stopped(stop_rx));
    let (h, g) = tokio::join!(http_server, grpc_server);
    poller.abort();
    h.map_err(QueryError::Http)?;
    g?;
    tracing::info!("querier stopped");
    Ok(())
}
