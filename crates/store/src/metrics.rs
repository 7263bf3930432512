//! The store gateway's own metrics, named like Thanos's where Thanos has them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub blocks_loaded: Gauge,
    pub block_loads: Counter,
    pub block_load_failures: Counter,
    pub block_drops: Counter,
    pub corrupt_blocks: Gauge,
    pub corrupt_block_detections: Counter,
    pub syncs: Counter,
    pub sync_failures: Counter,
    pub meta_synced: Family<Vec<(String, String)>, Gauge>,
    pub series_requests: Counter,
    pub series_sent: Counter,
    pub chunks_sent: Counter,
}

impl Metrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "thanos_bucket_store_blocks_loaded",
            "Number of currently loaded blocks",
            self.blocks_loaded.clone(),
        );
        r.register(
            "thanos_bucket_store_block_loads",
            "Total number of remote block loading attempts",
            self.block_loads.clone(),
        );
        r.register(
            "thanos_bucket_store_block_load_failures",
            "Total number of failed remote block loading attempts",
            self.block_load_failures.clone(),
        );
        r.register(
            "thanos_bucket_store_block_drops",
            "Total number of local blocks that were dropped",
            self.block_drops.clone(),
        );
        r.register(
            "hypnos_store_corrupt_blocks",
            "Number of blocks currently skipped because their data is corrupt",
            self.corrupt_blocks.clone(),
        );
        r.register(
            "hypnos_store_corrupt_block_detections",
            "Total number of times a block was found corrupt (at load or while serving) and skipped",
            self.corrupt_block_detections.clone(),
        );
        r.register(
            "thanos_blocks_meta_syncs",
            "Total blocks metadata synchronization attempts",
            self.syncs.clone(),
        );
        r.register(
            "thanos_blocks_meta_sync_failures",
            "Total blocks metadata synchronization failures",
            self.sync_failures.clone(),
        );
        r.register(
            "thanos_blocks_meta_synced",
            "Number of block metadata synced, by state",
            self.meta_synced.clone(),
        );
        r.register(
            "thanos_bucket_store_series_requests",
            "Total Series calls",
            self.series_requests.clone(),
        );
        r.register(
            "hypnos_store_series_sent",
            "Total series sent in Series responses",
            self.series_sent.clone(),
        );
        r.register(
            "hypnos_store_chunks_sent",
            "Total chunks sent in Series responses",
            self.chunks_sent.clone(),
        );
    }
}
