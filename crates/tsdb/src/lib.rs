//! Prometheus TSDB blocks (work in progress).
