use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Flags of `hypnos demo-app`.
#[derive(Clone, Debug, Args)]
pub struct DemoAppArgs {
    /// Address to listen on for the handler and /metrics.
    #[arg(long = "listen-address", default_value = "0.0.0.0:8080")]
    pub listen_address: SocketAddr,
    /// Shortest simulated work time of a request.
    #[arg(long = "min-delay", default_value = "50ms", value_parser = humantime::parse_duration)]
    pub min_delay: Duration,
    /// Longest simulated work time of a request.
    #[arg(long = "max-delay", default_value = "2s", value_parser = humantime::parse_duration)]
    pub max_delay: Duration,
    /// How often the background populator moves the development/staging/production gauges.
    #[arg(long = "populate-interval", default_value = "50s", value_parser = humantime::parse_duration)]
    pub populate_interval: Duration,
    /// Send this many requests per second to ourselves, with varying instance names (0 = off).
    #[arg(long = "self-load", default_value_t = 0.0, value_name = "RPS")]
    pub self_load: f64,
}

impl Default for DemoAppArgs {
    fn default() -> Self {
        DemoAppArgs {
            listen_address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            populate_interval: Duration::from_secs(50),
            self_load: 0.0,
        }
    }
}
