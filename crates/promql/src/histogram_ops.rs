//! Arithmetic on float native histograms with Prometheus's semantics: schema reduction,
//! zero-bucket widening, custom-bucket reconciliation, compaction, reset detection.

use std::collections::BTreeMap;

use hypnos_model::histogram::{CUSTOM_BUCKETS_SCHEMA, bucket_indexes};
use hypnos_model::{CounterResetHint, FloatHistogram, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    /// One histogram has exponential buckets, the other custom ones.
    MixedSchemas,
    /// Custom bucket bounds that cannot be reconciled.
    IncompatibleBounds,
}

type Buckets = BTreeMap<i32, f64>;

fn to_map(spans: &[Span], buckets: &[f64]) -> Buckets {
    let mut m = Buckets::new();
    for (i, v) in bucket_indexes(spans, buckets) {
        *m.entry(i).or_insert(0.0) += v;
    }
    m
}

/// Spans and buckets from an index map, keeping zero-valued buckets out.
fn from_map(m: &Buckets) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::new();
    let mut next: Option<i32> = None;
    for (&i, &v) in m {
        if v == 0.0 {
            continue;
        }
        match next {
            Some(n) if n == i => {
                if let Some(last) = spans.last_mut() {
                    last.length += 1;
                }
            }
            Some(n) => spans.push(Span::new(i - n, 1)),
            None => spans.push(Span::new(i, 1)),
        }
        buckets.push(v);
        next = Some(i + 1);
    }
    (spans, buckets)
}

/// Index of the bucket at `target` schema that bucket `idx` at `schema` falls into.
fn reduce_index(idx: i32, schema: i32, target: i32) -> i32 {
    let shift = schema - target;
    // Buckets (2^((i-1)/2^s), 2^(i/2^s)]: merging 2^shift buckets into one.
    ((idx - 1) >> shift) + 1
}

fn reduce_map(m: &Buckets, schema: i32, target: i32) -> Buckets {
    if schema <= target {
        return m.clone();
    }
    let mut out = Buckets::new();
    for (&i, &v) in m {
        *out.entry(reduce_index(i, schema, target)).or_insert(0.0) += v;
    }
    out
}

/// The histogram at a lower resolution.
pub fn reduce_resolution(h: &FloatHistogram, target: i32) -> FloatHistogram {
    if h.schema == CUSTOM_BUCKETS_SCHEMA || h.schema <= target {
        return h.clone();
    }
    let p = reduce_map(&to_map(&h.positive_spans, &h.positive_buckets), h.schema, target);
    let n = reduce_map(&to_map(&h.negative_spans, &h.negative_buckets), h.schema, target);
    let mut out = h.clone();
    out.schema = target;
    (out.positive_spans, out.positive_buckets) = from_map(&p);
    (out.negative_spans, out.negative_buckets) = from_map(&n);
    out
}

/// Removes empty buckets and merges spans.
pub fn compact(mut h: FloatHistogram) -> FloatHistogram {
    let p = to_map(&h.positive_spans, &h.positive_buckets);
    let n = to_map(&h.negative_spans, &h.negative_buckets);
    (h.positive_spans, h.positive_buckets) = from_map(&p);
    (h.negative_spans, h.negative_buckets) = from_map(&n);
    h
}

/// Multiplies every count and the sum by `f`.
pub fn scale(h: &mut FloatHistogram, f: f64) {
    h.count *= f;
    h.sum *= f;
    h.zero_count *= f;
    h.positive_buckets.iter_mut().for_each(|b| *b *= f);
    h.negative_buckets.iter_mut().for_each(|b| *b *= f);
}

/// Upper bound of an exponential bucket.
fn upper_bound(schema: i32, idx: i32) -> f64 {
    hypnos_model::histogram::bucket_upper_bound(schema, idx)
}

/// Moves buckets whose upper bound is within `threshold` into the zero bucket.
fn widen_zero(m: &mut Buckets, schema: i32, threshold: f64) -> f64 {
    let mut moved = 0.0;
    m.retain(|&i, v| {
        if upper_bound(schema, i) <= threshold {
            moved += *v;
            false
        } else {
            true
        }
    });
    moved
}

/// Maps custom buckets to the coarser common bounds.
fn map_custom(m: &Buckets, from: &[f64], to: &[f64]) -> Buckets {
    let mut out = Buckets::new();
    for (&i, &v) in m {
        let ub = usize::try_from(i)
            .ok()
            .and_then(|i| from.get(i))
            .copied()
            .unwrap_or(f64::INFINITY);
        let j = to.iter().position(|&b| b >= ub).unwrap_or(to.len());
        *out.entry(j as i32).or_insert(0.0) += v;
    }
    out
}

/// Combines two histograms bucket by bucket with `sign` (1 to add, -1 to subtract). Returns
/// whether custom bucket bounds had to be reconciled.
fn combine(a: &FloatHistogram, b: &FloatHistogram, sign: f64) -> Result<(FloatHistogram, bool), OpError> {
    let a_custom = a.schema == CUSTOM_BUCKETS_SCHEMA;
    let b_custom = b.schema == CUSTOM_BUCKETS_SCHEMA;
    if a_custom != b_custom {
        return Err(OpError::MixedSchemas);
    }
    let mut out = a.clone();
    out.count = a.count + sign * b.count;
    out.sum = a.sum + sign * b.sum;
    let mut reconciled = false;
    if a_custom {
        let mut pa = to_map(&a.positive_spans, &a.positive_buckets);
        let mut pb = to_map(&b.positive_spans, &b.positive_buckets);
        if a.custom_values != b.custom_values {
            let common: Vec<f64> = a
                .custom_values
                .iter()
                .copied()
                .filter(|v| b.custom_values.contains(v))
                .collect();
            pa = map_custom(&pa, &a.custom_values, &common);
            pb = map_custom(&pb, &b.custom_values, &common);
            out.custom_values = common;
            reconciled = true;
        }
        for (i, v) in pb {
            *pa.entry(i).or_insert(0.0) += sign * v;
        }
        (out.positive_spans, out.positive_buckets) = from_map_keep(&pa);
        out.negative_spans.clear();
        out.negative_buckets.clear();
        return Ok((out, reconciled));
    }
    let schema = a.schema.min(b.schema);
    let mut pa = reduce_map(&to_map(&a.positive_spans, &a.positive_buckets), a.schema, schema);
    let mut na = reduce_map(&to_map(&a.negative_spans, &a.negative_buckets), a.schema, schema);
    let mut pb = reduce_map(&to_map(&b.positive_spans, &b.positive_buckets), b.schema, schema);
    let mut nb = reduce_map(&to_map(&b.negative_spans, &b.negative_buckets), b.schema, schema);
    let mut za = a.zero_count;
    let mut zb = b.zero_count;
    let threshold = a.zero_threshold.max(b.zero_threshold);
    let threshold = widened_threshold(threshold, schema, &[&pa, &na, &pb, &nb]);
    if threshold > a.zero_threshold {
        za += widen_zero(&mut pa, schema, threshold) + widen_zero(&mut na, schema, threshold);
    }
    if threshold > b.zero_threshold {
        zb += widen_zero(&mut pb, schema, threshold) + widen_zero(&mut nb, schema, threshold);
    }
    for (i, v) in pb {
        *pa.entry(i).or_insert(0.0) += sign * v;
    }
    for (i, v) in nb {
        *na.entry(i).or_insert(0.0) += sign * v;
    }
    out.schema = schema;
    out.zero_threshold = threshold;
    out.zero_count = za + sign * zb;
    (out.positive_spans, out.positive_buckets) = from_map_keep(&pa);
    (out.negative_spans, out.negative_buckets) = from_map_keep(&na);
    Ok((out, reconciled))
}

/// A zero threshold that falls inside a bucket is raised to that bucket's upper bound, as
/// Prometheus does so that no bucket is split.
fn widened_threshold(threshold: f64, schema: i32, maps: &[&Buckets]) -> f64 {
    let mut t = threshold;
    for m in maps {
        for &i in m.keys() {
            let ub = upper_bound(schema, i);
            let lb = upper_bound(schema, i - 1);
            if lb < t && ub > t {
                t = ub;
            }
        }
    }
    t
}

/// Like `from_map` but keeps zero-valued buckets inside spans (results of subtraction keep
/// their layout until compacted).
fn from_map_keep(m: &Buckets) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::new();
    let mut next: Option<i32> = None;
    for (&i, &v) in m {
        match next {
            Some(n) if n == i => {
                if let Some(last) = spans.last_mut() {
                    last.length += 1;
                }
            }
            Some(n) => spans.push(Span::new(i - n, 1)),
            None => spans.push(Span::new(i, 1)),
        }
        buckets.push(v);
        next = Some(i + 1);
    }
    (spans, buckets)
}

/// Combined counter reset hint of two histograms added together (Prometheus's
/// `adjustCounterReset`), and whether a reset and a not-reset collided.
pub fn fold_hint(a: CounterResetHint, b: CounterResetHint) -> (CounterResetHint, bool) {
    use CounterResetHint::*;
    match (a, b) {
        _ if a == b => (a, false),
        (_, Gauge) | (Gauge, _) => (Gauge, false),
        (_, Unknown) | (Unknown, _) => (Unknown, false),
        _ => (Unknown, true),
    }
}

pub fn add(a: &FloatHistogram, b: &FloatHistogram) -> Result<(FloatHistogram, bool), OpError> {
    let (mut h, r) = combine(a, b, 1.0)?;
    h.counter_reset_hint = fold_hint(a.counter_reset_hint, b.counter_reset_hint).0;
    Ok((h, r))
}

/// Subtraction; the result is a gauge.
pub fn sub(a: &FloatHistogram, b: &FloatHistogram) -> Result<(FloatHistogram, bool), OpError> {
    let (mut h, r) = combine(a, b, -1.0)?;
    h.counter_reset_hint = CounterResetHint::Gauge;
    Ok((h, r))
}

/// Division by a scalar; dividing by zero moves every observation into the zero bucket,
/// as Prometheus does.
pub fn div(h: &FloatHistogram, d: f64) -> FloatHistogram {
    let mut out = h.clone();
    if d == 0.0 {
        out.zero_count = h.count / d;
        out.count = h.count / d;
        out.sum = h.sum / d;
        out.positive_spans.clear();
        out.positive_buckets.clear();
        out.negative_spans.clear();
        out.negative_buckets.clear();
        return out;
    }
    scale(&mut out, 1.0 / d);
    compact(out)
}

/// Whether `cur` following `prev` means the counter was reset (Prometheus's `DetectReset`).
pub fn detect_reset(cur: &FloatHistogram, prev: &FloatHistogram) -> bool {
    match cur.counter_reset_hint {
        CounterResetHint::CounterReset => return true,
        CounterResetHint::NotCounterReset => return false,
        _ => {}
    }
    if cur.count < prev.count {
        return true;
    }
    let cur_custom = cur.schema == CUSTOM_BUCKETS_SCHEMA;
    if cur_custom {
        if prev.schema != CUSTOM_BUCKETS_SCHEMA {
            return true;
        }
        if cur.custom_values != prev.custom_values {
            // Different bounds are reconciled to the common ones, then compared.
            let common: Vec<f64> = cur
                .custom_values
                .iter()
                .copied()
                .filter(|v| prev.custom_values.contains(v))
                .collect();
            let c = map_custom(
                &to_map(&cur.positive_spans, &cur.positive_buckets),
                &cur.custom_values,
                &common,
            );
            let p = map_custom(
                &to_map(&prev.positive_spans, &prev.positive_buckets),
                &prev.custom_values,
                &common,
            );
            return p.iter().any(|(i, &v)| v != 0.0 && c.get(i).copied().unwrap_or(0.0) < v);
        }
    } else if prev.schema == CUSTOM_BUCKETS_SCHEMA {
        return true;
    }
    if cur.schema > prev.schema {
        return true;
    }
    if cur.zero_threshold < prev.zero_threshold {
        return true;
    }
    let mut pp = reduce_map(
        &to_map(&prev.positive_spans, &prev.positive_buckets),
        prev.schema,
        cur.schema,
    );
    let mut pn = reduce_map(
        &to_map(&prev.negative_spans, &prev.negative_buckets),
        prev.schema,
        cur.schema,
    );
    let mut prev_zero = prev.zero_count;
    if !cur_custom && cur.zero_threshold > prev.zero_threshold {
        let t = widened_threshold(cur.zero_threshold, cur.schema, &[&pp, &pn]);
        if t != cur.zero_threshold {
            return true;
        }
        prev_zero += widen_zero(&mut pp, cur.schema, t) + widen_zero(&mut pn, cur.schema, t);
    }
    if cur.zero_count < prev_zero {
        return true;
    }
    let cp = to_map(&cur.positive_spans, &cur.positive_buckets);
    let cn = to_map(&cur.negative_spans, &cur.negative_buckets);
    let dropped = |c: &Buckets, p: &Buckets| p.iter().any(|(i, &v)| v != 0.0 && c.get(i).copied().unwrap_or(0.0) < v);
    dropped(&cp, &pp) || dropped(&cn, &pn)
}

/// Exact equality of two histograms' content (as `FloatHistogram.Equals`), ignoring
/// empty buckets' layout.
pub fn equals(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    let same = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
    a.schema == b.schema
        && a.zero_threshold == b.zero_threshold
        && same(a.zero_count, b.zero_count)
        && same(a.count, b.count)
        && same(a.sum, b.sum)
        && a.custom_values == b.custom_values
        && from_map(&to_map(&a.positive_spans, &a.positive_buckets))
            == from_map(&to_map(&b.positive_spans, &b.positive_buckets))
        && from_map(&to_map(&a.negative_spans, &a.negative_buckets))
            == from_map(&to_map(&b.negative_spans, &b.negative_buckets))
}

/// One bucket with its bounds, for quantile and fraction estimation.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
    /// Lower bound included (negative and zero buckets) rather than excluded.
    pub lower_inclusive: bool,
}

/// Every bucket in ascending order of bounds: negative buckets, the zero bucket, positive ones.
pub fn all_buckets(h: &FloatHistogram) -> Vec<Bucket> {
    let mut out = Vec::new();
    if h.schema == CUSTOM_BUCKETS_SCHEMA {
        for (i, v) in bucket_indexes(&h.positive_spans, &h.positive_buckets) {
            let Ok(iu) = usize::try_from(i) else { continue };
            let upper = h.custom_values.get(iu).copied().unwrap_or(f64::INFINITY);
            let lower = if iu == 0 {
                f64::NEG_INFINITY
            } else {
                h.custom_values.get(iu - 1).copied().unwrap_or(f64::INFINITY)
            };
            out.push(Bucket {
                lower,
                upper,
                count: v,
                lower_inclusive: false,
            });
        }
        return out;
    }
    let neg: Vec<(i32, f64)> = bucket_indexes(&h.negative_spans, &h.negative_buckets).collect();
    for &(i, v) in neg.iter().rev() {
        out.push(Bucket {
            lower: -upper_bound(h.schema, i),
            upper: -upper_bound(h.schema, i - 1),
            count: v,
            lower_inclusive: true,
        });
    }
    if h.zero_count > 0.0 {
        out.push(Bucket {
            lower: -h.zero_threshold,
            upper: h.zero_threshold,
            count: h.zero_count,
            lower_inclusive: true,
        });
    }
    for (i, v) in bucket_indexes(&h.positive_spans, &h.positive_buckets) {
        out.push(Bucket {
            lower: upper_bound(h.schema, i - 1),
            upper: upper_bound(h.schema, i),
            count: v,
            lower_inclusive: false,
        });
    }
    out
}

/// Fraction of a bucket's observations below `x`, interpolating linearly (custom and zero
/// buckets) or on a log scale (exponential buckets). Buckets of infinite width are not
/// interpolated: a `+Inf` upper bound puts everything above `x`, a `-Inf` lower bound below.
fn fraction_below(lower: f64, upper: f64, x: f64, exponential: bool) -> f64 {
    if x >= upper {
        return 1.0;
    }
    if x <= lower {
        return 0.0;
    }
    if upper == f64::INFINITY {
        return 0.0;
    }
    if lower == f64::NEG_INFINITY {
        return 1.0;
    }
    if exponential && lower.signum() == upper.signum() && lower != 0.0 {
        let (ll, lu, lx) = (lower.abs().log2(), upper.abs().log2(), x.abs().log2());
        if x > 0.0 {
            (lx - ll) / (lu - ll)
        } else {
            1.0 - (lx - lu) / (ll - lu)
        }
    } else {
        (x - lower) / (upper - lower)
    }
}

/// The value that stands for a bucket's observations when estimating a sum.
fn representative(lower: f64, upper: f64, exponential: bool) -> f64 {
    if lower == f64::NEG_INFINITY {
        return upper;
    }
    if upper == f64::INFINITY {
        return lower;
    }
    if exponential && lower.signum() == upper.signum() && lower != 0.0 {
        let g = (lower * upper).sqrt();
        if upper < 0.0 { -g } else { g }
    } else {
        (lower + upper) / 2.0
    }
}

/// The histogram trim operators: `</ x` keeps the observations below `x`, `>/ x` those
/// above. A partly kept bucket keeps the interpolated share; the sum is re-estimated from
/// the kept buckets unless nothing was trimmed.
pub fn trim(h: &FloatHistogram, x: f64, keep_below: bool) -> FloatHistogram {
    let custom = h.schema == CUSTOM_BUCKETS_SCHEMA;
    let mut out = h.clone();
    let mut trimmed = false;
    let (mut count, mut sum) = (0.0, 0.0);
    let mut apply = |lower: f64, upper: f64, c: f64, exponential: bool| -> f64 {
        // A bucket spanning everything says nothing about where `x` falls: only an infinite
        // cutoff keeps it.
        let below = if lower == f64::INFINITY {
            // Marker for "drop this bucket".
            if keep_below { 0.0 } else { 1.0 }
        } else if lower == f64::NEG_INFINITY && upper == f64::INFINITY && x.is_finite() {
            if keep_below { 0.0 } else { 1.0 }
        } else {
            fraction_below(lower, upper, x, exponential)
        };
        let (f, kl, ku) = if keep_below {
            (below, lower, upper.min(x))
        } else {
            (1.0 - below, lower.max(x), upper)
        };
        if c != 0.0 && f < 1.0 {
            trimmed = true;
        }
        let kept = c * f;
        if kept != 0.0 {
            count += kept;
            sum += kept * representative(kl, ku, exponential);
        }
        kept
    };
    let neg: Vec<(i32, f64)> = bucket_indexes(&h.negative_spans, &h.negative_buckets).collect();
    for (k, (i, c)) in neg.iter().enumerate() {
        out.negative_buckets[k] = apply(-upper_bound(h.schema, *i), -upper_bound(h.schema, i - 1), *c, true);
    }
    if !custom {
        // A zero bucket next to buckets of one sign only is taken to hold values of that sign.
        let (mut zl, mut zu) = (-h.zero_threshold, h.zero_threshold);
        if h.negative_buckets.iter().all(|b| *b == 0.0) && h.positive_buckets.iter().any(|b| *b != 0.0) {
            zl = 0.0;
        } else if h.positive_buckets.iter().all(|b| *b == 0.0) && h.negative_buckets.iter().any(|b| *b != 0.0) {
            zu = 0.0;
        }
        out.zero_count = apply(zl, zu, h.zero_count, false);
    }
    let pos: Vec<(i32, f64)> = bucket_indexes(&h.positive_spans, &h.positive_buckets).collect();
    for (k, (i, c)) in pos.iter().enumerate() {
        let (mut lower, upper) = if custom {
            let iu = usize::try_from(*i).unwrap_or(0);
            (
                if iu == 0 {
                    f64::NEG_INFINITY
                } else {
                    h.custom_values.get(iu - 1).copied().unwrap_or(f64::INFINITY)
                },
                h.custom_values.get(iu).copied().unwrap_or(f64::INFINITY),
            )
        } else {
            (upper_bound(h.schema, i - 1), upper_bound(h.schema, *i))
        };
        // The first custom bucket is taken to start at zero when its upper bound is positive.
        if custom && lower == f64::NEG_INFINITY && upper > 0.0 && upper != f64::INFINITY {
            if x < 0.0 && x.is_finite() {
                // A cutoff below the assumed lower bound of zero drops the bucket either way.
                out.positive_buckets[k] = apply(f64::INFINITY, f64::INFINITY, *c, false) * 0.0;
                continue;
            }
            lower = 0.0;
        }
        out.positive_buckets[k] = apply(lower, upper, *c, !custom);
    }
    if !trimmed {
        return h.clone();
    }
    out.count = count;
    out.sum = sum;
    compact(out)
}

fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Compensated sum, as Prometheus sums floats.
fn kahan_sum(vals: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for &v in vals {
        (s, c) = kahan_inc(v, s, c);
    }
    if s.is_infinite() { s } else { s + c }
}

/// Mean as Prometheus computes it: a compensated direct mean, switching to an incremental
/// mean once the running sum would overflow.
fn kahan_avg(vals: &[f64]) -> f64 {
    let Some(&first) = vals.first() else { return f64::NAN };
    let (mut sum, mut c, mut mean, mut count) = (first, 0.0f64, 0.0f64, 1.0f64);
    let mut incremental = false;
    for &v in &vals[1..] {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

/// Sum (or mean) of many histograms, field by field with compensated arithmetic, after
/// bringing them to a common layout (lowest schema, widest zero bucket, common custom
/// bounds). Returns whether custom bounds had to be reconciled. The counter reset hint is
/// left to the caller.
pub fn sum_all(hs: &[&FloatHistogram], avg: bool) -> Result<(FloatHistogram, bool), OpError> {
    let Some(first) = hs.first() else {
        return Ok((FloatHistogram::default(), false));
    };
    let custom = first.schema == CUSTOM_BUCKETS_SCHEMA;
    if hs.iter().any(|h| (h.schema == CUSTOM_BUCKETS_SCHEMA) != custom) {
        return Err(OpError::MixedSchemas);
    }
    let mut out = (*first).clone();
    let mut reconciled = false;
    let (pos, neg, zero): (Vec<Buckets>, Vec<Buckets>, Vec<f64>);
    if custom {
        let mut common = first.custom_values.clone();
        for h in &hs[1..] {
            if h.custom_values != common {
                reconciled = true;
                common.retain(|v| h.custom_values.contains(v));
            }
        }
        pos = hs
            .iter()
            .map(|h| {
                let m = to_map(&h.positive_spans, &h.positive_buckets);
                if h.custom_values == common {
                    m
                } else {
                    map_custom(&m, &h.custom_values, &common)
                }
            })
            .collect();
        neg = Vec::new();
        zero = vec![0.0; hs.len()];
        out.custom_values = common;
    } else {
        let schema = hs.iter().map(|h| h.schema).min().unwrap_or(first.schema);
        let mut p: Vec<Buckets> = hs
            .iter()
            .map(|h| reduce_map(&to_map(&h.positive_spans, &h.positive_buckets), h.schema, schema))
            .collect();
        let mut n: Vec<Buckets> = hs
            .iter()
            .map(|h| reduce_map(&to_map(&h.negative_spans, &h.negative_buckets), h.schema, schema))
            .collect();
        let max_zt = hs.iter().map(|h| h.zero_threshold).fold(0.0, f64::max);
        let all: Vec<&Buckets> = p.iter().chain(n.iter()).collect();
        let threshold = widened_threshold(max_zt, schema, &all);
        let mut z = Vec::with_capacity(hs.len());
        for (i, h) in hs.iter().enumerate() {
            let mut zc = h.zero_count;
            if threshold > h.zero_threshold {
                zc += widen_zero(&mut p[i], schema, threshold) + widen_zero(&mut n[i], schema, threshold);
            }
            z.push(zc);
        }
        (pos, neg, zero) = (p, n, z);
        out.schema = schema;
        out.zero_threshold = threshold;
    }
    let agg = |vals: &[f64]| if avg { kahan_avg(vals) } else { kahan_sum(vals) };
    let field = |maps: &[Buckets]| -> Buckets {
        let mut keys: Vec<i32> = maps.iter().flat_map(|m| m.keys().copied()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                let vals: Vec<f64> = maps.iter().map(|m| m.get(&k).copied().unwrap_or(0.0)).collect();
                (k, agg(&vals))
            })
            .collect()
    };
    let counts: Vec<f64> = hs.iter().map(|h| h.count).collect();
    let sums: Vec<f64> = hs.iter().map(|h| h.sum).collect();
    out.count = agg(&counts);
    out.sum = agg(&sums);
    out.zero_count = if custom { 0.0 } else { agg(&zero) };
    (out.positive_spans, out.positive_buckets) = from_map(&field(&pos));
    (out.negative_spans, out.negative_buckets) = from_map(&field(&neg));
    Ok((out, reconciled))
}
