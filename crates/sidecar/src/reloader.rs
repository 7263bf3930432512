//! The config reloader: polls the content hash of Prometheus's configuration file and, when it
//! changes, asks Prometheus to reload (`POST /-/reload`). A failed reload is retried at the next
//! poll, since the hash is only remembered once Prometheus accepted the reload.

use std::path::PathBuf;
use std::time::Duration;

use crate::metrics::SidecarMetrics;
use crate::promclient::PromClient;

#[derive(Debug)]
pub struct Reloader {
    file: PathBuf,
    client: PromClient,
    interval: Duration,
    metrics: SidecarMetrics,
}

/// Content hash of the file; `None` when it cannot be read (logged).
fn file_hash(path: &std::path::Path) -> Option<u64> {
    match std::fs::read(path) {
        Ok(b) => Some(xxhash_rust::xxh64::xxh64(&b, 0)),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "reloader: reading the watched file");
            None
        }
    }
}

impl Reloader {
    pub fn new(file: PathBuf, client: PromClient, interval: Duration, metrics: SidecarMetrics) -> Self {
        Reloader {
            file,
            client,
            interval,
            metrics,
        }
    }

    /// Watches until the task is dropped. The hash at start is taken as already applied.
    pub async fn run(self) {
        tracing::info!(file = %self.file.display(), interval = ?self.interval, "watching Prometheus configuration");
        let mut applied = file_hash(&self.file);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(now) = file_hash(&self.file) else { continue };
            if applied == Some(now) {
                continue;
            }
            tracing::info!(file = %self.file.display(), "configuration changed; reloading Prometheus");
            self.metrics.reloads.inc();
            match self.client.reload().await {
                Ok(()) => {
                    tracing::info!("Prometheus reloaded");
                    applied = Some(now);
                }
                Err(e) => {
                    self.metrics.reload_failures.inc();
                    tracing::error!(error = %e, "reloading Prometheus failed (does it run with --web.enable-lifecycle?); retrying");
                }
            }
        }
    }
}
