//! The sidecar's own metrics, named like Thanos's where Thanos has the same thing.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Default)]
pub struct SidecarMetrics {
    pub uploads: Counter,
    pub upload_failures: Counter,
    pub dir_syncs: Counter,
    pub dir_sync_failures: Counter,
    /// Unix seconds of the last block uploaded completely; 0 before the first.
    pub last_successful_upload_time: Gauge<f64, AtomicU64>,
    pub prometheus_up: Gauge,
    pub reloads: Counter,
    pub reload_failures: Counter,
    pub last_reload_successful: Gauge,
    /// Unix seconds of the last successful reload; 0 before the first.
    pub last_reload_success_timestamp: Gauge<f64, AtomicU64>,
    pub config_apply_operations: Counter,
    pub config_apply_operation_failures: Counter,
}

impl SidecarMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = SidecarMetrics::default();
        // prometheus-client appends `_total` to counters and a period to help texts.
        registry.register(
            "thanos_shipper_uploads",
            "Total number of uploaded blocks",
            m.uploads.clone(),
        );
        registry.register(
            "thanos_shipper_upload_failures",
            "Total number of block upload failures",
            m.upload_failures.clone(),
        );
        registry.register(
            "thanos_shipper_dir_syncs",
            "Total number of dir syncs",
            m.dir_syncs.clone(),
        );
        registry.register(
            "thanos_shipper_dir_sync_failures",
            "Total number of failed dir syncs",
            m.dir_sync_failures.clone(),
        );
        registry.register(
            "thanos_shipper_last_successful_upload_time",
            "Unix timestamp (seconds) of the last successful block upload",
            m.last_successful_upload_time.clone(),
        );
        registry.register(
            "thanos_sidecar_prometheus_up",
            "Boolean indicator whether the sidecar can reach its Prometheus peer",
            m.prometheus_up.clone(),
        );
        // Thanos registers its reloader's metrics with the sidecar's `thanos_sidecar_` prefix.
        registry.register(
            "thanos_sidecar_reloader_reloads",
            "Total number of reload requests",
            m.reloads.clone(),
        );
        registry.register(
            "thanos_sidecar_reloader_reloads_failed",
            "Total number of reload requests that failed",
            m.reload_failures.clone(),
        );
        registry.register(
            "thanos_sidecar_reloader_last_reload_successful",
            "Whether the last reload attempt was successful",
            m.last_reload_successful.clone(),
        );
        registry.register(
            "thanos_sidecar_reloader_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful reload",
            m.last_reload_success_timestamp.clone(),
        );
        registry.register(
            "thanos_sidecar_reloader_config_apply_operations",
            "Total number of config apply operations",
            m.config_apply_operations.clone(),
        );
        registry.register(
            "thanos_sidecar_reloader_config_apply_operations_failed",
            "Total number of config apply operations that failed",
            m.config_apply_operation_failures.clone(),
        );
        m
    }
}
