use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Flags of `hypnos demo`.
#[derive(Clone, Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps Prometheus data, configurations, the bucket and logs.
    #[arg(long = "data-dir", default_value = ".hypnos-demo")]
    pub data_dir: PathBuf,
    /// The Prometheus binary to run (Debian's `prometheus` package provides 2.42).
    #[arg(long = "prometheus.binary", default_value = "prometheus")]
    pub prometheus_binary: String,
    /// Host every component listens on.
    #[arg(long = "listen-host", default_value = "127.0.0.1")]
    pub listen_host: String,
    /// Added to every port of the seed's layout (e.g. 10000 moves the querier to :39090), to run
    /// next to services that already use the seed's ports.
    #[arg(long = "port-offset", default_value_t = 0)]
    pub port_offset: u16,
    /// Requests per second the demo-app sends itself, so that the graphs move.
    #[arg(long = "self-load", default_value_t = 5.0)]
    pub self_load: f64,
    /// Object storage for the uploaded blocks (Thanos objstore YAML, e.g. `type: S3`); by
    /// default a FILESYSTEM bucket under `--data-dir`.
    #[arg(long = "objstore.config-file")]
    pub objstore_config_file: Option<PathBuf>,
    /// Scrape and evaluation interval of the demo's Prometheus servers.
    #[arg(long = "scrape-interval", default_value = "15s")]
    pub scrape_interval: String,
    /// Backfill this much generated history (the seed's metrics, 15s interval) before starting:
    /// the last week into the Prometheus data directories, anything older into the bucket.
    /// Without a value, one week. Skipped when the data directories already hold blocks.
    #[arg(long = "with-history", value_name = "DURATION", num_args = 0..=1, default_missing_value = "7d",
          require_equals = false, value_parser = humantime::parse_duration)]
    pub with_history: Option<Duration>,
}
