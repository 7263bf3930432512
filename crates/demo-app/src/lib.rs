//! `hypnos demo-app`: the seed's instrumented Go service, rewritten.
//!
//! Six metrics with the seed's names, labels and buckets; a handler that answers a random
//! status after a random delay and records the JSON body's session counts; a populator that
//! moves three gauges on an interval; and an optional self-load that keeps traffic flowing
//! for the demo topology. `/metrics` speaks the text format and, when the scraper asks, the
//! delimited protobuf format, which Prometheus needs to ingest native histograms.
//!
//! The exposition is our own rather than a client library's: the seed's counters are named
//! `total_http_requests` and `request_error_counts`, and the Rust client appends `_total`
//! to counter names, which would change the series users query.

mod app;
mod args;
pub mod metrics;

pub use app::{DemoApp, run};
pub use args::DemoAppArgs;
