//! The evaluator: walks the AST over series already fetched from storage and computes every
//! step of the query at once, node by node (like Prometheus's `evaluator`).

mod aggregate;
mod binary;
mod functions;
mod group_fold;
mod histograms;
mod windows;

pub(crate) use functions::range_function;
pub(crate) use group_fold::{StreamedAggregate, Unsupported};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hypnos_model::{FloatHistogram, Labels, METRIC_NAME, is_stale_nan};

use crate::annotations::Annotations;
use crate::error::QueryError;
use crate::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector, at_ms, duration_ms, offset_ms, unwrap_parens};
use crate::storage::{SeriesSet, StorageSeries};
use crate::value::{FPoint, HPoint, Matrix, Series};

/// The result of evaluating a node over all steps.
#[derive(Clone, Debug)]
pub(crate) enum Ev {
    /// A scalar: one value per step.
    Scalar(Vec<f64>),
    /// An instant vector over the steps: each series has points at step timestamps.
    Vector(Matrix),
    /// A range vector (only at the top level of an instant query).
    Range(Matrix),
    String(String),
}

/// Limits and cancellation shared by one query.
#[derive(Clone, Debug)]
pub(crate) struct Guard {
    pub max_samples: usize,
    pub deadline: Option<Instant>,
    pub cancel: Option<Arc<AtomicBool>>,
}

pub(crate) struct Evaluator<'a> {
    pub data: &'a HashMap<usize, SeriesSet>,
    pub query: &'a str,
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    pub lookback: i64,
    pub query_start: i64,
    pub query_end: i64,
    pub no_step_subquery_interval: i64,
    pub guard: &'a Guard,
    pub current_samples: usize,
    pub annotations: Annotations,
    /// Trim operators parsed as `atan2` (see `parser::parse_query`).
    pub trims: &'a HashMap<usize, bool>,
    /// String literals that are invalid UTF-8 in PromQL's reading (see `parser::Parsed`).
    pub invalid_utf8: &'a HashMap<String, String>,
    /// Inside `histogram_count/sum/avg`: selectors read histograms like Prometheus's
    /// HistogramStatsIterator, which detects counter resets sample by sample.
    pub stats_decoding: bool,
    /// Calls already evaluated series by series while storage streamed their selector's
    /// series, keyed by the address of the `Call` node; taken when the node is reached.
    pub precomputed: HashMap<usize, Precomputed>,
    checks: u32,
}

/// The result of a call evaluated series by series, with what its evaluation recorded.
#[derive(Debug, Default)]
pub(crate) struct Precomputed {
    pub matrix: Matrix,
    pub annotations: Annotations,
    pub samples: usize,
}

static NO_STRINGS: std::sync::LazyLock<HashMap<String, String>> = std::sync::LazyLock::new(HashMap::new);
static NO_TRIMS: std::sync::LazyLock<HashMap<usize, bool>> = std::sync::LazyLock::new(HashMap::new);

/// Where an instant selector reads, relative to the evaluation time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SelectorTiming {
    pub offset: i64,
    pub at: Option<i64>,
}

/// The stored sample an instant selector reads at a step.
pub(crate) enum SelectorRead<'s> {
    Float(&'s FPoint),
    Histogram(&'s HPoint),
}

/// A series' samples in one window.
pub(crate) struct Window<'s> {
    pub floats: &'s [FPoint],
    pub hists: &'s [HPoint],
    /// `(start, end]` of the window, ms.
    pub range_start: i64,
    pub range_end: i64,
}

impl<'a> Evaluator<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data: &'a HashMap<usize, SeriesSet>,
        query: &'a str,
        start: i64,
        end: i64,
        interval: i64,
        lookback: i64,
        no_step_subquery_interval: i64,
        guard: &'a Guard,
    ) -> Self {
        Evaluator {
            data,
            query,
            start,
            end,
            interval: interval.max(1),
            lookback,
            query_start: start,
            query_end: end,
            no_step_subquery_interval,
            guard,
            current_samples: 0,
            annotations: Annotations::default(),
            trims: &NO_TRIMS,
            invalid_utf8: &NO_STRINGS,
            stats_decoding: false,
            precomputed: HashMap::new(),
            checks: 0,
        }
    }

    pub fn num_steps(&self) -> usize {
        usize::try_from((self.end - self.start) / self.interval + 1).unwrap_or(0)
    }

    pub fn step_ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.interval
    }

    pub fn step_index(&self, t: i64) -> usize {
        usize::try_from((t - self.start) / self.interval).unwrap_or(0)
    }

    /// Rejects a label name that is not valid UTF-8 (as PromQL reads the literal) or empty.
    pub fn check_label_name(&self, name: &str) -> Result<(), QueryError> {
        if let Some(written) = self.invalid_utf8.get(name) {
            return Err(QueryError::exec(format!("invalid label name {written}")));
        }
        if name.is_empty() {
            return Err(QueryError::exec("invalid label name \"\""));
        }
        Ok(())
    }

    /// Checks the deadline and the cancel flag; cheap enough to call per step.
    pub fn check(&mut self, stage: &'static str) -> Result<(), QueryError> {
        self.checks = self.checks.wrapping_add(1);
        if self.checks % 64 != 1 {
            return Ok(());
        }
        if let Some(c) = &self.guard.cancel
            && c.load(Ordering::Relaxed)
        {
            return Err(QueryError::Canceled(stage));
        }
        if let Some(d) = self.guard.deadline
            && Instant::now() >= d
        {
            return Err(QueryError::Timeout(stage));
        }
        Ok(())
    }

    pub fn add_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.current_samples = self.current_samples.saturating_add(n);
        if self.current_samples > self.guard.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    #[allow(dead_code)]
    pub fn release_samples(&mut self, n: usize) {
        self.current_samples = self.current_samples.saturating_sub(n);
    }

    /// Line and column of an expression in the query text, found by searching for its
    /// printed form (the parser records no positions).
    pub fn position(&self, e: &Expr) -> Option<(usize, usize)> {
        let e = unwrap_parens(e);
        let text = e.to_string();
        let idx = self.query.find(&text).or_else(|| match e {
            Expr::VectorSelector(vs) => vs.name.as_deref().and_then(|n| self.query.find(n)),
            Expr::MatrixSelector(ms) => ms.vs.name.as_deref().and_then(|n| self.query.find(n)),
            _ => None,
        })?;
        let before = &self.query[..idx];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
        Some((line, col))
    }

    pub fn eval(&mut self, e: &Expr) -> Result<Ev, QueryError> {
        self.check("query execution")?;
        match e {
            Expr::NumberLiteral(n) => Ok(Ev::Scalar(vec![n.val; self.num_steps()])),
            Expr::StringLiteral(s) => Ok(Ev::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Ev::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Ev::Scalar(v))
                }
                Ev::Vector(mut m) => {
                    for s in &mut m {
                        s.floats.iter_mut().for_each(|p| p.v = -p.v);
                        for p in &mut s.histograms {
                            let mut h = (*p.h).clone();
                            crate::histogram_ops::scale(&mut h, -1.0);
                            h.counter_reset_hint = hypnos_model::CounterResetHint::Gauge;
                            p.h = Arc::new(h);
                        }
                        s.drop_name = true;
                    }
                    Ok(Ev::Vector(m))
                }
                other => Ok(other),
            },
            Expr::VectorSelector(vs) => Ok(Ev::Vector(self.eval_vector_selector(vs, false)?)),
            Expr::MatrixSelector(ms) => Ok(Ev::Range(self.eval_matrix_selector_raw(ms)?)),
            Expr::Subquery(sq) => {
                let (m, _) = self.eval_subquery_raw(sq)?;
                Ok(Ev::Range(m))
            }
            Expr::Binary(b) => self.eval_binary(b),
            Expr::Aggregate(a) => {
                if let Some(done) = self
                    .precomputed
                    .remove(&(a as *const crate::parser::AggregateExpr as usize))
                {
                    self.annotations.merge(done.annotations);
                    self.add_samples(done.samples)?;
                    return Ok(Ev::Vector(done.matrix));
                }
                self.eval_aggregate(a)
            }
            Expr::Call(c) => {
                if let Some(done) = self.precomputed.remove(&(c as *const crate::parser::Call as usize)) {
                    self.annotations.merge(done.annotations);
                    self.add_samples(done.samples)?;
                    return Ok(Ev::Vector(done.matrix));
                }
                self.eval_call(c)
            }
            Expr::Extension(_) => Err(QueryError::exec("extension expressions are not supported")),
        }
    }

    /// The series fetched for a selector.
    fn selected(&self, vs: &VectorSelector) -> &'a [Arc<crate::storage::StorageSeries>] {
        self.data
            .get(&(vs as *const VectorSelector as usize))
            .map_or(&[], |s| s.as_slice())
    }

    /// Instant vector selector over all steps, with lookback and staleness. With
    /// `sample_time`, the value is the sample's timestamp in seconds (for `timestamp()`).
    pub fn eval_vector_selector(&mut self, vs: &VectorSelector, sample_time: bool) -> Result<Matrix, QueryError> {
        let timing = self.selector_timing(vs);
        let mut out = Vec::new();
        for s in self.selected(vs) {
            self.check("query execution")?;
            let stats;
            let s = if self.stats_decoding && !s.histograms.is_empty() {
                stats = stats_hints(s);
                &stats
            } else {
                s
            };
            let mut series = Series::new(s.labels.clone());
            self.selector_reads(timing, s, |_, ts, read| match read {
                SelectorRead::Float(p) => {
                    let v = if sample_time { p.t as f64 / 1000.0 } else { p.v };
                    series.floats.push(FPoint { t: ts, v });
                }
                SelectorRead::Histogram(h) if sample_time => series.floats.push(FPoint {
                    t: ts,
                    v: h.t as f64 / 1000.0,
                }),
                SelectorRead::Histogram(h) => series.histograms.push(HPoint { t: ts, h: h.h.clone() }),
            });
            if !series.is_empty() {
                self.add_samples(series.len())?;
                out.push(series);
            }
        }
        Ok(out)
    }

    /// The offset and `@` time of an instant selector, in ms.
    pub fn selector_timing(&self, vs: &VectorSelector) -> SelectorTiming {
        SelectorTiming {
            offset: offset_ms(&vs.offset),
            at: at_ms(&vs.at, self.query_start, self.query_end),
        }
    }

    /// Calls `read(step, step time, sample)` for each step at which an instant selector reads
    /// a sample of `s`: the newest one within the lookback delta, unless it is a staleness marker.
    pub fn selector_reads<'s>(
        &self,
        timing: SelectorTiming,
        s: &'s StorageSeries,
        mut read: impl FnMut(usize, i64, SelectorRead<'s>),
    ) {
        let SelectorTiming { offset, at } = timing;
        // Start the cursors at the first step's lookback window, not the series start.
        let first_ref = at.unwrap_or(self.start) - offset;
        let mut fi = s.floats.partition_point(|p| p.t <= first_ref);
        let mut hi = s.histograms.partition_point(|p| p.t <= first_ref);
        for i in 0..self.num_steps() {
            let ts = self.step_ts(i);
            let ref_t = at.unwrap_or(ts) - offset;
            // Cursors only move forward while ref_t grows; with `@` ref_t is constant.
            if at.is_some() {
                fi = s.floats.partition_point(|p| p.t <= ref_t);
                hi = s.histograms.partition_point(|p| p.t <= ref_t);
            } else {
                while fi < s.floats.len() && s.floats[fi].t <= ref_t {
                    fi += 1;
                }
                while hi < s.histograms.len() && s.histograms[hi].t <= ref_t {
                    hi += 1;
                }
            }
            let f = fi.checked_sub(1).map(|k| &s.floats[k]);
            let h = hi.checked_sub(1).map(|k| &s.histograms[k]);
            let lo = ref_t - self.lookback;
            match (f, h) {
                (Some(f), h) if f.t > lo && h.is_none_or(|h| h.t < f.t) => {
                    // A staleness marker: the series has no value at this step.
                    if is_stale_nan(f.v) {
                        continue;
                    }
                    read(i, ts, SelectorRead::Float(f));
                }
                (_, Some(h)) if h.t > lo && f.is_none_or(|f| f.t < h.t) => read(i, ts, SelectorRead::Histogram(h)),
                _ => {}
            }
        }
    }

    /// A matrix selector evaluated at the (single) step: the raw samples in its window.
    fn eval_matrix_selector_raw(&mut self, ms: &MatrixSelector) -> Result<Matrix, QueryError> {
        let src = self.matrix_source_selector(ms);
        let ts = self.start;
        let mut out = Vec::new();
        for s in src.series.iter() {
            let (lo, hi) = src.bounds(ts);
            let w = s.window(lo, hi);
            if w.floats.is_empty() && w.hists.is_empty() {
                continue;
            }
            let series = Series {
                metric: s.metric.clone(),
                floats: w.floats.to_vec(),
                histograms: w.hists.to_vec(),
                drop_name: s.drop_name,
            };
            self.add_samples(series.len())?;
            out.push(series);
        }
        Ok(out)
    }

    /// A subquery's inner result, and the source describing its windows.
    fn eval_subquery_raw(&mut self, sq: &SubqueryExpr) -> Result<(Matrix, MatrixSource<'static>), QueryError> {
        let src = self.matrix_source_subquery(sq)?;
        let ts = self.start;
        let (lo, hi) = src.bounds(ts);
        let mut out = Vec::new();
        for s in src.series.iter() {
            let w = s.window(lo, hi);
            if w.floats.is_empty() && w.hists.is_empty() {
                continue;
            }
            out.push(Series {
                metric: s.metric.clone(),
                floats: w.floats.to_vec(),
                histograms: w.hists.to_vec(),
                drop_name: s.drop_name,
            });
        }
        Ok((out, src))
    }

    /// Where the windows of a matrix selector come from.
    pub fn matrix_source_selector(&self, ms: &MatrixSelector) -> MatrixSource<'a> {
        let vs = &ms.vs;
        let range = duration_ms(&ms.range);
        let offset = offset_ms(&vs.offset);
        let (first, last) = match at_ms(&vs.at, self.query_start, self.query_end) {
            Some(t) => (t - offset - range, t - offset),
            None => (self.start - offset - range, self.end - offset),
        };
        let series = self
            .selected(vs)
            .iter()
            .map(|s| {
                // Staleness markers never enter range windows; only the part of the series
                // the windows cover needs checking.
                let a = s.floats.partition_point(|p| p.t <= first);
                let b = s.floats.partition_point(|p| p.t <= last).max(a);
                let floats = if s.floats[a..b].iter().any(|p| is_stale_nan(p.v)) {
                    SrcPoints::Owned(s.floats[a..b].iter().copied().filter(|p| !is_stale_nan(p.v)).collect())
                } else {
                    SrcPoints::Shared(s.clone())
                };
                let hists = if self.stats_decoding && !s.histograms.is_empty() {
                    SrcHists::Owned(stats_hints(s).histograms)
                } else {
                    SrcHists::Shared(s.clone())
                };
                SrcSeries {
                    metric: s.labels.clone(),
                    floats,
                    hists,
                    drop_name: false,
                }
            })
            .collect();
        MatrixSource {
            series,
            range: duration_ms(&ms.range),
            offset: offset_ms(&vs.offset),
            at: at_ms(&vs.at, self.query_start, self.query_end),
            _p: std::marker::PhantomData,
        }
    }

    /// Evaluates a subquery's inner expression over the steps its windows need.
    pub fn matrix_source_subquery(&mut self, sq: &SubqueryExpr) -> Result<MatrixSource<'static>, QueryError> {
        let offset = offset_ms(&sq.offset);
        let range = duration_ms(&sq.range);
        let at = at_ms(&sq.at, self.query_start, self.query_end);
        let step = match &sq.step {
            Some(s) if duration_ms(s) > 0 => duration_ms(s),
            _ => self.no_step_subquery_interval,
        };
        let (outer_start, outer_end) = match at {
            Some(a) => (a, a),
            None => (self.start, self.end),
        };
        let end = outer_end - offset;
        let lo = outer_start - offset - range;
        let mut start = step * lo.div_euclid(step);
        if start <= lo {
            start += step;
        }
        if start <= end && usize::try_from((end - start) / step + 1).unwrap_or(usize::MAX) > self.guard.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        let saved = (self.start, self.end, self.interval);
        let saved_stats = std::mem::replace(&mut self.stats_decoding, false);
        self.start = start;
        self.end = end;
        self.interval = step;
        let res = if start > end {
            Ok(Ev::Vector(Vec::new()))
        } else {
            self.eval(&sq.expr)
        };
        let steps: Vec<i64> = (0..self.num_steps()).map(|i| self.step_ts(i)).collect();
        (self.start, self.end, self.interval) = saved;
        self.stats_decoding = saved_stats;
        let m = match res? {
            Ev::Vector(m) => m,
            Ev::Scalar(v) => vec![Series {
                metric: Labels::empty(),
                floats: steps.iter().zip(v).map(|(&t, v)| FPoint { t, v }).collect(),
                ..Default::default()
            }],
            _ => return Err(QueryError::exec("subquery over a non-instant expression")),
        };
        let series = m
            .into_iter()
            .map(|s| SrcSeries {
                metric: s.metric,
                floats: SrcPoints::Owned(s.floats),
                hists: SrcHists::Owned(subquery_hints(s.histograms)),
                drop_name: s.drop_name,
            })
            .collect();
        Ok(MatrixSource {
            series,
            range,
            offset,
            at,
            _p: std::marker::PhantomData,
        })
    }
}

pub(crate) enum SrcPoints {
    Shared(Arc<crate::storage::StorageSeries>),
    Owned(Vec<FPoint>),
}

pub(crate) enum SrcHists {
    Shared(Arc<crate::storage::StorageSeries>),
    Owned(Vec<HPoint>),
}

pub(crate) struct SrcSeries {
    pub metric: Labels,
    floats: SrcPoints,
    hists: SrcHists,
    pub drop_name: bool,
}

impl SrcSeries {
    pub fn floats(&self) -> &[FPoint] {
        match &self.floats {
            SrcPoints::Shared(s) => &s.floats,
            SrcPoints::Owned(v) => v,
        }
    }

    pub fn hists(&self) -> &[HPoint] {
        match &self.hists {
            SrcHists::Shared(s) => &s.histograms,
            SrcHists::Owned(v) => v,
        }
    }

    /// The samples in `(lo, hi]`.
    pub fn window(&self, lo: i64, hi: i64) -> Window<'_> {
        let f = self.floats();
        let h = self.hists();
        let fa = f.partition_point(|p| p.t <= lo);
        let fb = f.partition_point(|p| p.t <= hi);
        let ha = h.partition_point(|p| p.t <= lo);
        let hb = h.partition_point(|p| p.t <= hi);
        Window {
            floats: &f[fa..fb.max(fa)],
            hists: &h[ha..hb.max(ha)],
            range_start: lo,
            range_end: hi,
        }
    }
}

/// Windows of one series at nondecreasing bounds, found by moving four indices forward
/// instead of four binary searches per step.
#[derive(Default)]
pub(crate) struct WindowCursor {
    fa: usize,
    fb: usize,
    ha: usize,
    hb: usize,
}

impl WindowCursor {
    /// The samples of `s` in `(lo, hi]`; `lo` and `hi` must not decrease between calls.
    pub fn window<'s>(&mut self, s: &'s SrcSeries, lo: i64, hi: i64) -> Window<'s> {
        let f = s.floats();
        let h = s.hists();
        fn advance<T>(i: &mut usize, points: &[T], bound: i64, t: impl Fn(&T) -> i64) {
            while points.get(*i).is_some_and(|p| t(p) <= bound) {
                *i += 1;
            }
        }
        advance(&mut self.fa, f, lo, |p| p.t);
        advance(&mut self.fb, f, hi, |p| p.t);
        advance(&mut self.ha, h, lo, |p| p.t);
        advance(&mut self.hb, h, hi, |p| p.t);
        Window {
            floats: &f[self.fa..self.fb.max(self.fa)],
            hists: &h[self.ha..self.hb.max(self.ha)],
            range_start: lo,
            range_end: hi,
        }
    }
}

/// The series of a range-vector argument and how each step maps to a window.
pub(crate) struct MatrixSource<'a> {
    pub series: Vec<SrcSeries>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    _p: std::marker::PhantomData<&'a ()>,
}

impl MatrixSource<'_> {
    /// `(lo, hi]` of the window for step `ts`.
    pub fn bounds(&self, ts: i64) -> (i64, i64) {
        let hi = self.at.unwrap_or(ts) - self.offset;
        (hi - self.range, hi)
    }
}

/// Counter reset hints of a subquery's histograms: a histogram repeated by lookback is not a
/// new reset, and "not reset" only held relative to the stored predecessor, which the
/// subquery may have skipped.
fn subquery_hints(mut points: Vec<HPoint>) -> Vec<HPoint> {
    use hypnos_model::CounterResetHint as Hint;
    let original: Vec<Arc<FloatHistogram>> = points.iter().map(|p| p.h.clone()).collect();
    for i in 0..points.len() {
        let repeated = i > 0 && Arc::ptr_eq(&original[i - 1], &original[i]);
        let hint = points[i].h.counter_reset_hint;
        let new_hint = match hint {
            Hint::Gauge => continue,
            _ if repeated => Hint::NotCounterReset,
            Hint::NotCounterReset => Hint::Unknown,
            other => other,
        };
        if new_hint != hint {
            let mut h = (*points[i].h).clone();
            h.counter_reset_hint = new_hint;
            points[i].h = Arc::new(h);
        }
    }
    points
}

/// A copy of a stored series whose histograms carry the reset hints Prometheus's
/// HistogramStatsIterator computes: each histogram with an unknown hint is compared to its
/// predecessor.
fn stats_hints(s: &crate::storage::StorageSeries) -> crate::storage::StorageSeries {
    use hypnos_model::CounterResetHint as Hint;
    let mut out = s.clone();
    for i in 1..out.histograms.len() {
        if out.histograms[i].h.counter_reset_hint != Hint::Unknown {
            continue;
        }
        let reset = crate::histogram_ops::detect_reset(&s.histograms[i].h, &s.histograms[i - 1].h);
        let mut h = (*out.histograms[i].h).clone();
        h.counter_reset_hint = if reset {
            Hint::CounterReset
        } else {
            Hint::NotCounterReset
        };
        out.histograms[i].h = Arc::new(h);
    }
    out
}

/// Labels without `__name__` when the sample is marked for name removal.
pub(crate) fn materialize_name(metric: &Labels, drop_name: bool) -> Labels {
    if drop_name {
        metric.without(&[METRIC_NAME])
    } else {
        metric.clone()
    }
}

/// Finds the point at `ts` in sorted points, advancing a cursor.
pub(crate) fn point_at<'p, T>(points: &'p [T], cursor: &mut usize, ts: i64, t_of: impl Fn(&T) -> i64) -> Option<&'p T> {
    while *cursor < points.len() && t_of(&points[*cursor]) < ts {
        *cursor += 1;
    }
    points.get(*cursor).filter(|p| t_of(p) == ts)
}

/// The value of a series at a step: float or histogram.
#[derive(Clone, Debug)]
pub(crate) enum StepValue {
    F(f64),
    H(Arc<FloatHistogram>),
}

/// Per-series cursor over a matrix whose points are at step timestamps.
pub(crate) struct StepCursor {
    f: usize,
    h: usize,
}

impl StepCursor {
    pub fn new() -> Self {
        StepCursor { f: 0, h: 0 }
    }

    pub fn at(&mut self, s: &Series, ts: i64) -> Option<StepValue> {
        if let Some(p) = point_at(&s.floats, &mut self.f, ts, |p| p.t) {
            return Some(StepValue::F(p.v));
        }
        point_at(&s.histograms, &mut self.h, ts, |p| p.t).map(|p| StepValue::H(p.h.clone()))
    }
}

/// Appends a value at `ts` to a series.
pub(crate) fn push_value(s: &mut Series, ts: i64, v: StepValue) {
    match v {
        StepValue::F(v) => s.floats.push(FPoint { t: ts, v }),
        StepValue::H(h) => s.histograms.push(HPoint { t: ts, h }),
    }
}
