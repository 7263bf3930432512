//! Float aggregations (`sum`, `count`, `min`, `max`, `group`, `avg`, `stddev`, `stdvar`) folded series by series
//! into one accumulator cell per (group, step). A cell sees the series in input order, so every
//! cell computes exactly what the step-by-step reduction computes (the same Kahan sums in the
//! same order); memory is groups × steps, not series × steps, which lets the engine fold
//! series as storage streams them (see [`StreamedAggregate`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use hypnos_model::{Label, Labels, METRIC_NAME};

use super::windows::kahan_inc;
use super::{Evaluator, Precomputed, SelectorRead, SelectorTiming};
use crate::error::QueryError;
use crate::parser::{AggregateExpr, LabelModifier};
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
        let mut next_step = 0;
        for p in &s.floats {
            let offset = p.t - start;
            let Ok(step) = usize::try_from(offset / interval) else {
                continue;
            };
            if offset % interval != 0 || step >= self.steps || step < next_step {
                continue;
            }
            next_step = step + 1;
            self.fold(g, step, p.v);
        }
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

/// An aggregation folded over its argument's series one at a time, as storage streams them.
pub(crate) struct StreamedAggregate {
    index: GroupIndex,
    cells: Cells,
    /// The (step, value) pairs of the series being folded, reused.
    buf: Vec<(usize, f64)>,
    samples: usize,
    max_samples: usize,
    pub annotations: crate::annotations::Annotations,
}

/// Why a [`StreamedAggregate`] cannot go on: the caller evaluates the aggregation the usual way.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl StreamedAggregate {
    /// None for an aggregation that is not folded this way.
    pub fn new(a: &AggregateExpr, steps: usize, max_samples: usize) -> Option<Self> {
        let op = FoldOp::parse(&a.op.to_string())?;
        if a.param.is_some() {
            return None;
        }
        Some(StreamedAggregate {
            index: GroupIndex::new(a.modifier.as_ref()),
            cells: Cells::new(op, steps),
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
        let cells = self.cells.len();
        if cells > MAX_DENSE_CELLS && cells > self.samples {
            return Err(Unsupported);
        }
        Ok(())
    }

    fn group(&mut self, metric: &Labels, drop_name: bool) -> usize {
        let (g, new) = self.index.group(metric, drop_name);
        if new {
            self.cells.add_group();
        }
        g
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
            let g = self.group(&s.labels, false);
            for &(step, v) in &buf {
                self.cells.fold(g, step, v);
            }
        }
        self.buf = buf;
        Ok(self.check_size())
    }

    /// Folds the float result of the argument for one input series (points at step times).
    /// Results with histograms are not folded.
    pub fn add_series(&mut self, m: &Matrix, start: i64, interval: i64) -> Result<(), Unsupported> {
        if m.iter().any(|s| !s.histograms.is_empty()) {
            return Err(Unsupported);
        }
        for s in m {
            let g = self.group(&s.metric, s.drop_name);
            self.cells.fold_series(g, s, start, interval);
        }
        self.check_size()
    }

    /// The aggregation's result, with the samples its argument and its output account for.
    pub fn finish(self, ev: &Evaluator<'_>) -> Result<Precomputed, QueryError> {
        let matrix = self
            .cells
            .finish(&self.index.labels, &self.index.drop, |i| ev.step_ts(i));
        let out: usize = matrix.iter().map(Series::len).sum();
        Ok(Precomputed {
            matrix,
            annotations: self.annotations,
            samples: self.samples.saturating_add(out),
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
