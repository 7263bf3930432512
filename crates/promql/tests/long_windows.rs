//! Range queries answer `changes`, `resets`, `rate` and `increase` from one pass over each
//! series instead of scanning every step's window. An instant query (a single window) takes
//! the scan, which is the definition: every step of a range query must equal the instant
//! query at that step bit for bit, with the same annotations, on series with counter resets,
//! repeated values, NaN, staleness markers, infinities, gaps and histograms mixed in, over
//! selectors and subqueries, with `offset` and `@`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use futures::executor::block_on;
use hypnos_model::{CounterResetHint, FloatHistogram, Labels, Span, stale_nan};
use hypnos_promql::{Engine, MemStorage, Value};
use proptest::prelude::*;

/// One sample to append: a float, a histogram, or a gap before the next one.
#[derive(Clone, Debug)]
enum Next {
    /// Add `delta` to the running counter (a counter that keeps rising).
    Rise(f64),
    /// Drop the counter to a small value: a counter reset.
    Reset(f64),
    /// A value from the awkward ones.
    Odd(f64),
    /// Repeat the previous value.
    Same,
    Stale,
    /// A histogram of the given bucket counts and hint.
    Hist(u8, u8, bool),
    /// Skip ahead (a gap longer than most windows).
    Gap(i64),
}

fn next() -> impl Strategy<Value = Next> {
    prop_oneof![
        6 => (0u8..8).prop_map(|d| Next::Rise(f64::from(d) * 0.5)),
        2 => (0u8..4).prop_map(|v| Next::Reset(f64::from(v))),
        1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 1e300, -3.5])
            .prop_map(Next::Odd),
        2 => Just(Next::Same),
        1 => Just(Next::Stale),
        1 => (0u8..6, 0u8..6, any::<bool>()).prop_map(|(a, b, gauge)| Next::Hist(a, b, gauge)),
        1 => (60_000i64..900_000).prop_map(Next::Gap),
    ]
}

fn histogram(a: u8, b: u8, gauge: bool) -> FloatHistogram {
    let buckets = vec![f64::from(a), f64::from(b)];
    FloatHistogram {
        counter_reset_hint: if gauge {
            CounterResetHint::Gauge
        } else {
            CounterResetHint::Unknown
        },
        schema: 0,
        zero_threshold: 0.001,
        count: f64::from(a) + f64::from(b),
        sum: f64::from(a) * 1.5 + f64::from(b),
        positive_spans: vec![Span::new(0, 2)],
        positive_buckets: buckets,
        ..Default::default()
    }
}

/// What `add_series` makes of a plan.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Histogram steps become floats.
    Floats,
    /// As planned.
    Mixed,
    /// Counter steps become histograms whose buckets follow the counter.
    Histograms,
}

/// Appends a series built from `plan`.
fn add_series(storage: &mut MemStorage, name: &str, plan: &[(i64, Next)], kind: Kind) {
    let floats_only = kind == Kind::Floats;
    let labels = Labels::from_pairs([("__name__", "m".to_string()), ("s", name.to_string())]);
    let (mut t, mut counter) = (0i64, 10.0f64);
    for (gap, n) in plan {
        t += gap;
        if kind == Kind::Histograms
            && let Next::Rise(_) | Next::Reset(_) | Next::Same | Next::Odd(_) = n
        {
            if let Next::Rise(d) = n {
                counter += d;
            } else if let Next::Reset(v) = n {
                counter = *v;
            }
            let c = counter.min(250.0) as u8;
            storage.add_histogram(&labels, t, histogram(c / 2, c - c / 2, false));
            continue;
        }
        match n {
            Next::Rise(d) => {
                counter += d;
                storage.add_float(&labels, t, counter);
            }
            Next::Reset(v) => {
                counter = *v;
                storage.add_float(&labels, t, counter);
            }
            Next::Odd(v) => storage.add_float(&labels, t, *v),
            Next::Same => storage.add_float(&labels, t, counter),
            Next::Stale => storage.add_float(&labels, t, stale_nan()),
            Next::Hist(a, b, gauge) if !floats_only => storage.add_histogram(&labels, t, histogram(*a, *b, *gauge)),
            Next::Hist(..) => storage.add_float(&labels, t, counter),
            Next::Gap(g) => t += g,
        }
    }
}

/// A step's value, comparable bit for bit.
#[derive(Debug, PartialEq)]
enum Out {
    F(u64),
    H(Box<FloatHistogram>),
}

/// A histogram as the API shows it: without its counter reset hint. (A subquery's hints
/// depend on the inner step before the window, which an instant query does not evaluate;
/// `last_over_time` passes them through.)
fn shown(h: &FloatHistogram) -> Out {
    let mut h = h.clone();
    h.counter_reset_hint = CounterResetHint::Unknown;
    Out::H(Box::new(h))
}

fn range_values(v: Value) -> BTreeSet<(String, i64, String)> {
    let Value::Matrix(m) = v else {
        panic!("range query gave {v:?}")
    };
    let mut out = BTreeSet::new();
    for s in m {
        let metric = format!("{:?}", s.metric);
        for p in s.floats {
            out.insert((metric.clone(), p.t, format!("{:?}", Out::F(p.v.to_bits()))));
        }
        for p in s.histograms {
            out.insert((metric.clone(), p.t, format!("{:?}", shown(&p.h))));
        }
    }
    out
}

fn instant_values(v: Value, ts: i64) -> BTreeSet<(String, i64, String)> {
    let Value::Vector(samples) = v else {
        panic!("instant query gave {v:?}")
    };
    samples
        .into_iter()
        .map(|s| {
            let out = match s.h {
                Some(h) => shown(&h),
                None => Out::F(s.f.to_bits()),
            };
            (format!("{:?}", s.metric), ts, format!("{out:?}"))
        })
        .collect()
}

fn check(storage: &MemStorage, query: &str, start: i64, step: i64, steps: i64) -> Result<(), TestCaseError> {
    let engine = Engine::default();
    let end = start + (steps - 1) * step;
    let got = block_on(engine.range_query(storage, query, start, end, step, None)).unwrap();
    let got_notes: BTreeSet<String> = got.annotations.iter().map(ToString::to_string).collect();
    let got = range_values(got.value);
    let mut want = BTreeSet::new();
    let mut want_notes = BTreeSet::new();
    for k in 0..steps {
        let ts = start + k * step;
        let r = block_on(engine.instant_query(storage, query, ts, None)).unwrap();
        want_notes.extend(r.annotations.iter().map(ToString::to_string));
        want.extend(instant_values(r.value, ts));
    }
    prop_assert_eq!(got, want, "{} from {} step {} x{}", query, start, step, steps);
    prop_assert_eq!(got_notes, want_notes, "annotations of {}", query);
    Ok(())
}

const FUNCS: &[&str] = &[
    "changes",
    "resets",
    "rate",
    "increase",
    "delta",
    "irate",
    "count_over_time",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn range_steps_equal_the_scan(
        floats in prop::collection::vec((1_000i64..30_000, next()), 0..160),
        mixed in prop::collection::vec((1_000i64..30_000, next()), 0..80),
        hists in prop::collection::vec((1_000i64..30_000, next()), 0..80),
        func in prop::sample::select(FUNCS),
        range_s in prop::sample::select(vec![10i64, 45, 60, 300, 600, 1_800, 3_600]),
        step_s in prop::sample::select(vec![1i64, 5, 15, 30, 60, 300]),
        start_s in 0i64..2_000,
        steps in 2i64..40,
        modifier in prop::sample::select(vec!["", " offset 2m", " @ 900"]),
        subquery_step in prop::sample::select(vec!["", ":7s", ":20s", ":1m"]),
    ) {
        let mut storage = MemStorage::new();
        add_series(&mut storage, "floats", &floats, Kind::Floats);
        add_series(&mut storage, "mixed", &mixed, Kind::Mixed);
        add_series(&mut storage, "hists", &hists, Kind::Histograms);
        let query = format!("{func}(m[{range_s}s{subquery_step}]{modifier})");
        check(&storage, &query, start_s * 1000, step_s * 1000, steps)?;
    }
}

/// A long counter with a reset every few hundred samples and steps much shorter than the
/// window: the case the prefix exists for, with many windows holding several resets.
#[test]
fn long_counter_windows_equal_the_scan() {
    let mut storage = MemStorage::new();
    let labels = Labels::from_pairs([("__name__", "m".to_string())]);
    let mut v = 0.0f64;
    for i in 0..5_000i64 {
        v = if i % 337 == 0 {
            (i % 7) as f64
        } else {
            v + 0.1 * (i % 13) as f64
        };
        storage.add_float(&labels, i * 15_000, v);
    }
    for func in ["rate", "increase", "changes", "resets"] {
        let query = format!("{func}(m[6h])");
        check(&storage, &query, 20_000_000, 150_000, 300).unwrap();
    }
}
