//! The data model every Hypnos crate speaks: label sets, label matchers, float samples and
//! native histograms, plus Prometheus's special values (staleness markers).
//!
//! This crate has no I/O and no async: formats, engines and components all meet here.

pub mod histogram;
pub mod labels;
pub mod matcher;
pub mod sample;

pub use histogram::{CounterResetHint, FloatHistogram, Histogram, Span};
pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{STALE_NAN_BITS, Sample, SampleValue, is_stale_nan, stale_nan};

/// Milliseconds since the Unix epoch, the unit of every timestamp in Prometheus and Thanos.
pub type Timestamp = i64;
