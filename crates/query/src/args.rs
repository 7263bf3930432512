//! Flags of `hypnos query`, named and defaulted like `thanos query`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Flags of `hypnos query`.
#[derive(Clone, Debug, Args)]
pub struct QueryArgs {
    /// Listen address for the HTTP API (Prometheus API v1, /metrics, /-/healthy, /-/ready).
    #[arg(long = "http-address", default_value = "0.0.0.0:10902")]
    pub http_address: SocketAddr,
    /// Listen address for the StoreAPI this querier serves (for queriers stacked on top).
    #[arg(long = "grpc-address", default_value = "0.0.0.0:10901")]
    pub grpc_address: SocketAddr,
    /// StoreAPI endpoint (host:port) to query; repeatable. `--store` is the old Thanos name.
    #[arg(long = "endpoint", visible_alias = "store", value_name = "HOST:PORT")]
    pub endpoints: Vec<String>,
    /// Label naming the replica of an HA group; repeatable or comma-separated. Series that differ
    /// only in these labels are merged into one.
    #[arg(long = "query.replica-label", value_delimiter = ',', value_name = "LABEL")]
    pub replica_labels: Vec<String>,
    /// Longest time a query may run.
    #[arg(long = "query.timeout", default_value = "2m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Most queries evaluated at the same time; more wait.
    #[arg(long = "query.max-concurrent", default_value_t = 20)]
    pub max_concurrent: usize,
    /// How far back an instant selector looks for the latest sample.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = humantime::parse_duration)]
    pub lookback_delta: Duration,
    /// Whether a failing endpoint turns into a warning (true) or fails the query (false), unless
    /// a request says otherwise with `partial_response`.
    #[arg(
        long = "query.partial-response",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub partial_response: bool,
    /// Step of subqueries that do not give one.
    #[arg(long = "query.default-evaluation-interval", default_value = "1m", value_parser = humantime::parse_duration)]
    pub default_evaluation_interval: Duration,
    /// Most samples one query may hold in memory at once.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub max_samples: usize,
    /// How often each endpoint's Info (label sets, time range) is refreshed.
    #[arg(long = "endpoint.info-interval", default_value = "5s", value_parser = humantime::parse_duration, hide = true)]
    pub info_interval: Duration,
}

impl Default for QueryArgs {
    fn default() -> Self {
        QueryArgs {
            http_address: SocketAddr::from(([0, 0, 0, 0], 10902)),
            grpc_address: SocketAddr::from(([0, 0, 0, 0], 10901)),
            endpoints: Vec::new(),
            replica_labels: Vec::new(),
            timeout: Duration::from_secs(120),
            max_concurrent: 20,
            lookback_delta: Duration::from_secs(300),
            partial_response: true,
            default_evaluation_interval: Duration::from_secs(60),
            max_samples: 50_000_000,
            info_interval: Duration::from_secs(5),
        }
    }
}
