//! The config reloader: polls the content hash of Prometheus's configuration file and, when it
//! differs from the last one Prometheus accepted, asks Prometheus to reload (`POST /-/reload`).
//!
//! Behaviour follows Thanos's `pkg/reloader`:
//! - the first check happens at start-up and, as nothing has been applied yet, always reloads
//!   (so a configuration edited while the sidecar was down is picked up);
//! - a failed reload is retried every `--reloader.retry-interval` until it succeeds or the next
//!   watch interval begins; after that every check retries until one succeeds;
//! - a configuration file that cannot be read at start-up is an error that stops the sidecar;
//!   later read errors are counted as failed apply operations and the watch goes on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::metrics::SidecarMetrics;
use crate::promclient::PromClient;

#[derive(Debug, thiserror::Error)]
#[error("reloader: reading the watched configuration file {}: {source}", file.display())]
pub struct ReloaderError {
    pub file: PathBuf,
    #[source]
    pub source: std::io::Error,
}

#[derive(Debug)]
pub struct Reloader {
    file: PathBuf,
    client: PromClient,
    watch_interval: Duration,
    retry_interval: Duration,
    metrics: SidecarMetrics,
    /// Hash of the content Prometheus last accepted; `None` before the first reload.
    applied: Option<u64>,
}

/// Content hash of the file.
fn file_hash(path: &Path) -> Result<u64, ReloaderError> {
    std::fs::read(path)
        .map(|b| xxhash_rust::xxh64::xxh64(&b, 0))
        .map_err(|source| ReloaderError {
            file: path.to_path_buf(),
            source,
        })
}

impl Reloader {
    /// Checks that the file is readable now, as Thanos refuses to start otherwise.
    pub fn new(
        file: PathBuf,
        client: PromClient,
        watch_interval: Duration,
        retry_interval: Duration,
        metrics: SidecarMetrics,
    ) -> Result<Self, ReloaderError> {
        file_hash(&file)?;
        Ok(Reloader {
            file,
            client,
            watch_interval,
            retry_interval,
            metrics,
            applied: None,
        })
    }

    /// Watches until the task is dropped; the first check runs at once.
    pub async fn run(mut self) {
        if self.watch_interval.is_zero() {
            tracing::info!(file = %self.file.display(), "--reloader.watch-interval=0: not watching");
            return;
        }
        tracing::info!(
            file = %self.file.display(),
            interval = ?self.watch_interval,
            "watching Prometheus configuration"
        );
        let mut tick = tokio::time::interval(self.watch_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tick.tick().await;
            // Thanos counts apply operations of the watch loop, not the initial one.
            if !first {
                self.metrics.config_apply_operations.inc();
            }
            first = false;
            if let Err(e) = self.apply().await {
                self.metrics.config_apply_operation_failures.inc();
                tracing::error!(error = %e, "reloader: apply");
            }
        }
    }

    /// Reloads Prometheus when the file's content differs from the last accepted one,
    /// retrying until the next watch interval is due.
    async fn apply(&mut self) -> Result<(), ReloaderError> {
        let mut hash = file_hash(&self.file)?;
        if self.applied == Some(hash) {
            return Ok(());
        }
        let give_up = Instant::now() + self.watch_interval;
        loop {
            // Prometheus reads the file when it reloads: remember what it will read now, not
            // what an earlier attempt saw (an edit between retries is then not reloaded twice).
            hash = file_hash(&self.file)?;
            self.metrics.reloads.inc();
            match self.client.reload().await {
                Ok(()) => {
                    self.applied = Some(hash);
                    self.metrics.last_reload_successful.set(1);
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    self.metrics.last_reload_success_timestamp.set(now);
                    tracing::info!(file = %self.file.display(), "Reload triggered");
                    return Ok(());
                }
                Err(e) => {
                    self.metrics.reload_failures.inc();
                    self.metrics.last_reload_successful.set(0);
                    tracing::error!(
                        error = %e,
                        "Failed to trigger reload (does Prometheus run with --web.enable-lifecycle?). Retrying."
                    );
                }
            }
            if Instant::now() + self.retry_interval >= give_up {
                return Ok(());
            }
            tokio::time::sleep(self.retry_interval).await;
        }
    }
}
