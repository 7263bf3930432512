//! `hypnos sidecar`: runs next to one Prometheus, like `thanos sidecar`.
//!
//! - [`store`]: the StoreAPI (`thanos.Store`, `thanos.info.Info`) answered from Prometheus:
//!   `Series` by streamed remote read ([`promclient`], [`frames`], [`prompb`]) passing the TSDB
//!   chunks through, labels-only `Series` and the label APIs by the HTTP API; external labels
//!   appended to every series and matchers on them decided here; nothing before the advertised
//!   min time (`--min-time`, Prometheus's lowest timestamp) is asked for.
//! - [`shipper`]: uploads new blocks from `--tsdb.path` to object storage, `meta.json` last.
//! - [`reloader`]: `POST /-/reload` when the watched Prometheus configuration or rule files
//!   change, and once at start-up (as Thanos); optional `$(VAR)` substitution.
//!
//! Start-up follows Thanos: wait for Prometheus, refuse to run without external labels, and
//! (when uploading) refuse a Prometheus that compacts its blocks.

pub mod args;
pub mod frames;
pub mod metrics;
pub mod promclient;
pub mod prompb;
pub mod reloader;
pub mod shipper;
pub mod store;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hypnos_model::Labels;
use hypnos_server::{OpsState, Readiness, ops_router};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use args::SidecarArgs;
pub use promclient::{PromClient, PromError};
pub use shipper::{Shipper, ShipperError, ShipperState};
pub use store::{PromState, PrometheusStore};

use metrics::SidecarMetrics;

/// Thanos's message, kept word for word so operators find the same advice.
pub const NO_EXTERNAL_LABELS: &str =
    "no external labels configured on Prometheus server, uniquely identifying external labels must be configured";

const PROMETHEUS_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error(transparent)]
    Prometheus(#[from] PromError),
    #[error("objstore configuration: {0}")]
    Objstore(#[from] hypnos_objstore::ConfigError),
    #[error("listening on {what} address {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("Prometheus at {url} did not answer within --prometheus.ready_timeout={timeout:?}; last error: {last}")]
    PrometheusNotReady {
        url: String,
        timeout: Duration,
        last: String,
    },
    #[error("{NO_EXTERNAL_LABELS} (Prometheus at {url}: set global.external_labels in its configuration)")]
    NoExternalLabels { url: String },
    #[error("{0}")]
    BlockDurations(String),
    #[error("StoreAPI gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    Reloader(#[from] reloader::ReloaderError),
}

/// Runs the component until `shutdown` resolves.
pub async fn run(
    args: SidecarArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), SidecarError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let mut registry = Registry::default();
    let metrics = SidecarMetrics::register(&mut registry);
    let readiness = Readiness::new();
    let client = PromClient::new(&args.prometheus_url)?;
    let bucket = if args.objstore_config_file.is_some() || args.objstore_config.is_some() {
        Some(hypnos_objstore::load_bucket(
            args.objstore_config_file.as_deref(),
            args.objstore_config.as_deref(),
        )?)
    } else {
        tracing::info!("no --objstore.config-file or --objstore.config: blocks are not uploaded");
        None
    };

    // Like Thanos, an unreadable watched configuration stops the sidecar at start-up.
    let reloader = if args.reloader_config_file.is_some() || !args.reloader_rule_dirs.is_empty() {
        let config = reloader::ReloaderConfig {
            config_file: args.reloader_config_file.clone(),
            envsubst_file: args.reloader_envsubst_file.clone(),
            rule_dirs: args.reloader_rule_dirs.clone(),
            watch_interval: args.reloader_watch_interval,
            retry_interval: args.reloader_retry_interval,
        };
        Some(reloader::Reloader::new(config, client.clone(), metrics.clone())?)
    } else {
        None
    };

    let http_listener = TcpListener::bind(args.http_address)
        .await
        .map_err(|source| SidecarError::Bind {
            what: "HTTP",
            addr: args.http_address,
            source,
        })?;
    let router = ops_router(OpsState {
        component: "sidecar",
        registry: Arc::new(registry),
        readiness: readiness.clone(),
    });
    tracing::info!(addr = %args.http_address, "serving /metrics, /-/healthy, /-/ready");
    let http = tokio::spawn(
        axum::serve(http_listener, router)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );

    let Some(external) = wait_for_external_labels(&client, args.prometheus_ready_timeout, stop_rx.clone()).await?
    else {
        return Ok(());
    };
    tracing::info!(external_labels = %external, prometheus = client.url(), "read external labels");

    if bucket.is_some() {
        match client.flags().await {
            Ok(flags) => {
                if let Err(msg) = shipper::check_block_durations(&flags) {
                    if args.ignore_unequal_block_size {
                        tracing::warn!("{msg} (ignored: --shipper.ignore-unequal-block-size)");
                    } else {
                        return Err(SidecarError::BlockDurations(msg));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read Prometheus flags; skipping the block-duration check"),
        }
    }

    let min_time = current_min_time(&client, args.min_time).await;
    let state = Arc::new(PromState::new(external, min_time));
    metrics.prometheus_up.set(1);
    readiness.set_ready(true);

    let grpc_listener = TcpListener::bind(args.grpc_address)
        .await
        .map_err(|source| SidecarError::Bind {
            what: "gRPC",
            addr: args.grpc_address,
            source,
        })?;
    let api = Arc::new(PrometheusStore::new(client.clone(), state.clone()));
    let grpc = tokio::spawn(hypnos_storepb::server::serve(
        api,
        grpc_listener,
        stopped(stop_rx.clone()),
    ));

    let mut background = Vec::new();
    background.push(tokio::spawn(refresh_loop(
        client.clone(),
        state.clone(),
        args.get_config_interval,
        args.min_time,
        metrics.clone(),
        readiness.clone(),
    )));
    if let Some(bucket) = bucket {
        let shipper = Shipper::new(
            args.tsdb_path.clone(),
            &args.shipper_meta_file_name,
            bucket,
            args.upload_compacted,
            metrics.clone(),
        );
        background.push(tokio::spawn(ship_loop(
            shipper,
            state.clone(),
            args.shipper_sync_interval,
            metrics.clone(),
        )));
    }
    if let Some(reloader) = reloader {
        background.push(tokio::spawn(reloader.run()));
    }

    stopped(stop_rx).await;
    tracing::info!("shutting down");
    readiness.set_ready(false);
    // An upload cut short is harmless: meta.json goes last, and the next start redoes it.
    for task in &background {
        task.abort();
    }
    let grpc_result = grpc.await;
    let http_result = http.await;
    match grpc_result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(SidecarError::Grpc(e)),
        Err(e) => tracing::error!(error = %e, "gRPC server task failed"),
    }
    match http_result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SidecarError::Http(e)),
        Err(e) => {
            tracing::error!(error = %e, "HTTP server task failed");
            Ok(())
        }
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Waits for Prometheus to answer with its configuration; `Ok(None)` when shut down meanwhile.
async fn wait_for_external_labels(
    client: &PromClient,
    timeout: Duration,
    stop: watch::Receiver<bool>,
) -> Result<Option<Labels>, SidecarError> {
    let deadline = Instant::now() + timeout;
    loop {
        match client.external_labels().await {
            Ok(ls) if ls.is_empty() => {
                return Err(SidecarError::NoExternalLabels {
                    url: client.url().to_string(),
                });
            }
            Ok(ls) => return Ok(Some(ls)),
            Err(e @ PromError::BadResponse { .. }) => return Err(e.into()),
            Err(e) => {
                if Instant::now() >= deadline {
                    return Err(SidecarError::PrometheusNotReady {
                        url: client.url().to_string(),
                        timeout,
                        last: e.to_string(),
                    });
                }
                tracing::warn!(error = %e, "waiting for Prometheus");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PROMETHEUS_RETRY) => {}
            () = stopped(stop.clone()) => return Ok(None),
        }
    }
}

/// `max(--min-time, Prometheus's lowest timestamp)`; an empty or unreachable TSDB leaves
/// `--min-time` (everything may be there).
async fn current_min_time(client: &PromClient, flag_min: i64) -> i64 {
    match client.lowest_timestamp_ms().await {
        Ok(Some(t)) => t.max(flag_min),
        Ok(None) => flag_min,
        Err(e) => {
            tracing::warn!(error = %e, "reading Prometheus's lowest timestamp");
            flag_min
        }
    }
}

async fn refresh_loop(
    client: PromClient,
    state: Arc<PromState>,
    interval: Duration,
    flag_min: i64,
    metrics: SidecarMetrics,
    readiness: Readiness,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match client.external_labels().await {
            Ok(ls) if ls.is_empty() => {
                metrics.prometheus_up.set(1);
                readiness.set_ready(true);
                tracing::warn!("Prometheus now has no external labels; keeping the previous ones");
            }
            Ok(ls) => {
                metrics.prometheus_up.set(1);
                readiness.set_ready(true);
                if ls != state.external_labels().await {
                    tracing::warn!(external_labels = %ls, "Prometheus's external labels changed");
                    state.set_external_labels(ls).await;
                }
            }
            Err(e) => {
                // Thanos's heartbeat marks the sidecar not ready while Prometheus is away; the
                // StoreAPI keeps answering (with Unavailable) meanwhile.
                metrics.prometheus_up.set(0);
                readiness.set_ready(false);
                tracing::warn!(error = %e, "refreshing Prometheus's external labels");
                continue;
            }
        }
        state.set_min_time(current_min_time(&client, flag_min).await);
    }
}

async fn ship_loop(shipper: Shipper, state: Arc<PromState>, interval: Duration, metrics: SidecarMetrics) {
    shipper.clean_staging();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        metrics.dir_syncs.inc();
        let external = state.external_labels().await;
        match shipper.sync(&external).await {
            Ok(n) if n > 0 => tracing::info!(blocks = n, "shipper sync uploaded blocks"),
            Ok(_) => tracing::debug!("shipper sync: nothing new"),
            Err(e) => {
                metrics.dir_sync_failures.inc();
                tracing::error!(error = %e, "shipper sync failed");
            }
        }
    }
}
