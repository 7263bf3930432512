//! Flags of `hypnos sidecar`, named and defaulted like `thanos sidecar`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;

/// Flags of `hypnos sidecar`.
#[derive(Clone, Debug, Args)]
pub struct SidecarArgs {
    /// URL of the Prometheus server this sidecar serves and ships.
    #[arg(long = "prometheus.url", default_value = "http://localhost:9090")]
    pub prometheus_url: String,
    /// How long to wait at start-up for Prometheus to answer before giving up.
    #[arg(long = "prometheus.ready_timeout", default_value = "10m", value_parser = humantime::parse_duration)]
    pub prometheus_ready_timeout: Duration,
    /// How often the external labels and the lowest timestamp are read again from Prometheus.
    #[arg(long = "prometheus.get_config_interval", default_value = "30s", value_parser = positive_duration)]
    pub get_config_interval: Duration,
    /// Prometheus's data directory (its `--storage.tsdb.path`), where the shipper finds blocks.
    #[arg(long = "tsdb.path", default_value = "./data")]
    pub tsdb_path: PathBuf,
    /// Path of the objstore YAML; without it (or --objstore.config) nothing is uploaded.
    #[arg(long = "objstore.config-file", value_name = "FILE")]
    pub objstore_config_file: Option<PathBuf>,
    /// The objstore YAML itself, instead of --objstore.config-file.
    #[arg(long = "objstore.config", value_name = "YAML")]
    pub objstore_config: Option<String>,
    /// Listen address of the StoreAPI (gRPC).
    #[arg(long = "grpc-address", default_value = "0.0.0.0:10901")]
    pub grpc_address: SocketAddr,
    /// Listen address of /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", default_value = "0.0.0.0:10902")]
    pub http_address: SocketAddr,
    /// Also upload compacted blocks (level > 1), e.g. to move an existing Prometheus's history.
    #[arg(long = "shipper.upload-compacted")]
    pub upload_compacted: bool,
    /// Name of the upload progress file in --tsdb.path.
    #[arg(long = "shipper.meta-file-name", default_value = crate::shipper::DEFAULT_META_FILE_NAME)]
    pub shipper_meta_file_name: String,
    /// Upload even when Prometheus's min and max block durations differ (its compaction would
    /// then rewrite blocks after they were shipped).
    #[arg(long = "shipper.ignore-unequal-block-size", hide = true)]
    pub ignore_unequal_block_size: bool,
    /// How often the shipper looks for new blocks (Thanos: fixed at 30s).
    #[arg(long = "shipper.sync-interval", default_value = "30s", value_parser = positive_duration, hide = true)]
    pub shipper_sync_interval: Duration,
    /// Prometheus configuration file to watch; a change triggers `POST /-/reload` on Prometheus
    /// (which needs `--web.enable-lifecycle`).
    #[arg(long = "reloader.config-file", value_name = "FILE")]
    pub reloader_config_file: Option<PathBuf>,
    /// Output file for the --reloader.config-file with `$(VAR)` replaced by environment
    /// variables; Prometheus is then started with this file as its configuration.
    #[arg(long = "reloader.config-envsubst-file", value_name = "FILE")]
    pub reloader_envsubst_file: Option<PathBuf>,
    /// Rule directories whose files (recursively) are watched too; repeatable.
    #[arg(long = "reloader.rule-dir", value_name = "DIR")]
    pub reloader_rule_dirs: Vec<PathBuf>,
    /// How often the watched file's content hash is checked; 0 turns the reloader off (as in
    /// Thanos).
    #[arg(long = "reloader.watch-interval", default_value = "3s", value_parser = humantime::parse_duration)]
    pub reloader_watch_interval: Duration,
    /// How often a failed reload is retried within one watch interval.
    #[arg(long = "reloader.retry-interval", default_value = "5s", value_parser = positive_duration)]
    pub reloader_retry_interval: Duration,
    /// Serve only data at or after this time: RFC 3339 (`2024-01-01T00:00:00Z`) or a duration
    /// before now (`-2h`, `2h`).
    #[arg(long = "min-time", default_value = "0000-01-01T00:00:00Z", value_parser = parse_time_or_duration)]
    pub min_time: i64,
}

/// A duration that must not be zero (it is the period of a loop).
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d.is_zero() {
        return Err(format!("{s:?}: must be greater than zero"));
    }
    Ok(d)
}

/// Thanos's `TimeOrDurationValue`: RFC 3339, or a duration meaning that long before now.
/// The default `0000-01-01T00:00:00Z` (and anything before 1970 that humantime cannot read)
/// means "no limit".
pub fn parse_time_or_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.starts_with("0000-01-01") {
        return Ok(i64::MIN);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        });
    }
    let d = humantime::parse_duration(s.trim_start_matches('-'))
        .map_err(|e| format!("{s:?} is neither an RFC 3339 time nor a duration: {e}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("system clock before 1970: {e}"))?;
    let ms = now.saturating_sub(d).as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_time_forms() {
        assert_eq!(parse_time_or_duration("0000-01-01T00:00:00Z").unwrap(), i64::MIN);
        assert_eq!(
            parse_time_or_duration("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let two_h = parse_time_or_duration("-2h").unwrap();
        assert!((now - 7_200_000 - two_h).abs() < 5_000, "{two_h}");
        assert!(parse_time_or_duration("yesterday").is_err());
    }

    #[test]
    fn loop_periods_must_be_positive() {
        assert_eq!(positive_duration("300ms").unwrap(), Duration::from_millis(300));
        assert!(positive_duration("0s").unwrap_err().contains("greater than zero"));
        assert!(positive_duration("soon").is_err());
    }
}
