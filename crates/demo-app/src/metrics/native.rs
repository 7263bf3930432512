//! A native (sparse exponential) histogram that behaves like client_golang's: the same
//! bucket keys for a value, the same zero threshold, and the same way of staying under the
//! bucket limit (halving the resolution) when no reset or zero-bucket widening is configured.

use std::collections::BTreeMap;

/// client_golang's `DefNativeHistogramZeroThreshold` (2^-128).
pub const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// The lowest schema client_golang goes down to when it must shed buckets.
const MIN_SCHEMA: i32 = -4;

#[derive(Debug, Clone, PartialEq)]
pub struct NativeHistogram {
    pub schema: i32,
    pub zero_threshold: f64,
    pub max_buckets: usize,
    pub count: u64,
    pub sum: f64,
    pub zero_count: u64,
    pub positive: BTreeMap<i32, u64>,
    pub negative: BTreeMap<i32, u64>,
}

/// `math.Frexp` for finite positive normal or subnormal values: `v = frac * 2^exp`,
/// `frac` in [0.5, 1).
fn frexp(v: f64) -> (f64, i32) {
    if v == 0.0 || !v.is_finite() {
        return (v, 0);
    }
    let (v, bias) = if v.abs() < f64::MIN_POSITIVE {
        (v * 2f64.powi(64), -64)
    } else {
        (v, 0)
    };
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, exp + bias)
}

/// The bucket key of `|v|` at a non-positive `schema` (the only ones the demo uses).
fn bucket_key(schema: i32, v: f64) -> i32 {
    let (is_inf, v) = if v.is_infinite() {
        (true, f64::MAX)
    } else {
        (false, v.abs())
    };
    let (frac, exp) = frexp(v);
    let mut key = exp;
    if frac == 0.5 {
        key -= 1;
    }
    let shift = -schema;
    let offset = (1 << shift) - 1;
    key = (key + offset) >> shift;
    if is_inf {
        key += 1;
    }
    key
}

impl NativeHistogram {
    /// A histogram at `schema` (must be <= 0) keeping at most `max_buckets` buckets.
    pub fn new(schema: i32, max_buckets: usize) -> Self {
        NativeHistogram {
            schema: schema.min(0),
            zero_threshold: DEFAULT_ZERO_THRESHOLD,
            max_buckets,
            count: 0,
            sum: 0.0,
            zero_count: 0,
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
        }
    }

    pub fn observe(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        if v.is_nan() {
            return;
        }
        let key = bucket_key(self.schema, v);
        let created = if v > self.zero_threshold {
            bump(&mut self.positive, key)
        } else if v < -self.zero_threshold {
            bump(&mut self.negative, key)
        } else {
            self.zero_count += 1;
            false
        };
        if created {
            self.limit_buckets();
        }
    }

    fn limit_buckets(&mut self) {
        while self.max_buckets > 0
            && self.positive.len() + self.negative.len() > self.max_buckets
            && self.schema > MIN_SCHEMA
        {
            self.schema -= 1;
            self.positive = halve(&self.positive);
            self.negative = halve(&self.negative);
        }
    }

    /// Spans and delta-encoded counts as client_golang's `makeBuckets` lays them out: gaps
    /// of one or two empty buckets are filled with zero counts instead of opening a span.
    pub fn spans_and_deltas(buckets: &BTreeMap<i32, u64>) -> (Vec<(i32, u32)>, Vec<i64>) {
        let mut spans: Vec<(i32, u32)> = Vec::new();
        let mut deltas = Vec::new();
        let mut prev: i64 = 0;
        let mut next_index: i32 = 0;
        for (i, (&key, &count)) in buckets.iter().enumerate() {
            let gap = key - next_index;
            if i == 0 || gap > 2 {
                spans.push((gap, 0));
            } else {
                for _ in 0..gap {
                    if let Some(s) = spans.last_mut() {
                        s.1 += 1;
                    }
                    deltas.push(-prev);
                    prev = 0;
                }
            }
            if let Some(s) = spans.last_mut() {
                s.1 += 1;
            }
            let c = count as i64;
            deltas.push(c - prev);
            prev = c;
            next_index = key + 1;
        }
        (spans, deltas)
    }
}

fn bump(m: &mut BTreeMap<i32, u64>, key: i32) -> bool {
    let e = m.entry(key).or_insert(0);
    *e += 1;
    *e == 1
}

/// Merges pairs of buckets: index `i` at schema `s` lands in `ceil(i/2)` at `s-1`.
fn halve(m: &BTreeMap<i32, u64>) -> BTreeMap<i32, u64> {
    let mut out = BTreeMap::new();
    for (&k, &c) in m {
        *out.entry((k + 1).div_euclid(2)).or_insert(0) += c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_bucket_bounds() {
        // Schema 0: bucket i covers (2^(i-1), 2^i].
        assert_eq!(bucket_key(0, 1.0), 0);
        assert_eq!(bucket_key(0, 1.5), 1);
        assert_eq!(bucket_key(0, 2.0), 1);
        assert_eq!(bucket_key(0, 2.1), 2);
        assert_eq!(bucket_key(0, 0.3), -1);
        // Schema -1: bucket i covers (4^(i-1), 4^i].
        assert_eq!(bucket_key(-1, 1.0), 0);
        assert_eq!(bucket_key(-1, 3.9), 1);
        assert_eq!(bucket_key(-1, 4.0), 1);
        assert_eq!(bucket_key(-1, 0.2), -1);
        assert_eq!(bucket_key(-1, 0.05), -2);
    }

    #[test]
    fn spans_fill_small_gaps() {
        let m: BTreeMap<i32, u64> = [(-2, 1), (0, 3), (5, 2)].into_iter().collect();
        let (spans, deltas) = NativeHistogram::spans_and_deltas(&m);
        assert_eq!(spans, vec![(-2, 3), (4, 1)]);
        assert_eq!(deltas, vec![1, -1, 3, -1]);
    }

    #[test]
    fn stays_under_the_bucket_limit() {
        let mut h = NativeHistogram::new(0, 4);
        for v in [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0] {
            h.observe(v);
        }
        assert!(h.positive.len() <= 4);
        assert!(h.schema < 0);
        assert_eq!(h.positive.values().sum::<u64>(), 6);
    }

    #[test]
    fn zero_bucket() {
        let mut h = NativeHistogram::new(0, 100);
        h.observe(0.0);
        assert_eq!(h.zero_count, 1);
        assert!(h.positive.is_empty());
    }
}
