//! Value generators. Values are a function of the scrape step `k` (and the series' own
//! history), never of the replica, so HA replicas hold identical values at slightly
//! different timestamps. Families that must agree (histogram buckets, `_count`, error
//! counters, `total_http_requests`) derive their increments from the same per-target
//! traffic function, so they stay consistent without shared state.

use hypnos_model::{CounterResetHint, Histogram, Span};

use crate::plan::{DAY, HOUR};
use crate::profile::{CODES, Kind, POST_SHARE, SeriesSpec, Target};
use crate::rng::{Rng, hash, unit};

/// The smallest latency the demo-app's handler sleeps, in seconds.
const MIN_LATENCY: f64 = 0.05;
/// client_golang's default zero threshold for native histograms.
const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// Per-series generator state, carried from one block to the next.
#[derive(Clone, Debug)]
pub struct SeriesState {
    rng: Rng,
    init: bool,
    value: f64,
    jitter: f64,
    elapsed: i64,
    restart_cursor: usize,
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl SeriesState {
    pub fn new(spec: &SeriesSpec) -> Self {
        SeriesState {
            rng: Rng::new(spec.seed),
            init: false,
            value: 0.0,
            jitter: 0.0,
            elapsed: 0,
            restart_cursor: 0,
            buckets: Vec::new(),
            count: 0,
            sum: 0.0,
        }
    }

    /// Whether the target restarted at step `k` (consuming the restart).
    #[inline]
    fn restarted(&mut self, target: &Target, k: i64) -> bool {
        let mut hit = false;
        while let Some(&r) = target.restarts.get(self.restart_cursor) {
            if r > k {
                break;
            }
            self.restart_cursor += 1;
            hit = true;
        }
        hit
    }
}

/// Requests per second of a target at time `t`: a daily cycle around its mean rate.
#[inline]
fn rate_at(target: &Target, t: i64) -> f64 {
    let day_phase = (t.rem_euclid(DAY) as f64) / DAY as f64;
    target.rate * (1.0 + 0.6 * (std::f64::consts::TAU * day_phase).sin())
}

/// Requests with status `code` a target served during scrape step `k`.
#[inline]
fn requests(target: &Target, code: u8, k: i64, t: i64, interval: i64) -> u64 {
    let expected = rate_at(target, t) * (interval as f64 / 1000.0) / CODES.len() as f64;
    let u = unit(hash(&[target.seed, u64::from(code), k as u64]));
    (expected + u).floor().max(0.0) as u64
}

/// The slowest latency this hour: the handler sleeps uniformly in `[0.05, max]`.
#[inline]
fn max_latency(target: &Target, t: i64) -> f64 {
    let hour = t.div_euclid(HOUR);
    1.0 + unit(hash(&[target.seed, hour as u64, 0x1a7])) // 1 s to 2 s
}

#[inline]
fn latency_cdf(le: f64, max: f64) -> f64 {
    ((le - MIN_LATENCY) / (max - MIN_LATENCY)).clamp(0.0, 1.0)
}

/// Splits `n` observations over cumulative thresholds consistently: the same `u` for
/// every bucket of a family at a step keeps counts monotone in `le`.
#[inline]
fn cumulative_share(n: u64, cdf: f64, u: f64) -> u64 {
    ((n as f64) * cdf + u).floor() as u64
}

/// Requests of `code` split by method: POST gets about a fifth.
#[inline]
fn requests_by_method(target: &Target, method: u8, code: u8, k: i64, n: u64) -> u64 {
    let u = unit(hash(&[target.seed, u64::from(code), k as u64, 0x9e7]));
    let post = (((n as f64) * POST_SHARE + u).floor() as u64).min(n);
    if method == 1 { post } else { n - post }
}

/// The float value of a series at step `k` (base time `t`).
pub fn next_float(spec: &SeriesSpec, state: &mut SeriesState, target: &Target, k: i64, t: i64, interval: i64) -> f64 {
    match spec.kind {
        Kind::Gauge {
            min,
            max,
            jitter,
            change,
        } => {
            if !state.init {
                state.value = min + state.rng.float() * ((max - min) + 1.0);
                state.init = true;
            }
            if jitter > 0.0 && state.elapsed >= change {
                state.jitter = (state.rng.float() - 0.5) * jitter;
                state.elapsed = 0;
            }
            state.elapsed += interval;
            state.value + state.jitter
        }
        Kind::Walk { start } => {
            if !state.init || state.restarted(target, k) {
                state.value = start;
                state.init = true;
            }
            // The populator moves sessions every 50 s.
            if state.rng.float() < interval as f64 / 50_000.0 {
                const STEPS: [f64; 6] = [1.0, 2.0, 1.0, -2.0, -3.0, -1.0];
                state.value = (state.value + STEPS[state.rng.below(6) as usize]).max(0.0);
            }
            state.value
        }
        Kind::Up => 1.0,
        Kind::Requests { codes } => {
            if state.restarted(target, k) {
                state.value = 0.0;
            }
            for c in 0..CODES.len() as u8 {
                if codes & (1 << c) != 0 {
                    state.value += requests(target, c, k, t, interval) as f64;
                }
            }
            state.value
        }
        Kind::Bucket { code, le } => {
            if state.restarted(target, k) {
                state.value = 0.0;
            }
            let n = requests(target, code, k, t, interval);
            let u = unit(hash(&[target.seed, u64::from(code), k as u64, 0xb0c]));
            state.value += cumulative_share(n, latency_cdf(le, max_latency(target, t)), u) as f64;
            state.value
        }
        Kind::Count { code } => {
            if state.restarted(target, k) {
                state.value = 0.0;
            }
            state.value += requests(target, code, k, t, interval) as f64;
            state.value
        }
        Kind::Sum { code } => {
            if state.restarted(target, k) {
                state.value = 0.0;
            }
            let n = requests(target, code, k, t, interval);
            let mean = (MIN_LATENCY + max_latency(target, t)) / 2.0;
            state.value += n as f64 * mean;
            state.value
        }
        Kind::Native { .. } => f64::NAN,
    }
}

/// The native histogram of a series at step `k` (base time `t`).
pub fn next_histogram(
    spec: &SeriesSpec,
    state: &mut SeriesState,
    target: &Target,
    k: i64,
    t: i64,
    interval: i64,
) -> Histogram {
    let Kind::Native { method, code, schema } = spec.kind else {
        return Histogram::default();
    };
    // Buckets covering 0.05 s to 2 s: (2^(i-1)/2^s, 2^(i/2^s)] for i in first..=last.
    let (first, last) = if schema < 0 { (-2, 1) } else { (-4, 1) };
    let len = (last - first + 1) as usize;
    if state.buckets.len() != len {
        state.buckets = vec![0; len];
    }
    let mut hint = CounterResetHint::NotCounterReset;
    if !state.init {
        state.init = true;
        hint = CounterResetHint::Unknown;
    }
    if state.restarted(target, k) {
        state.buckets.iter_mut().for_each(|b| *b = 0);
        state.count = 0;
        state.sum = 0.0;
        hint = CounterResetHint::CounterReset;
    }
    let n = requests_by_method(target, method, code, k, requests(target, code, k, t, interval));
    let max = max_latency(target, t);
    let u = unit(hash(&[
        target.seed,
        u64::from(code),
        u64::from(method),
        k as u64,
        0x4a7,
    ]));
    let mut below = 0u64;
    for (j, b) in state.buckets.iter_mut().enumerate() {
        let upper = hypnos_model::histogram::bucket_upper_bound(schema, first + j as i32);
        let cum = cumulative_share(n, latency_cdf(upper, max), u).min(n);
        *b += cum.saturating_sub(below);
        below = below.max(cum);
    }
    state.count += n;
    state.sum += n as f64 * (MIN_LATENCY + max) / 2.0;
    let mut deltas = Vec::with_capacity(len);
    let mut prev = 0i64;
    for &b in &state.buckets {
        deltas.push(b as i64 - prev);
        prev = b as i64;
    }
    Histogram {
        counter_reset_hint: hint,
        schema,
        zero_threshold: ZERO_THRESHOLD,
        zero_count: 0,
        count: state.count,
        sum: state.sum,
        positive_spans: vec![Span::new(first, len as u32)],
        negative_spans: Vec::new(),
        positive_buckets: deltas,
        negative_buckets: Vec::new(),
        custom_values: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DAY, Plan};
    use crate::profile::expand;

    #[test]
    fn classic_histogram_families_are_consistent() {
        let plan = Plan::named("seed-1w", 7 * DAY).unwrap();
        let e = expand(&plan, 9);
        let target = &e.targets[0];
        let fam: Vec<&SeriesSpec> = e
            .series
            .iter()
            .filter(|s| {
                s.target == 0
                    && s.labels.get("status_code") == Some("502")
                    && s.labels
                        .metric_name()
                        .is_some_and(|n| n.starts_with("request_duration_seconds_"))
            })
            .collect();
        assert_eq!(fam.len(), 14);
        let mut states: Vec<SeriesState> = fam.iter().map(|s| SeriesState::new(s)).collect();
        for k in 0..2000i64 {
            let t = k * 15_000 + target.phase;
            let vals: Vec<(f64, &Kind)> = fam
                .iter()
                .zip(states.iter_mut())
                .map(|(s, st)| (next_float(s, st, target, k, t, 15_000), &s.kind))
                .collect();
            let mut buckets: Vec<(f64, f64)> = vals
                .iter()
                .filter_map(|(v, kind)| match kind {
                    Kind::Bucket { le, .. } => Some((*le, *v)),
                    _ => None,
                })
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "buckets not monotone at {k}"
            );
            let count = vals.iter().find(|(_, k)| matches!(k, Kind::Count { .. })).unwrap().0;
            assert_eq!(buckets.last().unwrap().1, count);
        }
    }

    #[test]
    fn native_histograms_count_matches_buckets() {
        let plan = Plan::named("seed-1w", 7 * DAY).unwrap();
        let e = expand(&plan, 3);
        let spec = e.series.iter().find(|s| s.kind.is_histogram()).unwrap();
        let target = &e.targets[spec.target as usize];
        let mut st = SeriesState::new(spec);
        for k in 0..500 {
            let h = next_histogram(spec, &mut st, target, k, k * 15_000, 15_000);
            let total: u64 = h.to_float().positive_buckets.iter().map(|&b| b as u64).sum();
            assert_eq!(total, h.count);
        }
    }
}
