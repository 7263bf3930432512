//! What every Hypnos component shares at run time: the common flags (`--log.level`,
//! `--log.format`), logging, and the operational HTTP endpoints Thanos components serve
//! (`/metrics`, `/-/healthy`, `/-/ready`).

pub mod logging;
pub mod ops;
pub mod shutdown;

pub use logging::{LogArgs, LogFormat, init_logging};
pub use ops::{OpsState, Readiness, ops_router};
pub use shutdown::shutdown_signal;
