//! Storage may drop the float samples no evaluation of an instant-vector selector reads
//! (`SelectHints::eval_first`, `keep_samples_read`): every query must answer exactly as
//! with all samples, over irregular scrapes, gaps, staleness markers, offsets, `@` and subqueries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use futures::executor::block_on;
use futures::future::BoxFuture;
use hypnos_model::{FloatHistogram, Labels, Matcher, Span, Timestamp, stale_nan};
use hypnos_promql::{
    Engine, FloatThinner, MemStorage, Queryable, SelectHints, SeriesSet, StorageError, StorageSeries, keep_samples_read,
};

/// MemStorage answering like a store that thins by the hints.
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
                    let mut histograms = s.histograms.clone();
                    if !hints.histogram_stats {
                        keep_samples_read(&mut histograms, first, hints.step, hints.end, hints.range);
                    }
                    Arc::new(StorageSeries {
                        labels: s.labels.clone(),
                        floats,
                        histograms,
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

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn storage() -> MemStorage {
    let mut s = MemStorage::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..12 {
        let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
        // Irregular scrapes around 15 s, a gap now and then, a staleness marker sometimes.
        let mut t = rng.below(15_000);
        let mut v = 0.0;
        while t < 4 * 3_600_000 {
            match rng.below(100) {
                0..=1 => t += 600_000,
                2 => s.add_float(&l, t, stale_nan()),
                _ => {
                    v += rng.below(10) as f64;
                    s.add_float(&l, t, v);
                }
            }
            t += 10_000 + rng.below(10_000);
        }
    }
    // Native histogram series: counters with resets, a gap, staleness markers, and one series
    // that switches between floats and histograms.
    for i in 0..4 {
        let l = Labels::from_pairs([("__name__", "h".to_string()), ("i", i.to_string())]);
        let mut t = rng.below(15_000);
        let mut count = 0.0;
        while t < 4 * 3_600_000 {
            match rng.below(100) {
                0..=1 => t += 900_000,
                2 => s.add_float(&l, t, stale_nan()),
                3 => count = 0.0,
                4..=6 if i == 3 => s.add_float(&l, t, count),
                _ => {
                    count += rng.below(5) as f64;
                    s.add_histogram(&l, t, histogram(count));
                }
            }
            t += 10_000 + rng.below(10_000);
        }
    }
    s
}

fn histogram(count: f64) -> FloatHistogram {
    FloatHistogram {
        schema: 0,
        zero_threshold: 0.001,
        zero_count: 0.0,
        count,
        sum: count * 0.5,
        positive_spans: vec![Span::new(0, 2)],
        positive_buckets: vec![count / 2.0, count / 2.0],
        ..Default::default()
    }
}

#[test]
fn thinned_series_answer_like_all_samples() {
    let full = storage();
    let thin = Thinning(&full);
    let engine = Engine::default();
    let queries = [
        "m",
        "sum(m)",
        "m offset 7m",
        "max by (i) (m) - on(i) min by (i) (m offset 1m)",
        "timestamp(m)",
        "m @ 3600",
        "max_over_time(m[10m:1m])",
        "rate(m[5m]) + m",
        "count(m > 100)",
        "absent(m{i=\"99\"})",
        "rate(m[1m])",
        "sum by (i) (count_over_time(m[30s]))",
        "max_over_time(m[2m] offset 90s)",
        "changes(m[7m])",
        "last_over_time(m[1m]) - m",
        "h",
        "sum(h)",
        "histogram_count(h)",
        "histogram_sum(h offset 1m)",
        "histogram_avg(h)",
        "histogram_quantile(0.9, h)",
        "rate(h[5m])",
        "histogram_count(rate(h[2m]))",
        "count_over_time(h[1m])",
        "resets(h[10m])",
    ];
    let ranges = [
        (0, 14_400_000, 300_000),
        (1_234, 14_400_000, 60_000),
        (600_000, 900_000, 15_000),
        (5, 14_000_000, 3_600_000),
    ];
    for q in queries {
        for &(start, end, step) in &ranges {
            let want = block_on(engine.range_query(&full, q, start, end, step, None)).unwrap();
            let got = block_on(engine.range_query(&thin, q, start, end, step, None)).unwrap();
            assert_eq!(
                format!("{:?}", got.value),
                format!("{:?}", want.value),
                "{q} {start}..{end}/{step}"
            );
        }
        for t in [0, 299_999, 3_600_000, 7_777_777, 14_400_000] {
            let want = block_on(engine.instant_query(&full, q, t, None)).unwrap();
            let got = block_on(engine.instant_query(&thin, q, t, None)).unwrap();
            assert_eq!(format!("{:?}", got.value), format!("{:?}", want.value), "{q} @ {t}");
        }
    }
}

#[test]
fn keeps_the_newest_sample_at_or_before_each_step() {
    let pts = |ts: &[i64]| {
        ts.iter()
            .map(|&t| hypnos_promql::FPoint { t, v: t as f64 })
            .collect::<Vec<_>>()
    };
    let mut p = pts(&[1, 5, 10, 11, 19, 20, 21, 35, 41]);
    keep_samples_read(&mut p, 10, 10, 30, 0);
    // Steps 10, 20, 30: newest at or before each is 10, 20 and 21; 35 and 41 come after the last.
    assert_eq!(p, pts(&[10, 20, 21]));
    let mut p = pts(&[1, 5, 10, 11]);
    keep_samples_read(&mut p, 7, 0, 7, 0);
    assert_eq!(p, pts(&[5]));
    // Windows [t - 3, t] for t = 10, 20, 30.
    let mut p = pts(&[1, 5, 7, 8, 10, 11, 16, 17, 19, 26, 29, 31]);
    keep_samples_read(&mut p, 10, 10, 30, 3);
    assert_eq!(p, pts(&[7, 8, 10, 17, 19, 29]));
}

/// The definition, one sample at a time: the evaluation time a sample is first read at, and
/// whether it is read there.
fn keep_samples_read_by_definition(
    points: &[hypnos_promql::FPoint],
    first: i64,
    step: i64,
    last: i64,
    range: i64,
) -> Vec<i64> {
    let slot = |t: i64| -> Option<i64> {
        let k = if t <= first {
            0
        } else if step <= 0 {
            return None;
        } else {
            (t - first - 1) / step + 1
        };
        (first + k * step <= last).then_some(first + k * step)
    };
    let mut out = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let Some(eval_t) = slot(p.t) else { break };
        let keep = if range > 0 {
            eval_t <= p.t + range
        } else {
            points.get(i + 1).is_none_or(|n| slot(n.t) != Some(eval_t))
        };
        if keep {
            out.push(p.t);
        }
    }
    out
}

proptest::proptest! {
    #[test]
    fn thinning_matches_its_definition(
        gaps in proptest::collection::vec(1i64..40, 0..60),
        start in -50i64..50,
        first in -20i64..120,
        step in 0i64..25,
        span in -10i64..200,
        range in 0i64..40,
    ) {
        let mut t = start;
        let mut points = Vec::new();
        for g in gaps {
            t += g;
            points.push(hypnos_promql::FPoint { t, v: 0.0 });
        }
        let want = keep_samples_read_by_definition(&points, first, step, first + span, range);
        keep_samples_read(&mut points, first, step, first + span, range);
        let got: Vec<i64> = points.iter().map(|p| p.t).collect();
        proptest::prop_assert_eq!(got, want);
    }
}

proptest::proptest! {
    /// Thinning batch by batch while decoding keeps exactly what thinning afterwards keeps,
    /// whatever the batch boundaries.
    #[test]
    fn thinning_while_decoding_matches_thinning_after(
        gaps in proptest::collection::vec(1i64..40, 0..80),
        cuts in proptest::collection::vec(0usize..80, 0..8),
        start in -50i64..50,
        first in -20i64..120,
        step in 0i64..25,
        span in -10i64..200,
        range in 0i64..40,
        regular in proptest::bool::ANY,
    ) {
        let mut t = start;
        let mut samples = Vec::new();
        let every = gaps.first().copied().unwrap_or(1);
        for (i, g) in gaps.into_iter().enumerate() {
            // Regular scrapes are the common case the thinner's guesses are made for.
            t += if regular { every } else { g };
            samples.push((t, i as f64));
        }
        let mut want: Vec<hypnos_promql::FPoint> =
            samples.iter().map(|&(t, v)| hypnos_promql::FPoint { t, v }).collect();
        keep_samples_read(&mut want, first, step, first + span, range);

        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(samples.len())).collect();
        cuts.push(0);
        cuts.push(samples.len());
        cuts.sort_unstable();
        let mut thinner = FloatThinner::new(first, step, first + span, range);
        let mut got = Vec::new();
        for w in cuts.windows(2) {
            thinner.push_batch(&mut got, &samples[w[0]..w[1]]);
        }
        thinner.finish(&mut got);
        if let Some(max) = thinner.max_kept() {
            proptest::prop_assert!(got.len() <= max);
        }
        proptest::prop_assert_eq!(got, want);
    }
}

proptest::proptest! {
    /// `reads_any` says whether some evaluation `T` on the grid reads a time in
    /// `[min_t, max_t]`, i.e. `T - window < t <= T`: checked against every time in the range.
    #[test]
    fn chunks_no_evaluation_reads_are_found_exactly(
        first in -20i64..120,
        step in 0i64..25,
        span in -10i64..200,
        window in 0i64..40,
        min_t in -60i64..260,
        len in 0i64..60,
    ) {
        let last = first + span;
        let max_t = min_t + len;
        let thinner = FloatThinner::new(first, step, last, 0).with_window(window);
        let evals: Vec<i64> = match step {
            0 => (first <= last).then_some(first).into_iter().collect(),
            _ => (0..).map(|k| first + k * step).take_while(|&t| t <= last).collect(),
        };
        let read = window == 0
            || (min_t..=max_t).any(|t| evals.iter().any(|&e| e - window < t && t <= e));
        proptest::prop_assert_eq!(thinner.reads_any(min_t, max_t), read);
    }
}
