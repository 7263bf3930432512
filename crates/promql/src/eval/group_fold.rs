//! Float aggregations (`sum`, `count`, `min`, `max`, `group`, `avg`, `stddev`, `stdvar`) folded series by series
//! into one accumulator cell per (group, step). A cell sees the series in input order, so every
//! cell computes exactly what the step-by-step reduction computes (the same Kahan sums in the
//! same order); memory is groups × steps, not series × steps, which lets the engine fold
//! series as storage streams them (see [`StreamedAggregate`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use hypnos_model::{Label, Labels, METRIC_NAME};

use super::aggregate::{asc_nan_last, desc_nan_last, heap_offer};
use super::windows::kahan_inc;
use super::{Evaluator, Precomputed, SelectorRead, SelectorTiming};
use crate::error::QueryError;
use crate::parser::{AggregateExpr, Expr, LabelModifier, unwrap_parens};
use crate::storage::StorageSeries;
use crate::value::{FPoint, Matrix, Series};

/// The aggregations a [`Cells`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FoldOp {
    Sum,
    Count,
    Min,
    Max,
    Group,
    Avg,
    Stddev,
    Stdvar,
}

impl FoldOp {
    pub fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "sum" => FoldOp::Sum,
            "count" => FoldOp::Count,
            "min" => FoldOp::Min,
            "max" => FoldOp::Max,
            "group" => FoldOp::Group,
            "avg" => FoldOp::Avg,
            "stddev" => FoldOp::Stddev,
            "stdvar" => FoldOp::Stdvar,
            _ => return None,
        })
    }
}

/// Accumulators, `steps` cells per group; groups are added as they appear.
pub(crate) struct Cells {
    op: FoldOp,
    steps: usize,
    /// Values folded into each cell (also "the cell has a value" when nonzero).
    count: Vec<f64>,
    /// Sum, minimum or maximum; avg's Kahan sum, or its mean once the sum overflowed;
    /// stddev's and stdvar's sum of squared differences from the mean (Welford).
    value: Vec<f64>,
    /// stddev and stdvar: the running mean and how many values it holds (NaN and
    /// infinities are not counted: they make the result NaN).
    mean: Vec<f64>,
    n: Vec<f64>,
    /// Kahan compensation of sum and avg.
    comp: Vec<f64>,
    /// avg: the cell switched to the incremental mean (its sum became infinite).
    incremental: Vec<bool>,
}

impl Cells {
    pub fn new(op: FoldOp, steps: usize) -> Self {
        Cells {
            op,
            steps,
            count: Vec::new(),
            value: Vec::new(),
            comp: Vec::new(),
            incremental: Vec::new(),
            mean: Vec::new(),
            n: Vec::new(),
        }
    }

    /// Cells for `groups` groups at once.
    pub fn with_groups(op: FoldOp, steps: usize, groups: usize) -> Self {
        let mut c = Cells::new(op, steps);
        c.resize(groups.saturating_mul(steps));
        c
    }

    pub fn groups(&self) -> usize {
        self.count.len() / self.steps.max(1)
    }

    pub fn len(&self) -> usize {
        self.count.len()
    }

    pub fn add_group(&mut self) -> usize {
        let g = self.groups();
        self.resize(self.count.len() + self.steps);
        g
    }

    fn resize(&mut self, cells: usize) {
        self.count.resize(cells, 0.0);
        if !matches!(self.op, FoldOp::Count | FoldOp::Group) {
            self.value.resize(cells, 0.0);
        }
        if matches!(self.op, FoldOp::Sum | FoldOp::Avg) {
            self.comp.resize(cells, 0.0);
        }
        if self.op == FoldOp::Avg {
            self.incremental.resize(cells, false);
        }
        if matches!(self.op, FoldOp::Stddev | FoldOp::Stdvar) {
            self.mean.resize(cells, 0.0);
            self.n.resize(cells, 0.0);
        }
    }

    /// Folds the value of one series at one step into its group's cell.
    #[inline]
    pub fn fold(&mut self, g: usize, step: usize, v: f64) {
        let i = g * self.steps + step;
        self.count[i] += 1.0;
        let n = self.count[i];
        if n == 1.0 {
            if matches!(self.op, FoldOp::Stddev | FoldOp::Stdvar) {
                self.value[i] = if v.is_nan() || v.is_infinite() { f64::NAN } else { 0.0 };
                self.mean[i] = v;
                self.n[i] = 1.0;
            } else if !self.value.is_empty() {
                self.value[i] = v;
            }
            return;
        }
        match self.op {
            FoldOp::Sum => (self.value[i], self.comp[i]) = kahan_inc(v, self.value[i], self.comp[i]),
            FoldOp::Max if self.value[i] < v || self.value[i].is_nan() => self.value[i] = v,
            FoldOp::Min if self.value[i] > v || self.value[i].is_nan() => self.value[i] = v,
            FoldOp::Avg => {
                // Prometheus: a Kahan sum divided at the end, unless the sum overflows; from
                // then on an incremental mean.
                if !self.incremental[i] {
                    let (sum, c) = kahan_inc(v, self.value[i], self.comp[i]);
                    if !sum.is_infinite() {
                        (self.value[i], self.comp[i]) = (sum, c);
                        return;
                    }
                    self.incremental[i] = true;
                    self.value[i] /= n - 1.0;
                    self.comp[i] /= n - 1.0;
                }
                let q = (n - 1.0) / n;
                (self.value[i], self.comp[i]) = kahan_inc(v / n, q * self.value[i], q * self.comp[i]);
            }
            FoldOp::Stddev | FoldOp::Stdvar if v.is_nan() || v.is_infinite() => self.value[i] = f64::NAN,
            FoldOp::Stddev | FoldOp::Stdvar => {
                self.n[i] += 1.0;
                let delta = v - self.mean[i];
                self.mean[i] += delta / self.n[i];
                self.value[i] += delta * (v - self.mean[i]);
            }
            _ => {}
        }
    }

    /// Folds a series whose points are at step times `start + k * interval`: only points on
    /// the grid count, each step once (as the step cursors of the step-by-step loop read).
    pub fn fold_series(&mut self, g: usize, s: &Series, start: i64, interval: i64) {
        let steps = self.steps;
        grid_points(s, start, interval, steps, |step, v| self.fold(g, step, v));
    }

    fn result(&self, i: usize) -> f64 {
        match self.op {
            FoldOp::Sum => self.value[i] + self.comp[i],
            FoldOp::Count => self.count[i],
            FoldOp::Group => 1.0,
            FoldOp::Min | FoldOp::Max => self.value[i],
            FoldOp::Avg if self.incremental[i] => self.value[i] + self.comp[i],
            FoldOp::Avg => self.value[i] / self.count[i] + self.comp[i] / self.count[i],
            FoldOp::Stdvar => self.value[i] / self.n[i],
            FoldOp::Stddev => (self.value[i] / self.n[i]).sqrt(),
        }
    }

    /// One series per group with a value, in the order the step-by-step loop creates them:
    /// by first step with a value, then by group index. `drop[g]` marks groups whose name is
    /// to be removed (missing entries: not marked).
    pub fn finish(&self, group_labels: &[Labels], drop: &[bool], step_ts: impl Fn(usize) -> i64) -> Matrix {
        let steps = self.steps;
        let first_step = |g: usize| self.count[g * steps..(g + 1) * steps].iter().position(|&n| n > 0.0);
        let mut order: Vec<(usize, usize)> = (0..self.groups())
            .filter_map(|g| first_step(g).map(|st| (st, g)))
            .collect();
        order.sort_unstable();
        order
            .into_iter()
            .map(|(_, g)| {
                let mut series = Series::new(group_labels.get(g).cloned().unwrap_or_default());
                series.drop_name = drop.get(g).copied().unwrap_or(false);
                for step in 0..steps {
                    let i = g * steps + step;
                    if self.count[i] == 0.0 {
                        continue;
                    }
                    series.floats.push(FPoint {
                        t: step_ts(step),
                        v: self.result(i),
                    });
                }
                series
            })
            .collect()
    }
}

/// The points of a series at step times `start + k * interval` (k < `steps`), each step once.
fn grid_points(s: &Series, start: i64, interval: i64, steps: usize, mut f: impl FnMut(usize, f64)) {
    let mut next_step = 0;
    for p in &s.floats {
        let offset = p.t - start;
        let Ok(step) = usize::try_from(offset / interval) else {
            continue;
        };
        if offset % interval != 0 || step >= steps || step < next_step {
            continue;
        }
        next_step = step + 1;
        f(step, p.v);
    }
}

/// `topk` / `bottomk` with a constant k, one k-element heap per (group, step) fed in input
/// order by [`heap_offer`], the step-by-step selection's own heap step; only the labels of
/// series some heap still holds are kept.
pub(crate) struct SelectK {
    top: bool,
    k: usize,
    steps: usize,
    heaps: Vec<Vec<(usize, f64)>>,
    /// Heap entries per series, and the labels and name-removal mark of those held.
    refs: HashMap<usize, usize>,
    held: HashMap<usize, (Labels, bool)>,
}

impl SelectK {
    fn add_group(&mut self) {
        self.heaps.resize_with(self.heaps.len() + self.steps, Vec::new);
    }

    fn offer(&mut self, g: usize, step: usize, si: usize, v: f64) {
        let heap = &mut self.heaps[g * self.steps + step];
        match heap_offer(heap, (si, v), self.k, self.top, |m| m.1) {
            Some((refused, _)) if refused == si => {}
            out => {
                *self.refs.entry(si).or_insert(0) += 1;
                if let Some((old, _)) = out
                    && let Some(n) = self.refs.get_mut(&old)
                {
                    *n -= 1;
                    if *n == 0 {
                        self.refs.remove(&old);
                        self.held.remove(&old);
                    }
                }
            }
        }
    }

    /// The selected series in the order the step-by-step selection creates them.
    fn finish(&self, step_ts: impl Fn(usize) -> i64) -> Matrix {
        let groups = self.heaps.len() / self.steps.max(1);
        let mut out: HashMap<usize, Series> = HashMap::new();
        let mut order = Vec::new();
        let mut chosen = Vec::with_capacity(self.k.min(1024));
        for step in 0..self.steps {
            let ts = step_ts(step);
            for g in 0..groups {
                chosen.clear();
                chosen.extend_from_slice(&self.heaps[g * self.steps + step]);
                if self.top {
                    chosen.sort_by(|a, b| desc_nan_last(a.1, b.1));
                } else {
                    chosen.sort_by(|a, b| asc_nan_last(a.1, b.1));
                }
                for &(si, v) in &chosen {
                    let series = out.entry(si).or_insert_with(|| {
                        order.push(si);
                        let (metric, drop_name) = self.held.get(&si).cloned().unwrap_or_default();
                        Series {
                            metric,
                            drop_name,
                            ..Default::default()
                        }
                    });
                    series.floats.push(FPoint { t: ts, v });
                }
            }
        }
        order.into_iter().filter_map(|si| out.remove(&si)).collect()
    }
}

/// Groups of an aggregation found by hashing the grouping labels of each series in place:
/// a known group costs no allocation.
pub(crate) struct GroupIndex {
    grouping: Vec<String>,
    without: bool,
    hasher: std::collections::hash_map::RandomState,
    /// First group with a hash; further ones are chained through `next`.
    first: HashMap<u64, usize>,
    next: Vec<usize>,
    pub labels: Vec<Labels>,
    /// A member was marked for name removal (delayed name removal).
    pub drop: Vec<bool>,
}

impl GroupIndex {
    pub fn new(modifier: Option<&LabelModifier>) -> Self {
        let (without, grouping) = match modifier {
            None => (false, Vec::new()),
            Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
        };
        GroupIndex {
            grouping,
            without,
            hasher: Default::default(),
            first: HashMap::new(),
            next: Vec::new(),
            labels: Vec::new(),
            drop: Vec::new(),
        }
    }

    /// Whether a label is part of the group key (as `group_key` in aggregate.rs decides).
    fn keeps(&self, name: &str) -> bool {
        let listed = self.grouping.iter().any(|g| g == name);
        if self.without {
            !listed && name != METRIC_NAME
        } else {
            listed
        }
    }

    fn key<'l>(&'l self, metric: &'l Labels) -> impl Iterator<Item = &'l Label> + 'l {
        metric.iter().filter(|l| self.keeps(&l.name))
    }

    /// The group of a series, and whether it was created now.
    pub fn group(&mut self, metric: &Labels, drop_name: bool) -> (usize, bool) {
        let mut h = self.hasher.build_hasher();
        for l in self.key(metric) {
            l.hash(&mut h);
        }
        let hash = h.finish();
        let mut cur = self.first.get(&hash).copied();
        while let Some(g) = cur {
            if self.labels[g].iter().eq(self.key(metric)) {
                self.drop[g] |= drop_name;
                return (g, false);
            }
            cur = self.next.get(g).copied().filter(|&n| n != usize::MAX);
        }
        let g = self.labels.len();
        let key = Labels::from_sorted_unchecked(self.key(metric).cloned().collect());
        self.labels.push(key);
        self.drop.push(drop_name);
        self.next.push(self.first.insert(hash, g).unwrap_or(usize::MAX));
        (g, true)
    }
}

/// Above this many cells a fold whose cells outnumber the samples read so far gives up (the
/// series are sparse over many groups; holding their samples is cheaper).
const MAX_DENSE_CELLS: usize = 1 << 22;

/// Heaps a topk/bottomk may hold however few series share a group.
const MIN_SPARSE_HEAPS: usize = 1 << 16;

/// An aggregation folded over its argument's series one at a time, as storage streams them.
pub(crate) struct StreamedAggregate {
    index: GroupIndex,
    reducer: Reducer,
    /// Series folded so far (their index in input order).
    series: usize,
    /// The (step, value) pairs of the series being folded, reused.
    buf: Vec<(usize, f64)>,
    samples: usize,
    max_samples: usize,
    pub annotations: crate::annotations::Annotations,
}

enum Reducer {
    Cells(Cells),
    Select(SelectK),
}

/// k of `topk(k, …)` / `bottomk(k, …)` when it is a number the selection accepts.
fn literal_k(a: &AggregateExpr) -> Option<usize> {
    let Expr::NumberLiteral(n) = unwrap_parens(a.param.as_deref()?) else {
        return None;
    };
    let p = n.val;
    if !(-9.223372036854776e18..9.223372036854776e18).contains(&p) {
        return None;
    }
    usize::try_from(p as i64).ok().filter(|&k| k >= 1)
}

/// Why a [`StreamedAggregate`] cannot go on: the caller evaluates the aggregation the usual way.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl StreamedAggregate {
    /// None for an aggregation that is not folded this way.
    pub fn new(a: &AggregateExpr, steps: usize, max_samples: usize) -> Option<Self> {
        let op = a.op.to_string();
        let reducer = match op.as_str() {
            "topk" | "bottomk" => Reducer::Select(SelectK {
                top: op == "topk",
                k: literal_k(a)?,
                steps,
                heaps: Vec::new(),
                refs: HashMap::new(),
                held: HashMap::new(),
            }),
            _ if a.param.is_some() => return None,
            _ => Reducer::Cells(Cells::new(FoldOp::parse(&op)?, steps)),
        };
        Some(StreamedAggregate {
            index: GroupIndex::new(a.modifier.as_ref()),
            reducer,
            series: 0,
            buf: Vec::new(),
            samples: 0,
            max_samples,
            annotations: Default::default(),
        })
    }

    /// Counts samples the evaluation of the argument held, as the whole-set evaluation would.
    pub fn add_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.samples = self.samples.saturating_add(n);
        if self.samples > self.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    fn check_size(&self) -> Result<(), Unsupported> {
        let cells = match &self.reducer {
            Reducer::Cells(c) => c.len(),
            Reducer::Select(s) => {
                // A heap per (group, step) costs more than the series' own points unless a
                // group gathers a few series: with about one series per group, selecting
                // from the whole set is cheaper.
                let groups = self.index.labels.len();
                if s.heaps.len() > MIN_SPARSE_HEAPS && groups.saturating_mul(2) > self.series {
                    return Err(Unsupported);
                }
                s.heaps.len().saturating_mul(s.k.min(64))
            }
        };
        if cells > MAX_DENSE_CELLS && cells > self.samples {
            return Err(Unsupported);
        }
        Ok(())
    }

    fn group(&mut self, metric: &Labels, drop_name: bool) -> usize {
        let (g, new) = self.index.group(metric, drop_name);
        if new {
            match &mut self.reducer {
                Reducer::Cells(c) => {
                    c.add_group();
                }
                Reducer::Select(s) => s.add_group(),
            }
        }
        g
    }

    /// Folds the (step, value) pairs of one series, held in `self.buf`.
    fn fold_buf(&mut self, metric: &Labels, drop_name: bool) {
        let g = self.group(metric, drop_name);
        let si = self.series;
        self.series += 1;
        match &mut self.reducer {
            Reducer::Cells(c) => {
                for &(step, v) in &self.buf {
                    c.fold(g, step, v);
                }
            }
            Reducer::Select(s) => {
                for &(step, v) in &self.buf {
                    s.offer(g, step, si, v);
                }
                if s.refs.contains_key(&si) {
                    s.held.insert(si, (metric.clone(), drop_name));
                }
            }
        }
    }

    /// Folds what an instant selector reads from one stored series at each step. Series with
    /// histograms are not folded.
    pub fn add_selector_series(
        &mut self,
        ev: &Evaluator<'_>,
        timing: SelectorTiming,
        s: &StorageSeries,
    ) -> Result<Result<(), Unsupported>, QueryError> {
        if !s.histograms.is_empty() {
            return Ok(Err(Unsupported));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        ev.selector_reads(timing, s, |step, _, read| {
            if let SelectorRead::Float(p) = read {
                buf.push((step, p.v));
            }
        });
        if !buf.is_empty() {
            // A series without a value at any step is not in the selector's result, so it
            // creates no group.
            self.add_samples(buf.len())?;
        }
        self.buf = buf;
        if !self.buf.is_empty() {
            self.fold_buf(&s.labels, false);
        }
        Ok(self.check_size())
    }

    /// Folds the float result of the argument for one input series (points at step times).
    /// Results with histograms are not folded.
    pub fn add_series(&mut self, m: &Matrix, start: i64, interval: i64) -> Result<(), Unsupported> {
        if m.iter().any(|s| !s.histograms.is_empty()) {
            return Err(Unsupported);
        }
        for s in m {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let steps = match &self.reducer {
                Reducer::Cells(c) => c.steps,
                Reducer::Select(s) => s.steps,
            };
            grid_points(s, start, interval, steps, |step, v| buf.push((step, v)));
            self.buf = buf;
            self.fold_buf(&s.metric, s.drop_name);
        }
        self.check_size()
    }

    /// The aggregation's result, with the samples its argument and its output account for.
    pub fn finish(self, ev: &Evaluator<'_>) -> Result<Precomputed, QueryError> {
        let (matrix, samples) = match &self.reducer {
            Reducer::Cells(c) => {
                let m = c.finish(&self.index.labels, &self.index.drop, |i| ev.step_ts(i));
                let out: usize = m.iter().map(Series::len).sum();
                (m, self.samples.saturating_add(out))
            }
            // The selection's output is not counted (as in the step-by-step selection).
            Reducer::Select(s) => (s.finish(|i| ev.step_ts(i)), self.samples),
        };
        Ok(Precomputed {
            matrix,
            annotations: self.annotations,
            samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_found_without_rebuilding_keys() {
        let by = LabelModifier::Include(promql_parser::label::Labels {
            labels: vec!["le".to_string()],
        });
        let mut index = GroupIndex::new(Some(&by));
        let a = Labels::from_pairs([("__name__", "x"), ("le", "1"), ("i", "0")]);
        let b = Labels::from_pairs([("__name__", "x"), ("le", "2"), ("i", "0")]);
        let c = Labels::from_pairs([("__name__", "x"), ("le", "1"), ("i", "1")]);
        assert_eq!(index.group(&a, false), (0, true));
        assert_eq!(index.group(&b, false), (1, true));
        assert_eq!(index.group(&c, true), (0, false));
        assert_eq!(index.labels[0], Labels::from_pairs([("le", "1")]));
        assert_eq!(index.drop, vec![true, false]);

        let without = LabelModifier::Exclude(promql_parser::label::Labels {
            labels: vec!["i".to_string()],
        });
        let mut index = GroupIndex::new(Some(&without));
        assert_eq!(index.group(&a, false), (0, true));
        assert_eq!(index.group(&c, false), (0, false));
        assert_eq!(index.labels[0], Labels::from_pairs([("le", "1")]));

        let mut index = GroupIndex::new(None);
        assert_eq!(index.group(&a, false), (0, true));
        assert_eq!(index.group(&b, false), (0, false));
        assert!(index.labels[0].is_empty());
    }
}
