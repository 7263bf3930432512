//! Generation throughput: samples written per second into TSDB blocks on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hypnos_generate::plan::{HOUR, SECOND};
use hypnos_generate::{Options, Output, Plan, Profile, generate};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    g.sample_size(10);
    // thanosbench-style float gauges: 1,000 series × 24h at 15 s in 2h blocks.
    let plan = Plan::custom(
        Profile::continuous(100, 10),
        24 * HOUR,
        2 * HOUR,
        15 * SECOND,
        48 * HOUR,
    )
    .unwrap();
    g.throughput(Throughput::Elements(1000 * 24 * 240));
    g.bench_function("continuous_1000_series_24h", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            let s = generate(
                &plan,
                &Output::Dirs(vec![dir.path().to_path_buf()]),
                &Options::default(),
            )
            .unwrap();
            assert_eq!(s.samples, 1000 * 24 * 240);
        })
    });
    // The seed profile (counters, classic and native histograms), 10 targets × 24h.
    let plan = Plan::custom(Profile::seed(10), 24 * HOUR, 2 * HOUR, 15 * SECOND, 48 * HOUR).unwrap();
    let probe = tempfile::tempdir().unwrap();
    let n = generate(
        &plan,
        &Output::Dirs(vec![probe.path().to_path_buf()]),
        &Options::default(),
    )
    .unwrap()
    .samples;
    g.throughput(Throughput::Elements(n));
    g.bench_function("seed_10_targets_24h", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            generate(
                &plan,
                &Output::Dirs(vec![dir.path().to_path_buf()]),
                &Options::default(),
            )
            .unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
