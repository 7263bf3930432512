//! `histogram_*` functions over native and classic histograms.

use std::collections::HashMap;
use std::sync::Arc;

use hypnos_model::histogram::CUSTOM_BUCKETS_SCHEMA;
use hypnos_model::{FloatHistogram, Labels};

use super::windows::{Notes, kahan_inc};
use super::{Ev, Evaluator, StepCursor, StepValue, push_value};
use crate::error::QueryError;
use crate::histogram_ops::{self as hops, all_buckets};
use crate::parser::{Call, Expr};
use crate::value::{FPoint, HPoint, Matrix, Series};

/// Sum (or incremental mean) of the histograms of a window.
pub(crate) fn sum_or_avg_histograms(points: &[HPoint], avg: bool, notes: &mut Notes) -> Option<FloatHistogram> {
    let first = points.first()?;
    let mut hint = first.h.counter_reset_hint;
    for p in &points[1..] {
        hint = hops::fold_hint(hint, p.h.counter_reset_hint).0;
    }
    // A reset next to a not-reset anywhere in the input is a conflict, even with gauges
    // in between.
    use hypnos_model::CounterResetHint as Hint;
    notes.conflicting_resets |= points.iter().any(|p| p.h.counter_reset_hint == Hint::CounterReset)
        && points.iter().any(|p| p.h.counter_reset_hint == Hint::NotCounterReset);
    let refs: Vec<&FloatHistogram> = points.iter().map(|p| &*p.h).collect();
    match hops::sum_all(&refs, avg) {
        Ok((mut h, reconciled)) => {
            notes.custom_buckets_reconciled |= reconciled;
            h.counter_reset_hint = hint;
            Some(hops::compact(h))
        }
        Err(hops::OpError::MixedSchemas) => {
            notes.mixed_schemas = true;
            None
        }
        Err(hops::OpError::IncompatibleBounds) => {
            notes.incompatible_custom_buckets = true;
            None
        }
    }
}

/// Quantile of a native histogram.
pub(crate) fn native_quantile(q: f64, h: &FloatHistogram) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let buckets = all_buckets(h);
    let Some(first) = buckets.first().copied() else {
        return f64::NAN;
    };
    let mut bucket = first;
    let mut count = 0.0;
    let rank_total = q * h.count;
    for b in &buckets {
        bucket = *b;
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        // Exactly reaching the rank at a bucket's end moves on to the next populated bucket.
        if count > rank_total || (count == rank_total && count >= h.count) {
            break;
        }
    }
    let custom = h.schema == CUSTOM_BUCKETS_SCHEMA;
    if !custom && bucket.lower < 0.0 && bucket.upper > 0.0 {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            bucket.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            bucket.upper = 0.0;
        }
    } else if custom {
        if bucket.lower == f64::NEG_INFINITY {
            if bucket.upper <= 0.0 {
                return bucket.upper;
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            return bucket.lower;
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank_total {
        return bucket.upper;
    }
    let rank = rank_total - (count - bucket.count);
    let fraction = rank / bucket.count;
    if custom || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return bucket.lower + (bucket.upper - bucket.lower) * fraction;
    }
    let log_lower = bucket.lower.abs().log2();
    let log_upper = bucket.upper.abs().log2();
    if bucket.lower > 0.0 {
        (log_lower + (log_upper - log_lower) * fraction).exp2()
    } else {
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }
}

/// Fraction of observations between `lower` and `upper` in a native histogram.
pub(crate) fn native_fraction(lower: f64, upper: f64, h: &FloatHistogram) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let custom = h.schema == CUSTOM_BUCKETS_SCHEMA;
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for mut b in all_buckets(h) {
        let mut zero = false;
        if !custom && b.lower <= 0.0 && b.upper >= 0.0 {
            zero = true;
            if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
                b.lower = 0.0;
            } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
                b.upper = 0.0;
            }
        }
        if custom && b.lower == f64::NEG_INFINITY && b.upper > 0.0 {
            b.lower = 0.0;
        }
        let linear = |v: f64| {
            if b.lower == f64::NEG_INFINITY {
                rank + b.count
            } else if b.upper == f64::INFINITY {
                rank
            } else {
                rank + b.count * (v - b.lower) / (b.upper - b.lower)
            }
        };
        let exponential = |v: f64| {
            let (ll, lu, lv) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
            let fraction = if v > 0.0 {
                (lv - ll) / (lu - ll)
            } else {
                1.0 - ((lv - lu) / (ll - lu))
            };
            rank + b.count * fraction
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = if custom || zero {
                linear(lower)
            } else {
                exponential(lower)
            };
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = if custom || zero {
                linear(upper)
            } else {
                exponential(upper)
            };
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    // NaN observations are in no bucket: ranks end at the buckets' total.
    let total = if h.sum.is_nan() {
        all_buckets(h).iter().map(|b| b.count).sum::<f64>().min(h.count)
    } else {
        h.count
    };
    let _ = rank;
    if !lower_set || lower_rank > total {
        lower_rank = total;
    }
    if !upper_set || upper_rank > total {
        upper_rank = total;
    }
    (upper_rank - lower_rank) / h.count
}

fn native_stdvar(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let custom = h.schema == CUSTOM_BUCKETS_SCHEMA;
    let (mut var, mut c) = (0.0, 0.0);
    for b in all_buckets(h) {
        if b.count == 0.0 {
            continue;
        }
        let val = if custom {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let v = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 { -v } else { v }
        };
        let d = val - mean;
        (var, c) = kahan_inc(b.count * d * d, var, c);
    }
    (var + c) / h.count
}

/// A classic bucket: upper bound and cumulative count.
#[derive(Clone, Copy)]
struct ClassicBucket {
    upper: f64,
    count: f64,
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// Quantile of classic buckets; also whether monotonicity had to be forced.
fn classic_quantile(q: f64, mut buckets: Vec<ClassicBucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return (f64::NAN, false);
    }
    // Coalesce equal bounds.
    let mut merged: Vec<ClassicBucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(l) if l.upper == b.upper => l.count += b.count,
            _ => merged.push(b),
        }
    }
    let mut buckets = merged;
    let mut forced = false;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) {
            b.count = prev;
            continue;
        }
        if cur < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let n = buckets.len();
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = buckets[..n - 1].partition_point(|b| b.count < rank);
    if b == n - 1 {
        return (buckets[n - 2].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let mut start = 0.0;
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Fraction between bounds for classic buckets (Prometheus's `BucketFraction`).
fn classic_fraction(lower: f64, upper: f64, mut buckets: Vec<ClassicBucket>) -> f64 {
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return f64::NAN;
    }
    let mut merged: Vec<ClassicBucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(l) if l.upper == b.upper => l.count += b.count,
            _ => merged.push(b),
        }
    }
    let buckets = merged;
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let mut lb = if i > 0 { buckets[i - 1].upper } else { f64::NEG_INFINITY };
        let ub = b.upper;
        // The first bucket of positive bounds is taken to start at zero.
        if lb == f64::NEG_INFINITY && ub > 0.0 {
            lb = 0.0;
        }
        // No interpolation inside a bucket of infinite width.
        let interpolate = |v: f64| {
            if lb == f64::NEG_INFINITY {
                b.count
            } else if ub == f64::INFINITY {
                rank
            } else {
                rank + (b.count - rank) * (v - lb) / (ub - lb)
            }
        };
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

impl Evaluator<'_> {
    pub(super) fn eval_histogram_function(&mut self, c: &Call, args: &[&Expr]) -> Result<Ev, QueryError> {
        let name = c.func.name;
        match name {
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
                let stats = matches!(name, "histogram_count" | "histogram_sum" | "histogram_avg");
                let saved = std::mem::replace(&mut self.stats_decoding, stats);
                let m = self.vector_arg(args[0]);
                self.stats_decoding = saved;
                let m = m?;
                let out = m
                    .into_iter()
                    .filter_map(|s| {
                        let floats: Vec<FPoint> = s
                            .histograms
                            .iter()
                            .map(|p| {
                                let h = &p.h;
                                let v = match name {
                                    "histogram_count" => h.count,
                                    "histogram_sum" => h.sum,
                                    "histogram_avg" => h.sum / h.count,
                                    "histogram_stddev" => native_stdvar(h).sqrt(),
                                    _ => native_stdvar(h),
                                };
                                FPoint { t: p.t, v }
                            })
                            .collect();
                        if floats.is_empty() {
                            return None;
                        }
                        Some(Series {
                            metric: s.metric,
                            floats,
                            histograms: Vec::new(),
                            drop_name: true,
                        })
                    })
                    .collect();
                Ok(Ev::Vector(out))
            }
            "histogram_quantile" | "histogram_fraction" => {
                let fraction = name == "histogram_fraction";
                let (params, vec_arg) = if fraction {
                    (vec![self.scalar_arg(args[0])?, self.scalar_arg(args[1])?], args[2])
                } else {
                    (vec![self.scalar_arg(args[0])?], args[1])
                };
                if !fraction {
                    for &q in &params[0] {
                        if !(0.0..=1.0).contains(&q) {
                            self.annotations.warn(
                                format!(
                                    "quantile value should be between 0 and 1, got {}",
                                    super::functions::fmt_float(q)
                                ),
                                self.position(args[0]),
                            );
                        }
                    }
                }
                let pos = self.position(vec_arg);
                let saved = std::mem::replace(&mut self.stats_decoding, false);
                let m = self.vector_arg(vec_arg);
                self.stats_decoding = saved;
                let m = m?;
                self.histogram_quantile_or_fraction(m, &params, fraction, pos)
            }
            "histogram_quantiles" => {
                let label = match args.get(1).map(|a| crate::parser::unwrap_parens(a)) {
                    Some(Expr::StringLiteral(s)) => s.val.clone(),
                    _ => return Err(QueryError::exec("histogram_quantiles needs a label name")),
                };
                let pos = self.position(args[0]);
                let m = self.vector_arg(args[0])?;
                let mut out: Matrix = Vec::new();
                for q_expr in &args[2..] {
                    let q = self.scalar_arg(q_expr)?;
                    for &v in &q {
                        if !(0.0..=1.0).contains(&v) {
                            self.annotations.warn(
                                format!(
                                    "quantile value should be between 0 and 1, got {}",
                                    super::functions::fmt_float(v)
                                ),
                                self.position(q_expr),
                            );
                        }
                    }
                    let qv = q.first().copied().unwrap_or(f64::NAN);
                    let Ev::Vector(r) = self.histogram_quantile_or_fraction(m.clone(), &[q], false, pos)? else {
                        continue;
                    };
                    for mut s in r {
                        let mut b = s.metric.builder();
                        b.set(label.clone(), quantile_label(qv));
                        s.metric = b.build();
                        out.push(s);
                    }
                }
                Ok(Ev::Vector(out))
            }
            _ => Err(QueryError::exec(format!("function {name:?} is not supported"))),
        }
    }

    fn histogram_quantile_or_fraction(
        &mut self,
        m: Matrix,
        params: &[Vec<f64>],
        fraction: bool,
        pos: Option<(usize, usize)>,
    ) -> Result<Ev, QueryError> {
        let steps = self.num_steps();
        // Classic series grouped by labels without `le`.
        let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
        let mut group_index: HashMap<Labels, usize> = HashMap::new();
        let mut native: Vec<usize> = Vec::new();
        for (i, s) in m.iter().enumerate() {
            if !s.histograms.is_empty() {
                native.push(i);
            }
            if s.floats.is_empty() {
                continue;
            }
            let le = s.metric.get("le").unwrap_or("");
            let upper = match parse_le(le) {
                Some(u) => u,
                None => {
                    self.annotations.warn(
                        format!(
                            "bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {:?}",
                            s.metric.metric_name().unwrap_or("")
                        ),
                        pos,
                    );
                    continue;
                }
            };
            let key = s.metric.without(&["le"]);
            let g = *group_index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push((upper, i));
        }
        let mut out: Matrix = Vec::new();
        let mut out_index: HashMap<Labels, usize> = HashMap::new();
        let mut forced_monotonic: Vec<String> = Vec::new();
        let mut mixed: Vec<String> = Vec::new();
        let mut nan_notes: Vec<String> = Vec::new();
        let mut cursors: Vec<StepCursor> = m.iter().map(|_| StepCursor::new()).collect();
        let mut native_at: Vec<Option<(usize, Arc<FloatHistogram>)>> = Vec::new();
        for step in 0..steps {
            self.check("query execution")?;
            let ts = self.step_ts(step);
            native_at.clear();
            let mut native_keys: HashMap<Labels, usize> = HashMap::new();
            for &i in &native {
                if let Some(StepValue::H(h)) = cursors[i].at(&m[i], ts) {
                    native_keys.insert(m[i].metric.clone(), native_at.len());
                    native_at.push(Some((i, h)));
                }
            }
            for (key, members) in &groups {
                let mut buckets = Vec::new();
                for &(upper, i) in members {
                    if let Some(StepValue::F(v)) = cursors[i].at(&m[i], ts) {
                        buckets.push(ClassicBucket { upper, count: v });
                    }
                }
                if buckets.is_empty() {
                    continue;
                }
                if let Some(&ni) = native_keys.get(key) {
                    native_at[ni] = None;
                    mixed.push(key.metric_name().unwrap_or("").to_string());
                    continue;
                }
                let v = if fraction {
                    classic_fraction(params[0][step], params[1][step], buckets)
                } else {
                    let (v, forced) = classic_quantile(params[0][step], buckets);
                    if forced {
                        forced_monotonic.push(key.metric_name().unwrap_or("").to_string());
                    }
                    v
                };
                push_out(&mut out, &mut out_index, key, ts, v);
            }
            for (i, h) in native_at.iter().flatten() {
                // NaN observations count in `count` but in no bucket.
                let in_buckets: f64 = hops::all_buckets(h).iter().map(|b| b.count).sum();
                let has_nan = h.sum.is_nan() && in_buckets < h.count;
                let name = m[*i].metric.metric_name().unwrap_or("").to_string();
                let v = if fraction {
                    if has_nan {
                        nan_notes.push(format!("input to histogram_fraction has NaN observations, which are excluded from all fractions for metric name {name:?}"));
                    }
                    native_fraction(params[0][step], params[1][step], h)
                } else {
                    let q = params[0][step];
                    if has_nan && q * h.count > in_buckets {
                        nan_notes.push(format!(
                            "input to histogram_quantile has NaN observations, result is NaN for metric name {name:?}"
                        ));
                        f64::NAN
                    } else {
                        if has_nan {
                            nan_notes.push(format!("input to histogram_quantile has NaN observations, result is skewed higher for metric name {name:?}"));
                        }
                        native_quantile(q, h)
                    }
                };
                push_out(&mut out, &mut out_index, &m[*i].metric, ts, v);
            }
        }
        for msg in nan_notes {
            self.annotations.info(msg, pos);
        }
        for name in mixed {
            self.annotations.warn(
                format!("vector contains a mix of classic and native histograms for metric name {name:?}"),
                pos,
            );
        }
        for name in forced_monotonic {
            self.annotations.info(
                format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"),
                pos,
            );
        }
        for s in &mut out {
            s.floats.sort_by_key(|p| p.t);
        }
        Ok(Ev::Vector(out))
    }
}

fn push_out(out: &mut Matrix, index: &mut HashMap<Labels, usize>, key: &Labels, ts: i64, v: f64) {
    let i = *index.entry(key.clone()).or_insert_with(|| {
        out.push(Series {
            metric: key.clone(),
            drop_name: true,
            ..Default::default()
        });
        out.len() - 1
    });
    push_value(&mut out[i], ts, StepValue::F(v));
}

/// Quantile label values keep a decimal point (`0.0`, `1.0`), like Go's `%v` of a float with `.1f` minimum.
fn quantile_label(q: f64) -> String {
    let s = super::functions::fmt_float(q);
    if s.contains('.') || s.contains('e') || s.contains("Inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "" => None,
        t => t.parse().ok(),
    }
}
