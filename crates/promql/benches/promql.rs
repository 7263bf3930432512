//! Query benchmarks shaped like Prometheus's `promql/bench_test.go`: series a_X, b_X (floats)
//! and h_X (classic histogram buckets, le 0..9 and +Inf) for X in one, ten, hundred, plus a
//! `sparse` series; 10 s interval; a day of data plus the longest step count. Every case
//! runs as an instant query and as range queries of 1, 100 and 1000 steps ending at the
//! last sample, like upstream.
//!
//! `cargo bench -p hypnos-promql --bench promql -- 'FILTER'` runs a subset.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use hypnos_model::Labels;
use hypnos_promql::{Engine, MemStorage};

const INTERVAL: i64 = 10_000;
/// A day of 10 s samples plus the 1000 steps of the longest range query.
const NUM_INTERVALS: i64 = 8640 + 1000;

fn setup() -> MemStorage {
    let mut metrics: Vec<Labels> = Vec::new();
    for (size, n) in [("one", 1), ("ten", 10), ("hundred", 100)] {
        for i in 0..n {
            let l = |name: &str| {
                if size == "one" {
                    Labels::from_pairs([("__name__", format!("{name}_{size}"))])
                } else {
                    Labels::from_pairs([("__name__", format!("{name}_{size}")), ("l", i.to_string())])
                }
            };
            metrics.push(l("a"));
            metrics.push(l("b"));
            for le in (0..10).map(|j| j.to_string()).chain(["+Inf".to_string()]) {
                let mut b = l("h").builder();
                b.set("le", le);
                metrics.push(b.build());
            }
        }
    }
    let mut s = MemStorage::new();
    let n = metrics.len() as f64;
    let per_sparse = NUM_INTERVALS / 50;
    for step in 0..NUM_INTERVALS {
        let ts = step * INTERVAL;
        for (i, m) in metrics.iter().enumerate() {
            s.add_float(m, ts, step as f64 + i as f64 / n);
        }
        let sparse = Labels::from_pairs([
            ("__name__", "sparse".to_string()),
            ("l", (step / per_sparse).to_string()),
        ]);
        s.add_float(&sparse, ts, step as f64);
    }
    s
}

/// Upstream's range query cases (the `[1d]` ones are slow by design and only run when
/// asked for by filter).
const CASES: &[&str] = &[
    "a_X",
    "rate(a_X[1m])",
    "double_exponential_smoothing(a_X[1d], 0.3, 0.3)",
    "changes(a_X[1d])",
    "rate(a_X[1d])",
    "absent_over_time(a_X[1d])",
    "-a_X",
    "a_X - b_X",
    "a_X and b_X{l=~'.*[0-4]$'}",
    "a_X or b_X{l=~'.*[0-4]$'}",
    "a_X unless b_X{l=~'.*[0-4]$'}",
    "a_X and b_X{l='notfound'}",
    "abs(a_X)",
    "label_replace(a_X, 'l2', '$1', 'l', '(.*)')",
    "label_join(a_X, 'l2', '-', 'l', 'l')",
    "sum(a_X)",
    "avg(a_X)",
    "sum without (l)(h_X)",
    "sum without (le)(h_X)",
    "sum by (l)(h_X)",
    "sum by (le)(h_X)",
    "topk(1, a_X)",
    "topk(5, a_X)",
    "limitk(1, a_X)",
    "limitk(5, a_X)",
    "limit_ratio(0.1, a_X)",
    "limit_ratio(0.5, a_X)",
    "limit_ratio(-0.5, a_X)",
    "rate(a_X[1m]) + rate(b_X[1m])",
    "sum without (l)(rate(a_X[1m]))",
    "sum without (l)(rate(a_X[1m])) / sum without (l)(rate(b_X[1m]))",
    "histogram_quantile(0.9, rate(h_X[5m]))",
    "a_X + on(l) group_right a_one",
    "timestamp(a_X)",
];

/// Cases without `X`, with the step counts upstream gives them.
const FIXED: &[(&str, i64)] = &[
    ("rate(a_one[1m])", 10_000),
    ("rate(sparse[1m])", 10_000),
    ("count({__name__!=\"\"})", 1),
    ("count({__name__!=\"\",l=\"\"})", 1),
];

fn bench(c: &mut Criterion) {
    let storage = setup();
    let engine = Engine::default();
    let end = (NUM_INTERVALS - 1) * INTERVAL;
    let mut g = c.benchmark_group("query");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut cases: Vec<(String, i64)> = Vec::new();
    for c in CASES {
        for size in ["one", "ten", "hundred"] {
            for steps in [0, 1, 100, 1000] {
                cases.push((c.replace('X', size), steps));
            }
        }
    }
    for (q, steps) in FIXED {
        if *steps <= 1000 {
            cases.push((q.to_string(), *steps));
        }
    }
    for (q, steps) in cases {
        let id = if steps == 0 {
            "instant".to_string()
        } else {
            format!("steps={steps}")
        };
        g.bench_with_input(BenchmarkId::new(q.clone(), id), &steps, |b, &steps| {
            b.iter(|| {
                let r = if steps == 0 {
                    block_on(engine.instant_query(&storage, &q, end, None))
                } else {
                    block_on(engine.range_query(&storage, &q, end - steps * INTERVAL, end, INTERVAL, None))
                };
                assert!(r.is_ok(), "{q}: {:?}", r.err());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
