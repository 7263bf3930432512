//! Functions of one series' samples in a range window (`rate`, `*_over_time`, …).

use std::sync::Arc;

use hypnos_model::{CounterResetHint, FloatHistogram};

use super::{StepValue, Window};
use crate::histogram_ops as hops;
use crate::value::{FPoint, HPoint};

pub(crate) mod prefix;

/// Neumaier-compensated summation step, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
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

/// What a window function wants to tell the caller besides its value.
#[derive(Default)]
pub(crate) struct Notes {
    pub mixed_floats_histograms: bool,
    pub not_counter: bool,
    pub not_gauge: bool,
    pub mixed_schemas: bool,
    pub incompatible_custom_buckets: bool,
    pub histograms_ignored: bool,
    pub custom_buckets_reconciled: bool,
    pub conflicting_resets: bool,
}

/// Prometheus's `extrapolatedRate` for rate/increase/delta.
pub(crate) fn extrapolated_rate(
    w: &Window<'_>,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
    notes: &mut Notes,
) -> Option<StepValue> {
    let hist_resets = |points: &[HPoint]| {
        (1..points.len())
            .filter(|&i| hops::detect_reset(&points[i].h, &points[i - 1].h))
            .collect()
    };
    extrapolated_rate_with(w, range_ms, is_counter, is_rate, notes, hist_resets, |floats| {
        let mut increase = floats[floats.len() - 1].v - floats[0].v;
        if is_counter {
            let mut prev = floats[0].v;
            for p in &floats[1..] {
                if p.v < prev {
                    increase += prev;
                }
                prev = p.v;
            }
        }
        increase
    })
}

/// [`extrapolated_rate`] with the counter resets of a histogram window given by `hist_resets`
/// (ascending indices `i` in the window where `points[i]` is a reset of `points[i - 1]`) and
/// the raw increase of a float window (two or more samples) by `float_increase`: last minus
/// first, plus for a counter the value before each reset, added in time order.
pub(crate) fn extrapolated_rate_with(
    w: &Window<'_>,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
    notes: &mut Notes,
    hist_resets: impl FnOnce(&[HPoint]) -> Vec<usize>,
    float_increase: impl FnOnce(&[FPoint]) -> f64,
) -> Option<StepValue> {
    if !w.floats.is_empty() && !w.hists.is_empty() {
        notes.mixed_floats_histograms = true;
        return None;
    }
    let (first_t, last_t, n_minus_one, mut result_f, mut result_h);
    if w.hists.len() > 1 {
        n_minus_one = w.hists.len() - 1;
        first_t = w.hists[0].t;
        last_t = w.hists[n_minus_one].t;
        result_h = Some(histogram_rate(w, is_counter, notes, hist_resets)?);
        result_f = 0.0;
    } else if w.floats.len() > 1 {
        n_minus_one = w.floats.len() - 1;
        first_t = w.floats[0].t;
        last_t = w.floats[n_minus_one].t;
        result_f = float_increase(w.floats);
        result_h = None;
    } else {
        return None;
    }
    let mut duration_to_start = (first_t - w.range_start) as f64 / 1000.0;
    let mut duration_to_end = (w.range_end - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled_interval / n_minus_one as f64;
    let threshold = avg_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    if duration_to_start >= threshold {
        duration_to_start = avg_between / 2.0;
    }
    if is_counter {
        let mut duration_to_zero = duration_to_start;
        if result_f > 0.0 && !w.floats.is_empty() && w.floats[0].v >= 0.0 {
            duration_to_zero = sampled_interval * (w.floats[0].v / result_f);
        } else if let Some(h) = &result_h
            && h.count > 0.0
            && !w.hists.is_empty()
            && w.hists[0].h.count >= 0.0
        {
            duration_to_zero = sampled_interval * (w.hists[0].h.count / h.count);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    extrapolate_to += duration_to_start;
    if duration_to_end >= threshold {
        duration_to_end = avg_between / 2.0;
    }
    extrapolate_to += duration_to_end;
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    match result_h.as_mut() {
        Some(h) => {
            hops::scale(h, factor);
            Some(StepValue::H(Arc::new(result_h.unwrap_or_default())))
        }
        None => {
            result_f *= factor;
            Some(StepValue::F(result_f))
        }
    }
}

/// The increase of a run of histograms, with counter resets accounted for.
fn histogram_rate(
    w: &Window<'_>,
    is_counter: bool,
    notes: &mut Notes,
    hist_resets: impl FnOnce(&[HPoint]) -> Vec<usize>,
) -> Option<FloatHistogram> {
    let points = w.hists;
    let first = &points[0].h;
    let last = &points[points.len() - 1].h;
    if is_counter && points.iter().any(|p| p.h.counter_reset_hint == CounterResetHint::Gauge) {
        notes.not_counter = true;
    }
    if !is_counter && points.iter().any(|p| p.h.counter_reset_hint != CounterResetHint::Gauge) {
        notes.not_gauge = true;
    }
    let _ = last;
    // The increase is the rise within the first run (up to the first counter reset) plus
    // the full value at the end of every later run. A first run of a single sample adds
    // nothing, so a schema change at a reset (custom <-> exponential) is no mix.
    let n = points.len();
    let resets: Vec<usize> = if is_counter { hist_resets(points) } else { Vec::new() };
    let fail = |e: hops::OpError, notes: &mut Notes| {
        match e {
            hops::OpError::MixedSchemas => notes.mixed_schemas = true,
            hops::OpError::IncompatibleBounds => notes.incompatible_custom_buckets = true,
        }
        None
    };
    let mut parts: Vec<FloatHistogram> = Vec::new();
    let first_end = resets.first().map_or(n - 1, |&r| r - 1);
    if first_end > 0 || resets.is_empty() {
        match hops::sub(&points[first_end].h, first) {
            Ok((d, reconciled)) => {
                notes.custom_buckets_reconciled |= reconciled;
                parts.push(d);
            }
            Err(e) => return fail(e, notes),
        }
    }
    for (k, _) in resets.iter().enumerate() {
        let end = resets.get(k + 1).map_or(n - 1, |&r| r - 1);
        parts.push((*points[end].h).clone());
    }
    let mut parts = parts.into_iter();
    let mut h = parts.next()?;
    for p in parts {
        match hops::add(&h, &p) {
            Ok((s, reconciled)) => {
                notes.custom_buckets_reconciled |= reconciled;
                h = s;
            }
            Err(e) => return fail(e, notes),
        }
    }
    // The result has the lowest resolution seen in the window.
    if h.schema != hypnos_model::histogram::CUSTOM_BUCKETS_SCHEMA {
        let min_schema = points
            .iter()
            .filter(|p| p.h.schema != hypnos_model::histogram::CUSTOM_BUCKETS_SCHEMA)
            .map(|p| p.h.schema)
            .min()
            .unwrap_or(h.schema);
        if h.schema > min_schema {
            h = hops::reduce_resolution(&h, min_schema);
        }
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    Some(hops::compact(h))
}

/// Prometheus's `instantValue` for irate/idelta.
pub(crate) fn instant_value(w: &Window<'_>, is_rate: bool, notes: &mut Notes) -> Option<StepValue> {
    #[derive(Clone)]
    enum S {
        F(f64),
        H(Arc<FloatHistogram>),
    }
    if w.floats.len() + w.hists.len() < 2 {
        return None;
    }
    let mut ss: Vec<(i64, S)> = Vec::with_capacity(2);
    for p in &w.floats[w.floats.len().saturating_sub(2)..] {
        ss.push((p.t, S::F(p.v)));
    }
    for p in &w.hists[w.hists.len().saturating_sub(2)..] {
        let s = (p.t, S::H(p.h.clone()));
        match ss.len() {
            0 => ss.push(s),
            1 => {
                if s.0 < ss[0].0 {
                    ss.insert(0, s)
                } else {
                    ss.push(s)
                }
            }
            _ => {
                if s.0 < ss[0].0 {
                } else if s.0 > ss[1].0 {
                    ss[0] = ss[1].clone();
                    ss[1] = s;
                } else {
                    ss[0] = s;
                }
            }
        }
    }
    let (t0, s0) = ss[0].clone();
    let (t1, s1) = ss[1].clone();
    let interval = t1 - t0;
    if interval == 0 {
        return None;
    }
    let secs = interval as f64 / 1000.0;
    match (s0, s1) {
        (S::F(a), S::F(b)) => {
            let mut r = b;
            if !is_rate || b >= a || a.is_nan() || b.is_nan() {
                r = b - a;
            }
            if is_rate {
                r /= secs;
            }
            Some(StepValue::F(r))
        }
        (S::H(a), S::H(b)) => {
            if is_rate
                && (a.counter_reset_hint == CounterResetHint::Gauge || b.counter_reset_hint == CounterResetHint::Gauge)
            {
                notes.not_counter = true;
            }
            if !is_rate
                && (a.counter_reset_hint != CounterResetHint::Gauge || b.counter_reset_hint != CounterResetHint::Gauge)
            {
                notes.not_gauge = true;
            }
            let mut r = (*b).clone();
            if !is_rate || !hops::detect_reset(&b, &a) {
                match hops::sub(&b, &a) {
                    Ok((d, reconciled)) => {
                        notes.custom_buckets_reconciled |= reconciled;
                        r = d
                    }
                    Err(hops::OpError::MixedSchemas) => {
                        notes.mixed_schemas = true;
                        return None;
                    }
                    Err(hops::OpError::IncompatibleBounds) => {
                        notes.incompatible_custom_buckets = true;
                        return None;
                    }
                }
            }
            r.counter_reset_hint = CounterResetHint::Gauge;
            let mut r = hops::compact(r);
            if is_rate {
                hops::scale(&mut r, 1.0 / secs);
            }
            Some(StepValue::H(Arc::new(r)))
        }
        _ => {
            notes.mixed_floats_histograms = true;
            None
        }
    }
}

/// Least-squares fit of the points against time (seconds since `intercept_t`).
pub(crate) fn linear_regression(points: &[FPoint], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut cx, mut sum_y, mut cy, mut sum_xy, mut cxy, mut sum_x2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].v;
    let mut const_y = true;
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1e3;
        (sum_x, cx) = kahan_inc(x, sum_x, cx);
        (sum_y, cy) = kahan_inc(p.v, sum_y, cy);
        (sum_xy, cxy) = kahan_inc(x * p.v, sum_xy, cxy);
        (sum_x2, cx2) = kahan_inc(x * x, sum_x2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += cx;
    sum_y += cy;
    sum_xy += cxy;
    sum_x2 += cx2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

pub(crate) fn sum_floats(points: &[FPoint]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in points {
        (sum, c) = kahan_inc(p.v, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

pub(crate) fn avg_floats(points: &[FPoint]) -> f64 {
    let (mut sum, mut count, mut mean, mut c) = (points[0].v, 1.0f64, 0.0f64, 0.0f64);
    let mut incremental = false;
    for (i, p) in points[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

pub(crate) fn stdvar_floats(points: &[FPoint]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Prometheus's `quantile`: linear interpolation between closest ranks; NaNs sort first.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let order = |a: &f64, b: &f64| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    };
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    // Only the two ranks are needed: a selection finds the lower one in linear time (a sort
    // of a 1 h window of 15 s samples at every step was most of quantile_over_time's cost),
    // and the upper one is the least of what the selection put after it.
    let (lo, hi) = (lower as usize, upper as usize);
    let (_, &mut lower_value, after) = values.select_nth_unstable_by(lo, order);
    let upper_value = match hi > lo {
        true => after.iter().copied().min_by(order).unwrap_or(lower_value),
        false => lower_value,
    };
    lower_value * (1.0 - weight) + upper_value * weight
}

/// `double_exponential_smoothing` (formerly `holt_winters`).
pub(crate) fn double_exponential_smoothing(points: &[FPoint], sf: f64, tf: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (mut s0, mut s1, mut b) = (0.0, points[0].v, points[1].v - points[0].v);
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// One sample of a series whose floats and histograms are looked at together.
#[derive(Clone, Copy)]
pub(crate) enum AnySample<'a> {
    F(f64),
    H(&'a FloatHistogram),
}

/// The samples of `floats` and `hists` in time order (a histogram first on a tie).
pub(crate) fn in_time_order<'a>(floats: &'a [FPoint], hists: &'a [HPoint]) -> impl Iterator<Item = AnySample<'a>> {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        if j >= hists.len() || (i < floats.len() && floats[i].t < hists[j].t) {
            let p = floats.get(i)?;
            i += 1;
            Some(AnySample::F(p.v))
        } else {
            j += 1;
            Some(AnySample::H(&hists[j - 1].h))
        }
    })
}

/// Whether `changes` (or `resets`) counts the step from `prev` to `cur`: a float to a float
/// or a histogram to a histogram when it changes (resets), any switch between the two.
pub(crate) fn counted_pair(prev: AnySample<'_>, cur: AnySample<'_>, resets: bool) -> bool {
    match (prev, cur) {
        (AnySample::F(a), AnySample::F(b)) => {
            if resets {
                b < a
            } else {
                a != b && !(a.is_nan() && b.is_nan())
            }
        }
        (AnySample::H(a), AnySample::H(b)) => {
            if resets {
                hops::detect_reset(b, a)
            } else {
                !hops::equals(a, b)
            }
        }
        _ => true,
    }
}

pub(crate) fn changes_or_resets(w: &Window<'_>, resets: bool) -> Option<f64> {
    let mut samples = in_time_order(w.floats, w.hists);
    let mut prev = samples.next()?;
    let mut n = 0usize;
    for cur in samples {
        n += usize::from(counted_pair(prev, cur, resets));
        prev = cur;
    }
    Some(n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus's definition: sort (NaNs first), interpolate between the closest ranks.
    fn quantile_by_sorting(q: f64, values: &[f64]) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
        });
        let n = v.len() as f64;
        let rank = q * (n - 1.0);
        let lower = rank.floor().max(0.0);
        let upper = (n - 1.0).min(lower + 1.0);
        let weight = rank - rank.floor();
        v[lower as usize] * (1.0 - weight) + v[upper as usize] * weight
    }

    proptest::proptest! {
        #[test]
        fn quantile_by_selection_equals_quantile_by_sorting(
            picks in proptest::collection::vec(0usize..8, 1..60),
            q in 0.0f64..=1.0,
        ) {
            // Few distinct values (with NaN and infinities) make ties and NaN ranks common.
            let pool = [f64::NAN, f64::NEG_INFINITY, -2.5, 0.0, 1.0, 1.0 + f64::EPSILON, 7.0, f64::INFINITY];
            let values: Vec<f64> = picks.iter().map(|&i| pool[i]).collect();
            let want = quantile_by_sorting(q, &values);
            let got = quantile(q, &mut values.clone());
            proptest::prop_assert!(want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()), "{got} != {want}");
        }
    }
}
