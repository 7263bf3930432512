//! How the process uses glibc's malloc: one arena, and free pages given back once a second.
//!
//! **One arena.** glibc gives threads their own arenas (up to eight per core) so that they do
//! not wait on one lock. Each arena keeps its own free pages and its own fragmentation, and
//! tokio moves a query's work between worker and blocking threads, so the memory of one query
//! ended up spread over several arenas. With one arena, the peak resident size over the
//! benchmark's query set fell from 50 to 42 MiB (store + querier, 1k series) and from 158 to
//! 135 MiB (10k series). Small allocations mostly come from the per-thread cache, which
//! needs no lock, so the lock matters little on a few cores. `MALLOC_ARENA_MAX` or
//! `GLIBC_TUNABLES` in the environment still win: the limit is only set when neither is.
//!
//! **Trimming.** glibc never returns freed memory in the middle of its heaps on its own: after
//! a query that built a large matrix, the querier's resident size stayed at that query's peak
//! (220 MiB after a few 10,000-series queries whose live data was under 50 MiB), and every
//! later query's peak started from there. `malloc_trim(0)` releases the free pages of every
//! arena, the same idea as Go's background scavenger, which Prometheus and Thanos rely on.
//! It runs once the heap has been still for a second: trimming between queries that follow
//! each other made every query fault in and zero its memory again (16% of the querier's CPU
//! on a 930k-point answer), while memory freed by one query is reused by the next.

use std::time::Duration;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // FFI calls into glibc's malloc; they take integers and touch no Rust memory.
mod glibc {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        fn mallopt(param: std::os::raw::c_int, value: std::os::raw::c_int) -> std::os::raw::c_int;
        fn mallinfo2() -> MallInfo2;
    }

    /// glibc's `struct mallinfo2` (glibc 2.33 and later).
    #[repr(C)]
    #[derive(Clone, Copy, Default, PartialEq, Eq)]
    pub struct MallInfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }

    /// Bytes allocated and held free, in the heaps and in mmapped blocks: equal in two
    /// readings when nothing was allocated or freed in between (or exactly as much).
    pub fn usage() -> (usize, usize, usize) {
        // SAFETY: mallinfo2 reads glibc's arena statistics under their locks and returns a
        // plain struct by value.
        let m = unsafe { mallinfo2() };
        (m.uordblks, m.fordblks, m.hblkhd)
    }

    /// `M_ARENA_MAX` from glibc's malloc.h.
    const M_ARENA_MAX: std::os::raw::c_int = -8;

    pub fn trim() {
        // SAFETY: malloc_trim only walks glibc's own arenas under their locks.
        unsafe {
            malloc_trim(0);
        }
    }

    pub fn limit_arenas(n: i32) -> bool {
        // SAFETY: mallopt sets a malloc parameter under glibc's own lock.
        unsafe { mallopt(M_ARENA_MAX, n) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub fn trim() {}
    pub fn usage() -> (usize, usize, usize) {
        (0, 0, 0)
    }
    pub fn limit_arenas(_: i32) -> bool {
        true
    }
}

/// Limits malloc to one arena unless the environment configures arenas itself; false if glibc
/// refused. Call before any thread is started: threads pick their arena on their first
/// allocation.
pub fn limit_arenas() -> bool {
    let configured = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    configured || glibc::limit_arenas(1)
}

/// Starts a background thread that trims once the heap has not changed for `interval`.
pub fn spawn_trim(interval: Duration) {
    let started = std::thread::Builder::new().name("malloc-trim".into()).spawn(move || {
        let mut last = glibc::usage();
        let mut trimmed = false;
        loop {
            std::thread::sleep(interval);
            let now = glibc::usage();
            if now != last {
                trimmed = false;
            } else if !trimmed {
                glibc::trim();
                trimmed = true;
                last = glibc::usage();
                continue;
            }
            last = now;
        }
    });
    if let Err(e) = started {
        tracing::warn!("not trimming the heap: {e}");
    }
}
