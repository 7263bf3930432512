//! `hypnos store`: the store gateway. It keeps a set of blocks in step with an object-storage
//! bucket and serves them over the Thanos StoreAPI (`thanos.Store`, `thanos.info.Info`).
//!
//! - [`fetcher`]: which blocks to serve (meta.json present, deletion marks, partial uploads,
//!   time partition, consistency delay, compacted duplicates), as Thanos's meta fetcher.
//! - [`indexheader`]: Thanos's binary index-header, built in `--data-dir` from ranged reads.
//! - [`block`]: one block: postings, series and chunks read by range, with [`cache`]; chunk
//!   segments of a local (FILESYSTEM) bucket are memory-mapped instead (`mapped`).
//! - [`select`]: the `Series` selection, a merge of per-block cursors in label order.
//! - [`store`]: the set of blocks, its sync, and the StoreAPI (`Series`, `LabelNames`,
//!   `LabelValues`, `Info`).
//! - [`tools`]: `hypnos tools bucket ls|inspect|verify`.
//!
//! Invariants: a block is served only after its index-header was built and parsed; a block
//! found corrupt (at load or while serving) is taken out of service, logged and counted
//! (`hypnos_store_corrupt_blocks`) and never stops the others from serving; no client input
//! panics the server.

mod answers;
pub mod block;
pub mod cache;
pub mod error;
pub mod fetcher;
pub mod indexheader;
mod mapped;
pub mod metrics;
pub mod select;
pub mod store;
pub mod timeutil;
pub mod tools;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::FutureExt;
use hypnos_objstore::{Bucket, ProviderConfig};
use hypnos_server::{OpsState, Readiness, ops_router};
use prometheus_client::registry::Registry;

pub use error::{BlockError, StoreError};
pub use store::{BucketStore, StoreConfig, StoreService};
use timeutil::TimeOrDuration;

/// Flags of `hypnos store`, named and defaulted like `thanos store`.
#[derive(Clone, Debug, Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub objstore: ObjstoreArgs,
    /// Local data directory for caching purposes (index-header, meta.json files).
    #[arg(long = "data-dir", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Listen ip:port address for gRPC endpoints (StoreAPI).
    #[arg(long = "grpc-address", default_value = "0.0.0.0:10901")]
    pub grpc_address: String,
    /// Listen host:port for HTTP endpoints (/metrics, /-/healthy, /-/ready).
    #[arg(long = "http-address", default_value = "0.0.0.0:10902")]
    pub http_address: String,
    /// Repeat interval for syncing the blocks between local and remote view.
    #[arg(long = "sync-block-duration", default_value = "15m", value_parser = timeutil::duration_arg)]
    pub sync_block_duration: Duration,
    /// Start of time range limit to serve: RFC3339 or a duration relative to now, like -2h.
    #[arg(
        long = "min-time",
        default_value = "0000-01-01T00:00:00Z",
        allow_hyphen_values = true
    )]
    pub min_time: TimeOrDuration,
    /// End of time range limit to serve: RFC3339 or a duration relative to now, like -2h.
    #[arg(
        long = "max-time",
        default_value = "9999-12-31T23:59:59Z",
        allow_hyphen_values = true
    )]
    pub max_time: TimeOrDuration,
    /// Minimum age of non-compacted blocks before they are served.
    #[arg(long = "consistency-delay", default_value = "0s", value_parser = timeutil::duration_arg)]
    pub consistency_delay: Duration,
    /// How long after its deletion mark a block stops being served.
    #[arg(long = "ignore-deletion-marks-delay", default_value = "24h", value_parser = timeutil::duration_arg)]
    pub ignore_deletion_marks_delay: Duration,
    /// Number of goroutines (here: tasks) loading blocks concurrently.
    #[arg(long = "block-sync-concurrency", default_value_t = 20)]
    pub block_sync_concurrency: usize,
    /// Maximum size of the in-memory index cache (postings and series), e.g. 250MB.
    #[arg(long = "index-cache-size", default_value = "250MB", value_parser = parse_bytes)]
    pub index_cache_size: u64,
}

/// `--objstore.config-file` / `--objstore.config`, as in every Thanos component using a bucket.
#[derive(Clone, Debug, Args)]
pub struct ObjstoreArgs {
    /// Path to YAML file that contains object store configuration.
    #[arg(long = "objstore.config-file", global = true)]
    pub config_file: Option<PathBuf>,
    /// Alternative to 'objstore.config-file' flag: object store configuration in YAML.
    #[arg(long = "objstore.config", global = true)]
    pub config: Option<String>,
}

impl ObjstoreArgs {
    /// Opens the configured bucket for reading. Unlike a writer, a reader treats a missing
    /// FILESYSTEM directory as an error instead of creating an empty bucket.
    pub fn open_existing(&self) -> Result<Arc<dyn Bucket>, StoreError> {
        hypnos_objstore::install_tls_provider();
        let text = hypnos_objstore::read_config(self.config_file.as_deref(), self.config.as_deref())?;
        let cfg = hypnos_objstore::parse_config(&text)?;
        if let ProviderConfig::Filesystem(fs) = &cfg.provider {
            let dir = Path::new(&fs.directory);
            if !dir.is_dir() {
                return Err(StoreError::Bucket {
                    bucket: format!("file://{}", dir.display()),
                    reason: "the FILESYSTEM bucket directory does not exist".into(),
                });
            }
        }
        Ok(hypnos_objstore::open_bucket(&cfg)?)
    }
}

/// Byte sizes like Thanos's flags: `250MB`, `1GiB`, `512KB`, `1024` (units are powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().map_err(|_| format!("not a byte size: {s:?}"))?;
    let mult: u64 = match t[digits..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" | "K" => 1 << 10,
        "MB" | "MIB" | "M" => 1 << 20,
        "GB" | "GIB" | "G" => 1 << 30,
        "TB" | "TIB" | "T" => 1 << 40,
        other => return Err(format!("unknown byte unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("byte size {s:?} is out of range"))
}

type Shutdown = futures::future::Shared<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Runs the store gateway until `shutdown` resolves. A bucket that cannot be listed at start
/// is an error; later sync failures are logged and counted, and serving goes on.
pub async fn run(args: StoreArgs, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StoreError> {
    let shutdown: Shutdown = (Box::pin(shutdown) as Pin<Box<dyn Future<Output = ()> + Send>>).shared();
    let bucket = args.objstore.open_existing()?;
    tokio::fs::create_dir_all(&args.data_dir)
        .await
        .map_err(|source| StoreError::DataDir {
            path: args.data_dir.clone(),
            source,
        })?;
    let listen = |what: &'static str, addr: String| async move {
        tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| StoreError::Listen { what, addr, source })
    };
    let grpc_listener = listen("gRPC", args.grpc_address.clone()).await?;
    let http_listener = listen("HTTP", args.http_address.clone()).await?;

    let mut cfg = StoreConfig::new(args.data_dir.clone());
    cfg.fetcher.min_time = args.min_time;
    cfg.fetcher.max_time = args.max_time;
    cfg.fetcher.consistency_delay = args.consistency_delay;
    cfg.fetcher.ignore_deletion_marks_delay = args.ignore_deletion_marks_delay;
    cfg.block_sync_concurrency = args.block_sync_concurrency;
    cfg.index_cache_bytes = usize::try_from(args.index_cache_size).unwrap_or(usize::MAX);
    let store = Arc::new(BucketStore::new(bucket.clone(), cfg));

    let mut registry = Registry::default();
    store.metrics.register(&mut registry);
    let readiness = Readiness::new();
    let ops = ops_router(OpsState {
        component: "store",
        registry: Arc::new(registry),
        readiness: readiness.clone(),
    });
    tracing::info!(addr = %args.http_address, "serving /metrics, /-/healthy and /-/ready over HTTP");
    let http = tokio::spawn(
        axum::serve(http_listener, ops)
            .with_graceful_shutdown(shutdown.clone())
            .into_future(),
    );

    tracing::info!(bucket = bucket.name(), "initial sync of the bucket");
    tokio::select! {
        r = store.sync() => r.map_err(|source| StoreError::InitialSync { bucket: bucket.name().to_string(), source })?,
        () = shutdown.clone() => return Ok(()),
    }
    tracing::info!(
        blocks = store.blocks().len(),
        corrupt = store.corrupt_blocks().len(),
        "initial sync done; store gateway is ready"
    );
    readiness.set_ready(true);

    let syncer = store.clone();
    let interval = args.sync_block_duration.max(Duration::from_secs(1));
    let sync_shutdown = shutdown.clone();
    let sync_loop = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = sync_shutdown.clone() => return,
            }
            if let Err(e) = syncer.sync().await {
                tracing::warn!(err = %e, "syncing the bucket failed; serving the blocks loaded before");
            }
        }
    });

    let api = Arc::new(StoreService(store));
    let grpc = hypnos_storepb::server::serve(api, grpc_listener, shutdown.clone()).await;
    readiness.set_ready(false);
    sync_loop.abort();
    let http = http.await;
    grpc?;
    match http {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StoreError::Http(e)),
        Err(e) => Err(StoreError::Http(std::io::Error::other(e))),
    }
}
