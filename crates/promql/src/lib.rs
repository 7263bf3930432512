//! The PromQL engine: Prometheus 3.x semantics over an async, dyn-compatible storage trait.
//!
//! A query flows: [`parser::parse`] (our wrapper around `promql-parser`) → the engine walks
//! the AST to collect every selector with the time range it reads → one
//! [`storage::Queryable::select`] per selector → the synchronous evaluator computes all steps
//! node by node over the in-memory series → [`value::Value`] plus [`annotations::Annotations`],
//! or a [`error::QueryError`] whose [`error::ErrorType`] maps onto the HTTP API's `errorType`.

// Step loops index several parallel per-step arrays at once; iterators would obscure that.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

pub mod annotations;
pub mod engine;
pub mod error;
mod eval;
pub mod histogram_fmt;
pub mod histogram_ops;
pub mod parser;
pub mod promqltest;
pub mod storage;
pub mod value;

pub use annotations::{Annotation, Annotations, Severity};
pub use engine::{CancelToken, Engine, EngineOptions, QueryResult};
pub use error::{ErrorType, QueryError};
pub use storage::{
    FloatThinner, MemStorage, Queryable, SelectHints, SeriesSet, SeriesStream, StorageError, StorageSeries,
    keep_samples_read,
};
pub use value::{FPoint, HPoint, Matrix, Sample, Series, Timed, Value, Vector};
