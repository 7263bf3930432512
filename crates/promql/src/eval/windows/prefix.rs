//! Range functions over long windows without scanning every window.
//!
//! A range query evaluates a window per step, and windows much longer than the step overlap
//! almost entirely: `changes(x[1d])` at a 15 s step over 5,760-sample windows would compare
//! the same pairs of samples thousands of times. Here a series is looked at once per call
//! and each step is answered from what that pass recorded:
//!
//! - `changes` / `resets`: a prefix count of the counted pairs of consecutive samples (floats
//!   and histograms interleaved in time order), so a window's count is a difference of two
//!   entries. Integer counts: exact.
//! - `rate` / `increase`: the positions of counter resets. The correction of a float window
//!   adds the value before each of its resets in time order, as Prometheus's scan does, so the
//!   sum is bit-identical; a window without resets costs O(1), one with k resets
//!   O(log n + k). A histogram window gets its resets without comparing its histograms again;
//!   the rest of the histogram path (hint checks, lowest schema, the sums) is the scan's.
//!
//! Only the samples some window of the call can see are looked at (`first_lo`..`last_hi`).

use super::{Notes, counted_pair, extrapolated_rate_with, in_time_order};
use crate::eval::{SrcSeries, StepValue, Window};
use crate::histogram_ops as hops;
use crate::value::{FPoint, HPoint};

/// What a call's windows are computed from, for the functions that have a faster way.
pub(crate) struct SeriesPrefix {
    kind: Kind,
    /// First float and histogram index any window of the call can contain.
    f0: usize,
    h0: usize,
}

enum Kind {
    /// `counts[k]`: counted pairs among the first `k + 1` samples of the span, in time order.
    Counts(Vec<u32>),
    /// Float indices `j` with `floats[j] < floats[j - 1]` and histogram indices `j` where
    /// `hists[j]` is a counter reset of `hists[j - 1]`, ascending.
    Resets {
        floats: Vec<usize>,
        hists: Vec<usize>,
        is_rate: bool,
    },
}

/// The index range of a window's samples in the whole series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WindowIndex {
    pub fa: usize,
    pub fb: usize,
    pub ha: usize,
    pub hb: usize,
}

/// Finds window index ranges at nondecreasing bounds by moving four indices forward.
#[derive(Default)]
pub(crate) struct IndexCursor(WindowIndex);

impl IndexCursor {
    /// The samples of `(lo, hi]`; `lo` and `hi` must not decrease between calls.
    pub fn advance(&mut self, floats: &[FPoint], hists: &[HPoint], lo: i64, hi: i64) -> WindowIndex {
        fn forward<T>(i: &mut usize, points: &[T], bound: i64, t: impl Fn(&T) -> i64) {
            while points.get(*i).is_some_and(|p| t(p) <= bound) {
                *i += 1;
            }
        }
        let c = &mut self.0;
        forward(&mut c.fa, floats, lo, |p| p.t);
        forward(&mut c.fb, floats, hi, |p| p.t);
        forward(&mut c.ha, hists, lo, |p| p.t);
        forward(&mut c.hb, hists, hi, |p| p.t);
        c.fb = c.fb.max(c.fa);
        c.hb = c.hb.max(c.ha);
        *c
    }
}

impl SeriesPrefix {
    /// The precomputation for `func` over the samples in `(first_lo, last_hi]`, or `None`
    /// when `func` has none.
    pub fn build(func: &str, s: &SrcSeries, first_lo: i64, last_hi: i64) -> Option<Self> {
        let (floats, hists) = (s.floats(), s.hists());
        let f0 = floats.partition_point(|p| p.t <= first_lo);
        let f1 = floats.partition_point(|p| p.t <= last_hi).max(f0);
        let h0 = hists.partition_point(|p| p.t <= first_lo);
        let h1 = hists.partition_point(|p| p.t <= last_hi).max(h0);
        let kind = match func {
            "changes" | "resets" => Kind::Counts(pair_counts(&floats[f0..f1], &hists[h0..h1], func == "resets")?),
            "rate" | "increase" => Kind::Resets {
                floats: (f0 + 1..f1).filter(|&j| floats[j].v < floats[j - 1].v).collect(),
                hists: (h0 + 1..h1)
                    .filter(|&j| hops::detect_reset(&hists[j].h, &hists[j - 1].h))
                    .collect(),
                is_rate: func == "rate",
            },
            _ => return None,
        };
        Some(SeriesPrefix { kind, f0, h0 })
    }

    /// The function's value for the non-empty window `idx` of `s` spanning `(lo, hi]`.
    pub fn eval(
        &self,
        s: &SrcSeries,
        idx: WindowIndex,
        lo: i64,
        hi: i64,
        range_ms: i64,
        notes: &mut Notes,
    ) -> Option<StepValue> {
        let (floats, hists) = (s.floats(), s.hists());
        let w = Window {
            floats: floats.get(idx.fa..idx.fb)?,
            hists: hists.get(idx.ha..idx.hb)?,
            range_start: lo,
            range_end: hi,
        };
        match &self.kind {
            Kind::Counts(counts) => {
                // Position of the window's first and last sample in the span's time order.
                let first = idx.fa.checked_sub(self.f0)? + idx.ha.checked_sub(self.h0)?;
                let last = (idx.fb.checked_sub(self.f0)? + idx.hb.checked_sub(self.h0)?).checked_sub(1)?;
                let n = counts.get(last)?.checked_sub(*counts.get(first)?)?;
                Some(StepValue::F(f64::from(n)))
            }
            Kind::Resets {
                floats: float_resets,
                hists: hist_resets,
                is_rate,
            } => {
                let window_hist_resets = |_: &[HPoint]| {
                    // As indices into the window, like the scan's.
                    resets_within(hist_resets, idx.ha, idx.hb)
                        .iter()
                        .map(|&j| j - idx.ha)
                        .collect()
                };
                extrapolated_rate_with(&w, range_ms, true, *is_rate, notes, window_hist_resets, |window| {
                    // The resets between the window's first and last float, in order.
                    let mut increase = window[window.len() - 1].v - window[0].v;
                    for &j in resets_within(float_resets, idx.fa, idx.fb) {
                        increase += floats[j - 1].v;
                    }
                    increase
                })
            }
        }
    }
}

/// The resets `j` of a window of indices `a..b` whose predecessor is in it too.
fn resets_within(resets: &[usize], a: usize, b: usize) -> &[usize] {
    let from = resets.partition_point(|&j| j <= a);
    let to = resets.partition_point(|&j| j < b);
    resets.get(from..to).unwrap_or_default()
}

/// Running counts of the consecutive pairs `changes` (or `resets`) counts, over floats and
/// histograms in time order. `None` when the counts would not fit `u32`.
fn pair_counts(floats: &[FPoint], hists: &[HPoint], resets: bool) -> Option<Vec<u32>> {
    let n = floats.len() + hists.len();
    u32::try_from(n).ok()?;
    let mut counts = Vec::with_capacity(n);
    let mut samples = in_time_order(floats, hists);
    let Some(mut prev) = samples.next() else {
        return Some(counts);
    };
    let mut total = 0u32;
    counts.push(total);
    for cur in samples {
        total += u32::from(counted_pair(prev, cur, resets));
        counts.push(total);
        prev = cur;
    }
    Some(counts)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hypnos_model::FloatHistogram;

    use super::*;

    fn f(t: i64, v: f64) -> FPoint {
        FPoint { t, v }
    }

    fn h(t: i64, count: f64) -> HPoint {
        HPoint {
            t,
            h: Arc::new(FloatHistogram {
                count,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn pair_counts_follow_time_order() {
        // In time order: 1, 1, NaN, NaN, h(5), h(5), h(3), 0 (a tie at t=7: histogram first).
        let floats = [f(1, 1.0), f(2, 1.0), f(3, f64::NAN), f(4, f64::NAN), f(7, 0.0)];
        let hists = [h(5, 5.0), h(6, 5.0), h(7, 3.0)];
        // changes: NaN after 1, h after NaN, h(3) after h(5), float after histogram.
        assert_eq!(pair_counts(&floats, &hists, false), Some(vec![0, 0, 1, 1, 2, 2, 3, 4]));
        // resets: only the switches between kinds and the histogram's drop.
        assert_eq!(pair_counts(&floats, &hists, true), Some(vec![0, 0, 0, 0, 1, 1, 2, 3]));
        assert_eq!(pair_counts(&[], &[], false), Some(vec![]));
    }

    #[test]
    fn cursor_finds_left_open_windows() {
        let floats = [f(10, 0.0), f(20, 0.0), f(30, 0.0)];
        let hists = [h(15, 1.0)];
        let mut c = IndexCursor::default();
        let w = c.advance(&floats, &hists, 0, 10);
        assert_eq!((w.fa, w.fb, w.ha, w.hb), (0, 1, 0, 0));
        let w = c.advance(&floats, &hists, 10, 20);
        assert_eq!((w.fa, w.fb, w.ha, w.hb), (1, 2, 0, 1));
        let w = c.advance(&floats, &hists, 30, 40);
        assert_eq!((w.fa, w.fb, w.ha, w.hb), (3, 3, 1, 1));
    }
}
