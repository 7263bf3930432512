//! Gives the memory glibc's malloc keeps after a large query back to the system.
//!
//! glibc never returns freed memory in the middle of its heaps on its own: after a query that
//! built a large matrix, the querier's resident size stayed at that query's peak (220 MiB after
//! a few 10,000-series queries whose live data was under 50 MiB), and every later query's peak
//! started from there. `malloc_trim(0)` releases the free pages of every arena; calling it once
//! a second is the same idea as Go's background scavenger, which Prometheus and Thanos rely on.

use std::time::Duration;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // An FFI call to glibc; it takes a size and touches no Rust memory.
fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// Starts a background thread trimming every `interval`.
pub fn spawn(interval: Duration) {
    let started = std::thread::Builder::new().name("malloc-trim".into()).spawn(move || {
        loop {
            std::thread::sleep(interval);
            trim();
        }
    });
    if let Err(e) = started {
        tracing::warn!("not trimming the heap: {e}");
    }
}
