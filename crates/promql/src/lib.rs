//! The PromQL engine (work in progress).
