//! Realistic Prometheus TSDB history for demos and benchmarks.
//!
//! A [`Plan`] says which blocks to write (thanosbench's named plans such as
//! `continuous-30d-tiny`, or a custom duration) and which series fill them (a
//! [`Profile`]: thanosbench's continuous gauges, or the seed's own metrics with counters,
//! classic and native histograms, restarts and target churn). [`generate`] writes the
//! blocks into Prometheus data directories or a bucket, optionally as an HA pair whose
//! replicas differ only in a few milliseconds of timestamp jitter, small gaps and the
//! replica label.
//!
//! ```no_run
//! # fn main() -> Result<(), hypnos_generate::GenerateError> {
//! use hypnos_generate::{Options, Output, Plan, generate, plan};
//! let plan = Plan::named("seed-1w", plan::align_down(plan::now_ms()))?;
//! let opts = Options::default().with_replicas(2).with_label("cluster", "ap-south1");
//! let out = Output::Dirs(vec![".hypnos-demo/data/prom1".into(), ".hypnos-demo/data/prom10".into()]);
//! let summary = generate(&plan, &out, &opts)?;
//! println!("{summary}");
//! # Ok(()) }
//! ```
//!
//! Everything is deterministic for a given seed: values, timestamps, gaps and block ULIDs.
//! Series are produced in label order, one at a time, and streamed into the block files
//! ([`hypnos_tsdb::series_writer::SeriesBlockWriter`]), so memory stays at one series'
//! chunks plus the index per block and replica.

pub mod plan;
pub mod profile;
pub mod rng;
pub mod values;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hypnos_objstore::Bucket;

pub use plan::{BlockRange, Plan, Profile};
pub use writer::generate;

/// Source written into meta.json's `thanos.source` (thanosbench writes `blockgen`).
pub const SOURCE: &str = "hypnos-generate";

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid plan: {0}")]
    Plan(String),
    #[error("invalid options: {0}")]
    Options(String),
    #[error(transparent)]
    Tsdb(#[from] hypnos_tsdb::Error),
    #[error("uploading {key} to {bucket}: {source}")]
    Upload {
        bucket: String,
        key: String,
        #[source]
        source: hypnos_objstore::BucketError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where blocks go.
#[derive(Clone)]
pub enum Output {
    /// One Prometheus data directory per replica (`Dirs[i]` gets replica `i`).
    Dirs(Vec<PathBuf>),
    /// A bucket: blocks are staged in a temporary directory, then uploaded chunks first,
    /// index next and meta.json last. Replicas differ in their external replica label.
    Bucket(Arc<dyn Bucket>),
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Dirs(d) => f.debug_tuple("Dirs").field(d).finish(),
            Output::Bucket(b) => f.debug_tuple("Bucket").field(&b.name()).finish(),
        }
    }
}

/// Progress reported while generating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub samples_done: u64,
    /// An estimate (gaps make the real number slightly lower).
    pub samples_total: u64,
    pub blocks_done: u64,
    pub blocks_total: u64,
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// How to write a plan.
#[derive(Clone)]
pub struct Options {
    /// Seeds every random choice.
    pub seed: u64,
    /// How many HA replicas to write (1 = no HA twin).
    pub replicas: usize,
    /// External label distinguishing replicas (`replica`, as in the seed's configs).
    pub replica_label: String,
    /// External labels for meta.json's `thanos.labels` (never part of the series).
    pub external_labels: BTreeMap<String, String>,
    /// Scrape timestamp jitter in ms; `None` = 0 for one replica, 5 ms for HA replicas.
    pub timestamp_jitter: Option<i64>,
    /// Whether replicas miss a few scrapes now and then; `None` = only with several replicas.
    pub gaps: Option<bool>,
    /// Called every few thousand series with the progress so far.
    pub progress: Option<ProgressFn>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("seed", &self.seed)
            .field("replicas", &self.replicas)
            .field("replica_label", &self.replica_label)
            .field("external_labels", &self.external_labels)
            .field("timestamp_jitter", &self.timestamp_jitter)
            .field("gaps", &self.gaps)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            replicas: 1,
            replica_label: "replica".into(),
            external_labels: BTreeMap::new(),
            timestamp_jitter: None,
            gaps: None,
            progress: None,
        }
    }
}

impl Options {
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.external_labels.insert(name.into(), value.into());
        self
    }

    pub fn with_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    pub(crate) fn jitter(&self) -> i64 {
        self.timestamp_jitter
            .unwrap_or(if self.replicas > 1 { 5 } else { 0 })
            .max(0)
    }

    pub(crate) fn gaps_enabled(&self) -> bool {
        self.gaps.unwrap_or(self.replicas > 1)
    }

    /// The external labels of replica `i`: the configured ones plus the replica label
    /// when there are several replicas.
    pub fn labels_for_replica(&self, i: usize) -> BTreeMap<String, String> {
        let mut l = self.external_labels.clone();
        if self.replicas > 1 {
            l.insert(self.replica_label.clone(), i.to_string());
        }
        l
    }
}

/// One block written.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenBlock {
    pub replica: usize,
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
    pub series: u64,
    pub samples: u64,
    pub bytes: u64,
    /// The block directory, or `<bucket>/<ULID>/` for uploads.
    pub location: String,
}

/// What [`generate`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Distinct series written, summed over replicas.
    pub series: u64,
    pub samples: u64,
    pub blocks: Vec<WrittenBlock>,
    /// Bytes of chunks, index and meta.json (and tombstones for directories).
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Summary {
    pub fn samples_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.samples as f64 / s } else { 0.0 }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} series, {} samples, {} blocks, {:.1} MiB in {:.2}s ({:.2}M samples/s)",
            self.series,
            self.samples,
            self.blocks.len(),
            self.bytes as f64 / (1024.0 * 1024.0),
            self.elapsed.as_secs_f64(),
            self.samples_per_second() / 1e6
        )
    }
}
