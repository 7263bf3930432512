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

pub fn add(a: &FloatHistogram, b: &FloatHistogram) -> Result<(FloatHistogram, bool), OpError> {
    combine(a, b, 1.0)
}

pub fn sub(a: &FloatHistogram, b: &FloatHistogram) -> Result<(FloatHistogram, bool), OpError> {
    combine(a, b, -1.0)
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
        if prev.schema != CUSTOM_BUCKETS_SCHEMA || cur.custom_values != prev.custom_values {
            return true;
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
