//! Float samples generated per second on one core, in CPU time and wall time.
//!
//! `cargo run --release -p hypnos-generate --example generate_rate [SERIES] [HOURS]` writes
//! thanosbench-style float gauges (SERIES series, default 10,000, × HOURS hours, default 24, at
//! 15 s in 2 h blocks) into a temporary directory and prints samples/s. CPU time is this
//! thread's, from `/proc/thread-self/schedstat` (Linux): other load on the machine inflates it
//! far less than wall time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use hypnos_generate::plan::{HOUR, SECOND};
use hypnos_generate::{Options, Output, Plan, Profile, generate};

/// (ns on a CPU, ns waiting for one) of this thread.
fn schedstat() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("needs Linux /proc/thread-self/schedstat");
    let mut f = s.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (f.next().unwrap(), f.next().unwrap())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(10_000);
    let hours: i64 = args.next().map(|a| a.parse().unwrap()).unwrap_or(24);
    // Profile::continuous(targets, series per target): 100 series per target like thanosbench.
    let plan = Plan::custom(
        Profile::continuous(series.div_ceil(100), 100.min(series)),
        hours * HOUR,
        2 * HOUR,
        15 * SECOND,
        hours * HOUR + 2 * HOUR,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ((cpu0, wait0), wall0) = (schedstat(), Instant::now());
    let s = generate(
        &plan,
        &Output::Dirs(vec![dir.path().to_path_buf()]),
        &Options::default(),
    )
    .unwrap();
    let ((cpu1, wait1), wall) = (schedstat(), wall0.elapsed());
    let (cpu, wait) = ((cpu1 - cpu0) as f64 / 1e9, (wait1 - wait0) as f64 / 1e9);
    let n = s.samples as f64;
    println!(
        "{} series × {hours}h: {} samples, {} blocks, {:.1} MiB\n\
         {:.2}M samples/s CPU time ({cpu:.2} s on a CPU)\n\
         {:.2}M samples/s wall ({:.2} s = {cpu:.2} s running + {wait:.2} s waiting for a CPU + {:.2} s blocked, mostly fsync)",
        s.series,
        s.samples,
        s.blocks.len(),
        s.bytes as f64 / (1024.0 * 1024.0),
        n / cpu / 1e6,
        n / wall.as_secs_f64() / 1e6,
        wall.as_secs_f64(),
        (wall.as_secs_f64() - cpu - wait).max(0.0),
    );
}
