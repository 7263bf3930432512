//! Aggregations folded series by series as storage streams them (`Engine::stream_aggregations`)
//! must answer exactly as the evaluation over the whole selected set: same values bit for
//! bit, same series order, same annotations, same errors. Random series with NaN, StaleNaN,
//! infinities, overflowing sums, gaps, many groups; some runs mix in native histograms (the
//! fold hands those back to the usual path) and a storage that thins like the querier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::executor::block_on;
use futures::future::BoxFuture;
use hypnos_model::{FloatHistogram, Labels, Matcher, Span, Timestamp, stale_nan};
use hypnos_promql::{
    Engine, EngineOptions, MemStorage, QueryResult, Queryable, SelectHints, SeriesSet, SeriesStream, StorageError,
    StorageSeries, keep_samples_read,
};
use proptest::prelude::*;

/// MemStorage answering like the querier: float samples thinned to what the steps read.
struct Thinning<'a>(&'a MemStorage);

impl Queryable for Thinning<'_> {
    fn select<'a>(
        &'a self,
        hints: &'a SelectHints,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<SeriesSet, StorageError>> {
        Box::pin(async move {
            let all = self.0.select(hints, matchers).await?;
            let Some(first) = hints.eval_first else { return Ok(all) };
            Ok(all
                .into_iter()
                .map(|s| {
                    let mut floats = s.floats.clone();
                    keep_samples_read(&mut floats, first, hints.step, hints.end, hints.range);
                    Arc::new(StorageSeries {
                        labels: s.labels.clone(),
                        floats,
                        histograms: s.histograms.clone(),
                    })
                })
                .collect())
        })
    }

    fn label_names<'a>(
        &'a self,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        self.0.label_names(start, end, matchers)
    }

    fn label_values<'a>(
        &'a self,
        name: &'a str,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        self.0.label_values(name, start, end, matchers)
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const HOUR: i64 = 3_600_000;

/// Values that exercise Kahan compensation, NaN handling in min/max, infinities and sums that
/// overflow to infinity (avg's switch to an incremental mean).
fn value(rng: &mut Rng, counter: &mut f64) -> f64 {
    match rng.below(40) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => 1.6e308,
        4 => -1.7e308,
        5 => 1e16,
        6 => -0.0,
        7 => 0.1,
        _ => {
            *counter += rng.below(1000) as f64 * 0.37;
            *counter
        }
    }
}

fn histogram(count: f64) -> FloatHistogram {
    FloatHistogram {
        schema: 0,
        zero_threshold: 0.001,
        count,
        sum: count * 0.5,
        positive_spans: vec![Span::new(0, 2)],
        positive_buckets: vec![count / 2.0, count / 2.0],
        ..Default::default()
    }
}

/// `series` series of `m` (and a few of `n`) over two hours, with labels giving `groups`
/// groups by `g`; with `hists`, some series of `m` hold native histograms too.
fn storage(seed: u64, series: usize, groups: u64, hists: bool) -> MemStorage {
    let mut s = MemStorage::new();
    let mut rng = Rng(seed | 1);
    for i in 0..series {
        let name = if i % 7 == 6 { "n" } else { "m" };
        let g = rng.below(groups).to_string();
        let h = rng.below(3).to_string();
        let l = Labels::from_pairs([("__name__", name.to_string()), ("g", g), ("h", h), ("i", i.to_string())]);
        let with_hists = hists && rng.below(4) == 0;
        let mut t = rng.below(60_000) as i64;
        let mut counter = 0.0;
        let end = 2 * HOUR - rng.below(HOUR as u64) as i64 / 2;
        while t < end {
            match rng.below(100) {
                0..=2 => t += 300_000 + rng.below(600_000) as i64,
                3..=4 => s.add_float(&l, t, stale_nan()),
                _ if with_hists && rng.below(3) != 0 => {
                    counter += rng.below(5) as f64;
                    s.add_histogram(&l, t, histogram(counter));
                }
                _ => {
                    let v = value(&mut rng, &mut counter);
                    s.add_float(&l, t, v);
                }
            }
            t += 5_000 + rng.below(30_000) as i64;
        }
    }
    s
}

fn queries() -> Vec<String> {
    // (operator, parameter)
    let ops = [
        ("sum", ""),
        ("count", ""),
        ("min", ""),
        ("max", ""),
        ("group", ""),
        ("avg", ""),
        ("stddev", ""),
        ("stdvar", ""),
        ("topk", "2, "),
        ("bottomk", "1, "),
        ("topk", "(3.7), "),
    ];
    let modifiers = [
        "",
        " by (g)",
        " without (i)",
        " by (g, h)",
        " without (h, i)",
        " by (__name__)",
        " by (i)",
        " without (g)",
    ];
    let args = [
        "m",
        "(m)",
        "{__name__=~\"m|n\"}",
        "m offset 90s",
        "m{g!=\"1\"}",
        "rate(m[5m])",
        "max_over_time({__name__=~\"m|n\"}[3m])",
        "deriv(m[10m] offset 1m)",
        "quantile_over_time(0.5, m[5m])",
        "nothing",
        "rate(nothing[5m])",
    ];
    let mut out = Vec::new();
    for (op, param) in ops {
        for (i, modifier) in modifiers.iter().enumerate() {
            for (j, arg) in args.iter().enumerate() {
                // Every argument with every op; the modifiers spread over them.
                if (i + j) % 3 == 0 || j < 2 {
                    out.push(format!("{op}{modifier}({param}{arg})"));
                }
            }
        }
    }
    // Aggregations the fold leaves alone, and folds inside bigger expressions.
    out.extend(
        [
            "sum(m @ 3600)",
            "sum(m[10m:1m])",
            "sum(max_over_time(m[10m:1m]))",
            "sum by (g)(m) / count by (g)(m)",
            "avg(sum by (g, h)(m))",
            "-sum(m)",
            "sum(m) + on() group_left sum(rate(m[5m]))",
            "stddev by (g)(m)",
            "stdvar(rate(m[5m]))",
            "quantile by (g)(0.3, m)",
            "topk by (g)(2, m)",
            "topk(0, m)",
            "bottomk(-1, rate(m[5m]))",
            "topk(NaN, m)",
            "topk(1e30, m)",
            "topk(scalar(m{i=\"3\"}), m)",
            "count_values by (g)(\"v\", m)",
            "sum(m or n)",
            "sum({__name__=\"m\"} or {__name__=\"n\"})",
            "sum(rate(m[5m])) by (g)",
            "absent(sum(nothing))",
            "sum(abs(m))",
            "sum(sum_over_time(m[10m:2m]))",
            "sum(timestamp(m))",
            "histogram_count(sum(m))",
        ]
        .map(String::from),
    );
    out
}

fn show(r: &Result<QueryResult, hypnos_promql::QueryError>) -> String {
    match r {
        Ok(r) => format!("{:?}\n{:?}", r.value, r.annotations),
        Err(e) => format!("error: {e}"),
    }
}

/// Runs every `every`-th query (from `first`) both ways.
fn compare(storage: &dyn Queryable, (first, every): (usize, usize), ranges: &[(i64, i64, i64)], times: &[i64]) {
    let streamed = Engine::default();
    let whole = Engine::default().stream_aggregations(false);
    for q in queries().into_iter().skip(first % every).step_by(every) {
        for &(start, end, step) in ranges {
            let got = block_on(streamed.range_query(storage, &q, start, end, step, None));
            let want = block_on(whole.range_query(storage, &q, start, end, step, None));
            assert_eq!(show(&got), show(&want), "{q} over {start}..{end} step {step}");
        }
        for &t in times {
            let got = block_on(streamed.instant_query(storage, &q, t, None));
            let want = block_on(whole.instant_query(storage, &q, t, None));
            assert_eq!(show(&got), show(&want), "{q} at {t}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn streamed_aggregation_equals_whole_set(
        seed in any::<u64>(),
        series in 1usize..60,
        groups in 1u64..12,
        hists in proptest::bool::weighted(0.25),
        start in 0i64..1_800_000,
        span in 0i64..2 * HOUR,
        step in prop_oneof![Just(7_000i64), Just(15_000), Just(60_000), Just(300_000), Just(1_000_000)],
        thin in any::<bool>(),
        first in 0usize..8,
    ) {
        let mem = storage(seed, series, groups, hists);
        let ranges = [(start, start + span, step), (0, 2 * HOUR, 300_000)];
        let times = [start, start + span];
        // An eighth of the queries per case, a different eighth each time.
        if thin {
            compare(&Thinning(&mem), (first, 8), &ranges, &times);
        } else {
            compare(&mem, (first, 8), &ranges, &times);
        }
    }
}

/// The sample limit fails the streamed aggregation exactly where it fails the whole set.
#[test]
fn sample_limit_applies_as_before() {
    let mem = storage(7, 30, 4, false);
    for max_samples in [1, 50, 200, 1_000, 5_000, 20_000, 100_000] {
        let options = EngineOptions {
            max_samples,
            ..Default::default()
        };
        let streamed = Engine::new(options.clone());
        let whole = Engine::new(options).stream_aggregations(false);
        for q in [
            "sum(m)",
            "count by (g)(m)",
            "avg without (i)(rate(m[5m]))",
            "sum(m) + sum(m)",
        ] {
            let got = block_on(streamed.range_query(&mem, q, 0, 2 * HOUR, 60_000, None));
            let want = block_on(whole.range_query(&mem, q, 0, 2 * HOUR, 60_000, None));
            assert_eq!(show(&got), show(&want), "{q} with max_samples {max_samples}");
        }
    }
}

/// Counts how the engine asks storage for series.
#[derive(Default)]
struct Counting {
    mem: MemStorage,
    selects: AtomicUsize,
    streams: AtomicUsize,
}

impl Queryable for Counting {
    fn select<'a>(
        &'a self,
        hints: &'a SelectHints,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<SeriesSet, StorageError>> {
        self.selects.fetch_add(1, Ordering::Relaxed);
        self.mem.select(hints, matchers)
    }

    fn select_stream<'a>(&'a self, hints: &'a SelectHints, matchers: &'a [Matcher]) -> SeriesStream<'a> {
        self.streams.fetch_add(1, Ordering::Relaxed);
        self.mem.select_stream(hints, matchers)
    }

    fn label_names<'a>(
        &'a self,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        self.mem.label_names(start, end, matchers)
    }

    fn label_values<'a>(
        &'a self,
        name: &'a str,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        self.mem.label_values(name, start, end, matchers)
    }
}

/// Which aggregations fold the stream, and that histograms send the fold back to the usual
/// path (a second request to storage), with the same answer.
#[test]
fn folds_the_stream_and_hands_back_histograms() {
    let engine = Engine::default();
    let whole = Engine::default().stream_aggregations(false);
    let cases = [
        // (query, with histograms, (select_stream calls, select calls))
        ("sum by (g)(m)", false, (1, 0)),
        ("count(rate(m[5m]))", false, (1, 0)),
        ("avg without (i)((m))", false, (1, 0)),
        ("sum(m @ 100)", false, (0, 1)),
        ("stddev(m)", false, (1, 0)),
        ("quantile(0.5, m)", false, (0, 1)),
        ("topk by (g)(2, m)", false, (1, 0)),
        ("bottomk(3, rate(m[5m]))", false, (1, 0)),
        ("topk(2, m)", true, (1, 1)),
        ("sum(m or n)", false, (0, 2)),
        // The per-series call's own streaming when the aggregation is not folded.
        ("topk(1, rate(m[5m]))", false, (1, 0)),
        ("sum by (g)(m)", true, (1, 1)),
        ("max(rate(m[5m]))", true, (2, 0)),
    ];
    for (q, hists, (streams, selects)) in cases {
        let storage = Counting {
            mem: storage(11, 40, 5, hists),
            ..Default::default()
        };
        let got = block_on(engine.range_query(&storage, q, 0, 2 * HOUR, 60_000, None));
        assert_eq!(
            (
                storage.streams.load(Ordering::Relaxed),
                storage.selects.load(Ordering::Relaxed)
            ),
            (streams, selects),
            "{q}"
        );
        let want = block_on(whole.range_query(&storage, q, 0, 2 * HOUR, 60_000, None));
        assert_eq!(show(&got), show(&want), "{q}");
        if hists && q.starts_with("sum") {
            // The histograms are there and end up in the result.
            assert!(show(&got).contains("FloatHistogram"), "{q}");
        }
    }
}

/// A topk whose groups hold about one series each is handed back to the whole-set selection
/// once its heaps would outweigh the series' points.
#[test]
fn topk_over_single_series_groups_goes_the_usual_way() {
    let storage = Counting {
        mem: storage(5, 40, 5, false),
        ..Default::default()
    };
    let q = "bottomk by (i)(1, m)";
    let got = block_on(Engine::default().range_query(&storage, q, 0, 2 * HOUR, 1_000, None));
    assert_eq!(
        (
            storage.streams.load(Ordering::Relaxed),
            storage.selects.load(Ordering::Relaxed)
        ),
        (1, 1)
    );
    let want =
        block_on(
            Engine::default()
                .stream_aggregations(false)
                .range_query(&storage, q, 0, 2 * HOUR, 1_000, None),
        );
    assert_eq!(show(&got), show(&want));
}
