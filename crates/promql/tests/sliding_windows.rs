//! `max_over_time` / `min_over_time` slide a monotonic queue over the samples instead of
//! scanning each window: checked against the scan's definition on values with NaN, signed
//! zeros, ties, gaps and staleness markers, at steps shorter and longer than the range.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use hypnos_model::{Labels, is_stale_nan, stale_nan};
use hypnos_promql::{Engine, MemStorage, Value};

/// The scan Prometheus does: the first value, replaced by a strictly better one or when it is NaN.
fn scan(values: &[f64], max: bool) -> Option<f64> {
    let (first, rest) = values.split_first()?;
    let mut v = *first;
    for &x in rest {
        if (max && x > v) || (!max && x < v) || v.is_nan() {
            v = x;
        }
    }
    Some(v)
}

#[test]
fn sliding_extremes_equal_the_scan() {
    let pool = [
        1.0,
        -0.0,
        0.0,
        f64::NAN,
        3.0,
        3.0,
        -2.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        7.0,
    ];
    let mut storage = MemStorage::new();
    let mut raw: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..6 {
        let labels = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
        let mut samples = Vec::new();
        let mut t = (next() % 10_000) as i64;
        while t < 1_800_000 {
            let v = match next() % 23 {
                0 => stale_nan(),
                1 => {
                    t += 240_000;
                    continue;
                }
                k => pool[(k as usize + i) % pool.len()],
            };
            storage.add_float(&labels, t, v);
            samples.push((t, v));
            t += 5_000 + (next() % 20_000) as i64;
        }
        raw.push(samples);
    }
    let engine = Engine::default();
    for (range_s, step) in [(60, 15_000), (70, 60_000), (300, 10_000), (20, 120_000)] {
        for func in ["max_over_time", "min_over_time"] {
            let q = format!("{func}(m[{range_s}s])");
            let (start, end) = (0, 1_800_000);
            let got = block_on(engine.range_query(&storage, &q, start, end, step, None)).unwrap();
            let Value::Matrix(got) = got.value else {
                panic!("{q}: not a matrix")
            };
            for (i, samples) in raw.iter().enumerate() {
                let want: Vec<(i64, String)> = (0..)
                    .map(|k| start + k * step)
                    .take_while(|&ts| ts <= end)
                    .filter_map(|ts| {
                        let window: Vec<f64> = samples
                            .iter()
                            .filter(|&&(t, v)| t > ts - range_s * 1000 && t <= ts && !is_stale_nan(v))
                            .map(|&(_, v)| v)
                            .collect();
                        scan(&window, func == "max_over_time").map(|v| (ts, format!("{v:?}")))
                    })
                    .collect();
                let series = got.iter().find(|s| s.metric.get("i") == Some(&i.to_string()));
                let got: Vec<(i64, String)> = series
                    .map(|s| s.floats.iter().map(|p| (p.t, format!("{:?}", p.v))).collect())
                    .unwrap_or_default();
                assert_eq!(got, want, "{q} step {step} series {i}");
            }
        }
    }
}
