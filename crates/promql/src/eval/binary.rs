//! Binary operators: arithmetic, comparisons, set operations, vector matching.

use std::collections::HashMap;
use std::sync::Arc;

use hypnos_model::{FloatHistogram, Labels, METRIC_NAME};

use super::{Ev, Evaluator, StepCursor, StepValue, push_value};
use crate::error::QueryError;
use crate::histogram_ops as hops;
use crate::parser::{BinaryExpr, Expr, LabelModifier, VectorMatchCardinality};
use crate::value::{FPoint, Matrix, Series};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
    /// `</`: keep histogram observations below the cutoff.
    TrimUpper,
    /// `>/`: keep histogram observations above the cutoff.
    TrimLower,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Whether the result keeps the left-hand side's metric name.
    fn keeps_name(self) -> bool {
        self.is_comparison() || matches!(self, Op::TrimUpper | Op::TrimLower)
    }

    fn name(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Mod => "%",
            Op::Pow => "^",
            Op::Atan2 => "atan2",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::And => "and",
            Op::Or => "or",
            Op::Unless => "unless",
            Op::TrimUpper => "</",
            Op::TrimLower => ">/",
        }
    }
}

/// Float result and whether to keep the element (comparisons filter).
fn float_op(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless | Op::TrimUpper | Op::TrimLower => (l, true),
    }
}

enum ElemResult {
    Value(StepValue, bool),
    /// A histogram result for which custom bucket bounds had to be reconciled.
    Reconciled(StepValue, &'static str),
    Incompatible(&'static str, &'static str),
    Error(hops::OpError),
}

fn elem_op(op: Op, l: &StepValue, r: &StepValue) -> ElemResult {
    match (l, r) {
        (StepValue::H(h), StepValue::F(x)) if matches!(op, Op::TrimUpper | Op::TrimLower) => {
            ElemResult::Value(StepValue::H(Arc::new(hops::trim(h, *x, op == Op::TrimUpper))), true)
        }
        (StepValue::F(_), StepValue::F(_)) if matches!(op, Op::TrimUpper | Op::TrimLower) => {
            ElemResult::Incompatible("float", "float")
        }
        (StepValue::F(a), StepValue::F(b)) => {
            let (v, keep) = float_op(op, *a, *b);
            ElemResult::Value(StepValue::F(v), keep)
        }
        (StepValue::F(a), StepValue::H(h)) => match op {
            Op::Mul => ElemResult::Value(StepValue::H(Arc::new(scaled(h, *a))), true),
            _ => ElemResult::Incompatible("float", "histogram"),
        },
        (StepValue::H(h), StepValue::F(b)) => match op {
            Op::Mul => ElemResult::Value(StepValue::H(Arc::new(scaled(h, *b))), true),
            Op::Div => ElemResult::Value(StepValue::H(Arc::new(hops::div(h, *b))), true),
            _ => ElemResult::Incompatible("histogram", "float"),
        },
        (StepValue::H(a), StepValue::H(b)) => match op {
            Op::Add | Op::Sub => {
                let r = if op == Op::Add {
                    hops::add(a, b)
                } else {
                    hops::sub(a, b)
                };
                match r {
                    Ok((h, true)) => ElemResult::Reconciled(
                        StepValue::H(Arc::new(hops::compact(h))),
                        if op == Op::Add { "addition" } else { "subtraction" },
                    ),
                    Ok((h, false)) => ElemResult::Value(StepValue::H(Arc::new(hops::compact(h))), true),
                    Err(e) => ElemResult::Error(e),
                }
            }
            Op::Eq => ElemResult::Value(StepValue::H(a.clone()), hops::equals(a, b)),
            Op::Ne => ElemResult::Value(StepValue::H(a.clone()), !hops::equals(a, b)),
            _ => ElemResult::Incompatible("histogram", "histogram"),
        },
    }
}

fn scaled(h: &FloatHistogram, f: f64) -> FloatHistogram {
    let mut h = h.clone();
    hops::scale(&mut h, f);
    hops::compact(h)
}

/// Go's `labels.String()`: `{a="1", b="2"}`.
pub(crate) fn labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|l| format!("{}={:?}", l.name, l.value)).collect();
    format!("{{{}}}", parts.join(", "))
}

struct Matching {
    card: Card,
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
    /// `fill(...)`, `fill_left(...)`, `fill_right(...)`: values standing in for a missing
    /// left or right operand.
    fill_left: Option<f64>,
    fill_right: Option<f64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

impl Matching {
    fn signature(&self, l: &Labels) -> Labels {
        let names: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        if self.on {
            l.keep_only(&names)
        } else {
            let mut names = names;
            names.push(METRIC_NAME);
            l.without(&names)
        }
    }
}

impl Evaluator<'_> {
    pub(super) fn eval_binary(&mut self, b: &BinaryExpr) -> Result<Ev, QueryError> {
        let op_s = b.op.to_string();
        let mut op = Op::parse(&op_s).ok_or_else(|| QueryError::exec(format!("unknown binary operator {op_s:?}")))?;
        if let Some(&keep_below) = self.trims.get(&(b as *const BinaryExpr as usize)) {
            op = if keep_below { Op::TrimUpper } else { Op::TrimLower };
        }
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        let pos = self.position(&Expr::Binary(b.clone()));
        match (lhs, rhs) {
            (Ev::Scalar(l), Ev::Scalar(r)) => Ok(Ev::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&a, &c)| {
                        let (v, keep) = float_op(op, a, c);
                        if op.is_comparison() {
                            if keep { 1.0 } else { 0.0 }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Ev::Vector(m), Ev::Scalar(s)) => Ok(Ev::Vector(self.vector_scalar(op, m, &s, false, return_bool, pos))),
            (Ev::Scalar(s), Ev::Vector(m)) => Ok(Ev::Vector(self.vector_scalar(op, m, &s, true, return_bool, pos))),
            (Ev::Vector(l), Ev::Vector(r)) => {
                let matching = self.matching(b, op);
                let out = match op {
                    Op::And | Op::Or | Op::Unless => self.set_op(op, l, r, &matching),
                    _ => self.vector_vector(op, &l, &r, &matching, return_bool, pos)?,
                };
                Ok(Ev::Vector(out))
            }
            _ => Err(QueryError::exec("invalid operand types for binary operator")),
        }
    }

    fn matching(&self, b: &BinaryExpr, op: Op) -> Matching {
        let mut m = Matching {
            card: if matches!(op, Op::And | Op::Or | Op::Unless) {
                Card::ManyToMany
            } else {
                Card::OneToOne
            },
            on: false,
            labels: Vec::new(),
            include: Vec::new(),
            fill_left: None,
            fill_right: None,
        };
        if let Some(bm) = &b.modifier {
            m.fill_left = bm.fill_values.lhs;
            m.fill_right = bm.fill_values.rhs;
            match &bm.matching {
                Some(LabelModifier::Include(l)) => {
                    m.on = true;
                    m.labels = l.labels.clone();
                }
                Some(LabelModifier::Exclude(l)) => m.labels = l.labels.clone(),
                None => {}
            }
            match &bm.card {
                VectorMatchCardinality::ManyToOne(l) => {
                    m.card = Card::ManyToOne;
                    m.include = l.labels.clone();
                }
                VectorMatchCardinality::OneToMany(l) => {
                    m.card = Card::OneToMany;
                    m.include = l.labels.clone();
                }
                VectorMatchCardinality::ManyToMany => m.card = Card::ManyToMany,
                VectorMatchCardinality::OneToOne => {}
            }
            if matches!(op, Op::And | Op::Or | Op::Unless) {
                m.card = Card::ManyToMany;
            }
        }
        m
    }

    fn vector_scalar(
        &mut self,
        op: Op,
        m: Matrix,
        s: &[f64],
        swap: bool,
        return_bool: bool,
        pos: Option<(usize, usize)>,
    ) -> Matrix {
        let (start, interval) = (self.start, self.interval);
        let idx = |t: i64| ((t - start) / interval) as usize;
        let mut out = Vec::with_capacity(m.len());
        let mut incompatible: Option<(&str, &str)> = None;
        for series in m {
            let mut o = Series::new(series.metric);
            o.drop_name = series.drop_name || return_bool || !op.keeps_name();
            for p in &series.floats {
                let sv = s[idx(p.t)];
                let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
                let (mut v, keep) = float_op(op, l, r);
                if op.is_comparison() && swap {
                    v = p.v;
                }
                if return_bool {
                    o.floats.push(FPoint {
                        t: p.t,
                        v: if keep { 1.0 } else { 0.0 },
                    });
                } else if keep {
                    o.floats.push(FPoint { t: p.t, v });
                }
            }
            for p in &series.histograms {
                let sv = StepValue::F(s[idx(p.t)]);
                let hv = StepValue::H(p.h.clone());
                let (l, r) = if swap { (&sv, &hv) } else { (&hv, &sv) };
                match elem_op(op, l, r) {
                    ElemResult::Reconciled(v, _) => push_value(&mut o, p.t, v),
                    ElemResult::Value(v, keep) => {
                        if return_bool {
                            o.floats.push(FPoint {
                                t: p.t,
                                v: if keep { 1.0 } else { 0.0 },
                            });
                        } else if keep {
                            push_value(&mut o, p.t, v);
                        }
                    }
                    ElemResult::Incompatible(a, b) => incompatible = Some((a, b)),
                    ElemResult::Error(_) => {}
                }
            }
            o.floats.sort_by_key(|p| p.t);
            o.histograms.sort_by_key(|p| p.t);
            if !o.is_empty() {
                out.push(o);
            }
        }
        if let Some((a, b)) = incompatible {
            self.annotations.info(
                format!(
                    "incompatible sample types encountered for binary operator {:?}: {a} {} {b}",
                    op.name(),
                    op.name()
                ),
                pos,
            );
        }
        out
    }

    fn set_op(&mut self, op: Op, l: Matrix, r: Matrix, m: &Matching) -> Matrix {
        // Series hold their values at step times, so "present at the step" is "has a point at
        // that time": each side's times are gathered per signature once, and each series of
        // the other side is filtered by walking both sorted lists (no hashing per point).
        match op {
            Op::And | Op::Unless => {
                let rhs_times = times_by_signature(&r, m);
                let want = op == Op::And;
                l.into_iter()
                    .filter_map(|mut s| {
                        retain_by_signature_times(&mut s, &rhs_times, m, want);
                        if s.is_empty() { None } else { Some(s) }
                    })
                    .collect()
            }
            _ => {
                let lhs_times = times_by_signature(&l, m);
                let mut out: Matrix = Vec::with_capacity(l.len());
                let mut index: HashMap<Labels, usize> = HashMap::with_capacity(l.len());
                for s in l {
                    index.insert(s.metric.clone(), out.len());
                    out.push(s);
                }
                for mut keep in r {
                    retain_by_signature_times(&mut keep, &lhs_times, m, false);
                    if keep.is_empty() {
                        continue;
                    }
                    match index.get(&keep.metric) {
                        Some(&i) if out[i].drop_name == keep.drop_name => {
                            let o = &mut out[i];
                            o.floats.extend(keep.floats);
                            o.floats.sort_by_key(|p| p.t);
                            o.histograms.extend(keep.histograms);
                            o.histograms.sort_by_key(|p| p.t);
                        }
                        _ => {
                            index.insert(keep.metric.clone(), out.len());
                            out.push(keep);
                        }
                    }
                }
                out
            }
        }
    }

    /// Vector matching series by series, for float operands whose pairs are fixed for the
    /// whole query: every right-hand signature belongs to one series, one-to-one left-hand
    /// signatures to one series, and the result label sets are all different. Then no step
    /// can raise a matching error and each pair's values are found by walking the two series
    /// once, where the general path hashes every series at every step. `None`: the general
    /// path decides. Outputs come in the order the general path creates them (first step
    /// matched, then left-hand position), so results are identical.
    fn vector_vector_by_series(
        &mut self,
        op: Op,
        lhs: &Matrix,
        rhs: &Matrix,
        m: &Matching,
        return_bool: bool,
        swapped: bool,
    ) -> Result<Option<Matrix>, QueryError> {
        if m.fill_left.is_some()
            || m.fill_right.is_some()
            || matches!(m.card, Card::ManyToMany)
            || matches!(op, Op::TrimUpper | Op::TrimLower | Op::And | Op::Or | Op::Unless)
            || lhs.iter().chain(rhs).any(|s| !s.histograms.is_empty())
        {
            return Ok(None);
        }
        let mut rhs_by_sig: HashMap<Labels, usize> = HashMap::with_capacity(rhs.len());
        for (j, s) in rhs.iter().enumerate() {
            if rhs_by_sig.insert(m.signature(&s.metric), j).is_some() {
                return Ok(None);
            }
        }
        let mut lhs_sigs: std::collections::HashSet<Labels> = std::collections::HashSet::new();
        let mut metrics: std::collections::HashSet<Labels> = std::collections::HashSet::new();
        let mut outs: Vec<(i64, Series)> = Vec::new();
        for s in lhs {
            self.check("query execution")?;
            let sig = m.signature(&s.metric);
            let Some(&j) = rhs_by_sig.get(&sig) else { continue };
            if m.card == Card::OneToOne && !lhs_sigs.insert(sig) {
                return Ok(None);
            }
            let r = &rhs[j];
            let mut floats = Vec::new();
            let mut first = None;
            let (mut a, mut b) = (0, 0);
            while let (Some(lp), Some(rp)) = (s.floats.get(a), r.floats.get(b)) {
                if lp.t != rp.t {
                    if lp.t < rp.t {
                        a += 1;
                    } else {
                        b += 1;
                    }
                    continue;
                }
                first.get_or_insert(lp.t);
                let (x, y) = if swapped { (rp.v, lp.v) } else { (lp.v, rp.v) };
                let (v, keep) = float_op(op, x, y);
                if return_bool {
                    floats.push(FPoint {
                        t: lp.t,
                        v: if keep { 1.0 } else { 0.0 },
                    });
                } else if keep {
                    floats.push(FPoint { t: lp.t, v });
                }
                a += 1;
                b += 1;
            }
            let Some(first) = first else { continue };
            let metric = result_metric(&s.metric, &r.metric, m);
            if !metrics.insert(metric.clone()) {
                return Ok(None);
            }
            outs.push((
                first,
                Series {
                    metric,
                    floats,
                    histograms: Vec::new(),
                    drop_name: return_bool || !op.keeps_name() || s.drop_name,
                },
            ));
        }
        // A stable sort: within a step, left-hand order.
        outs.sort_by_key(|(first, _)| *first);
        let out: Matrix = outs.into_iter().map(|(_, s)| s).collect();
        self.add_samples(out.iter().map(Series::len).sum())?;
        Ok(Some(out))
    }

    fn vector_vector(
        &mut self,
        op: Op,
        lhs: &Matrix,
        rhs: &Matrix,
        m: &Matching,
        return_bool: bool,
        pos: Option<(usize, usize)>,
    ) -> Result<Matrix, QueryError> {
        let (lhs, rhs, swapped) = if m.card == Card::OneToMany {
            (rhs, lhs, true)
        } else {
            (lhs, rhs, false)
        };
        if let Some(out) = self.vector_vector_by_series(op, lhs, rhs, m, return_bool, swapped)? {
            return Ok(out);
        }
        self.vector_vector_by_step(op, lhs, rhs, m, return_bool, swapped, pos)
    }

    /// Vector matching step by step: the general path.
    #[allow(clippy::too_many_arguments)]
    fn vector_vector_by_step(
        &mut self,
        op: Op,
        lhs: &Matrix,
        rhs: &Matrix,
        m: &Matching,
        return_bool: bool,
        swapped: bool,
        pos: Option<(usize, usize)>,
    ) -> Result<Matrix, QueryError> {
        // Intern signatures.
        let mut sig_ids: HashMap<Labels, usize> = HashMap::new();
        let mut intern = |l: Labels| {
            let n = sig_ids.len();
            *sig_ids.entry(l).or_insert(n)
        };
        let lsig: Vec<usize> = lhs.iter().map(|s| intern(m.signature(&s.metric))).collect();
        let rsig: Vec<usize> = rhs.iter().map(|s| intern(m.signature(&s.metric))).collect();
        let steps = self.num_steps();
        let mut lc: Vec<StepCursor> = lhs.iter().map(|_| StepCursor::new()).collect();
        let mut rc: Vec<StepCursor> = rhs.iter().map(|_| StepCursor::new()).collect();
        let mut out: Matrix = Vec::new();
        let mut out_index: HashMap<(usize, usize), usize> = HashMap::new();
        let mut by_labels: HashMap<Labels, usize> = HashMap::new();
        let mut last_t: Vec<i64> = Vec::new();
        let mut incompatible: Option<(&str, &str)> = None;
        let mut hist_error: Option<hops::OpError> = None;
        let mut reconciled: Option<&'static str> = None;
        let mut right: HashMap<usize, (usize, StepValue)> = HashMap::new();
        // Per signature, the outputs matched at the current step; reset lazily by stamp so
        // that steps allocate nothing.
        let mut matched: Vec<Vec<usize>> = vec![Vec::new(); sig_ids.len()];
        let mut matched_stamp: Vec<usize> = vec![0; sig_ids.len()];
        for step in 0..steps {
            self.check("query execution")?;
            let ts = self.step_ts(step);
            right.clear();
            let mut rhs_count = 0;
            for (j, s) in rhs.iter().enumerate() {
                let Some(v) = rc[j].at(s, ts) else { continue };
                rhs_count += 1;
                if let Some((dup, _)) = right.get(&rsig[j]) {
                    let one_side = if m.card == Card::OneToMany { "left" } else { "right" };
                    let matched_labels = m.signature(&s.metric);
                    let (mut a, mut b) = (&rhs[j].metric, &rhs[*dup].metric);
                    if b < a {
                        std::mem::swap(&mut a, &mut b);
                    }
                    return Err(QueryError::exec(format!(
                        "found duplicate series for the match group {} on the {one_side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        labels_string(&matched_labels),
                        labels_string(a),
                        labels_string(b)
                    )));
                }
                right.insert(rsig[j], (j, v));
            }
            // With the operands swapped for group_right, "our" lhs is the original right side.
            let (fill_for_missing_rhs, fill_for_missing_lhs) = if swapped {
                (m.fill_left, m.fill_right)
            } else {
                (m.fill_right, m.fill_left)
            };
            if rhs_count == 0 && fill_for_missing_rhs.is_none() {
                continue;
            }
            let mut matched_right: std::collections::HashSet<usize> = std::collections::HashSet::new();
            let mut fills: Vec<(Labels, bool, StepValue)> = Vec::new();
            for (i, s) in lhs.iter().enumerate() {
                let Some(lv) = lc[i].at(s, ts) else { continue };
                let Some((j, rv)) = right.get(&lsig[i]) else {
                    if let Some(f) = fill_for_missing_rhs {
                        let fv = StepValue::F(f);
                        let (a, b) = if swapped { (&fv, &lv) } else { (&lv, &fv) };
                        if let ElemResult::Value(v, keep) = elem_op(op, a, b) {
                            let v = if return_bool {
                                Some(StepValue::F(if keep { 1.0 } else { 0.0 }))
                            } else {
                                keep.then_some(v)
                            };
                            if let Some(v) = v {
                                let drop_name = return_bool || !op.keeps_name() || s.drop_name;
                                fills.push((result_metric(&s.metric, &Labels::empty(), m), drop_name, v));
                            }
                        }
                    }
                    continue;
                };
                matched_right.insert(lsig[i]);
                let (a, b) = if swapped { (rv, &lv) } else { (&lv, rv) };
                let (value, keep) = match elem_op(op, a, b) {
                    ElemResult::Value(v, k) => (v, k),
                    ElemResult::Reconciled(v, what) => {
                        reconciled = Some(what);
                        (v, true)
                    }
                    ElemResult::Incompatible(x, y) => {
                        incompatible = Some((x, y));
                        continue;
                    }
                    ElemResult::Error(e) => {
                        hist_error = Some(e);
                        continue;
                    }
                };
                let key = (i, *j);
                let oi = match out_index.get(&key) {
                    Some(&oi) => oi,
                    None => {
                        let metric = result_metric(&s.metric, &rhs[*j].metric, m);
                        let drop_name = return_bool || !op.keeps_name() || s.drop_name;
                        let oi = output_index(&mut out, &mut by_labels, &mut last_t, metric, drop_name);
                        out_index.insert(key, oi);
                        oi
                    }
                };
                // Matching errors are found before comparisons filter elements out.
                if matched_stamp[lsig[i]] != step + 1 {
                    matched_stamp[lsig[i]] = step + 1;
                    matched[lsig[i]].clear();
                }
                let e = &mut matched[lsig[i]];
                if m.card == Card::OneToOne {
                    if !e.is_empty() {
                        return Err(QueryError::exec(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                    e.push(oi);
                } else {
                    if e.contains(&oi) {
                        return Err(QueryError::exec(
                            "multiple matches for labels: grouping labels must ensure unique matches",
                        ));
                    }
                    e.push(oi);
                }
                let value = if return_bool {
                    StepValue::F(if keep { 1.0 } else { 0.0 })
                } else if !keep {
                    continue;
                } else {
                    value
                };
                if last_t[oi] == ts {
                    return Err(QueryError::exec("vector cannot contain metrics with the same labelset"));
                }
                last_t[oi] = ts;
                push_value(&mut out[oi], ts, value);
            }
            if let Some(f) = fill_for_missing_lhs {
                for (&sig, (j, rv)) in &right {
                    if matched_right.contains(&sig) {
                        continue;
                    }
                    let fv = StepValue::F(f);
                    let (a, b) = if swapped { (rv, &fv) } else { (&fv, rv) };
                    if let ElemResult::Value(v, keep) = elem_op(op, a, b) {
                        let v = if return_bool {
                            Some(StepValue::F(if keep { 1.0 } else { 0.0 }))
                        } else {
                            keep.then_some(v)
                        };
                        if let Some(v) = v {
                            let drop_name = return_bool || !op.keeps_name() || rhs[*j].drop_name;
                            fills.push((result_metric(&rhs[*j].metric, &Labels::empty(), m), drop_name, v));
                        }
                    }
                }
            }
            for (metric, drop_name, v) in fills {
                let oi = output_index(&mut out, &mut by_labels, &mut last_t, metric, drop_name);
                if last_t[oi] == ts {
                    return Err(QueryError::exec("vector cannot contain metrics with the same labelset"));
                }
                last_t[oi] = ts;
                push_value(&mut out[oi], ts, v);
            }
        }
        if let Some((a, b)) = incompatible {
            self.annotations.info(
                format!(
                    "incompatible sample types encountered for binary operator {:?}: {a} {} {b}",
                    op.name(),
                    op.name()
                ),
                pos,
            );
        }
        if let Some(what) = reconciled {
            self.annotations
                .info(format!("mismatched custom buckets were reconciled during {what}"), pos);
        }
        if let Some(e) = hist_error {
            let msg = match e {
                hops::OpError::MixedSchemas => {
                    "vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"\""
                }
                hops::OpError::IncompatibleBounds => {
                    "vector contains histograms with incompatible custom buckets for metric name \"\""
                }
            };
            self.annotations.warn(msg, pos);
        }
        self.add_samples(out.iter().map(Series::len).sum())?;
        Ok(out)
    }
}

/// The output series for `metric` (a new one when none has it with the same `drop_name`).
fn output_index(
    out: &mut Matrix,
    by_labels: &mut HashMap<Labels, usize>,
    last_t: &mut Vec<i64>,
    metric: Labels,
    drop_name: bool,
) -> usize {
    match by_labels.get(&metric) {
        Some(&oi) if out[oi].drop_name == drop_name => oi,
        _ => {
            by_labels.insert(metric.clone(), out.len());
            out.push(Series {
                metric,
                drop_name,
                ..Default::default()
            });
            last_t.push(i64::MIN);
            out.len() - 1
        }
    }
}

/// Per signature, the sorted times at which one of its series has a value.
fn times_by_signature(side: &Matrix, m: &Matching) -> HashMap<Labels, Vec<i64>> {
    let mut times: HashMap<Labels, Vec<i64>> = HashMap::with_capacity(side.len());
    for s in side {
        let t = times.entry(m.signature(&s.metric)).or_default();
        let sorted_before = t.is_empty();
        t.extend(s.floats.iter().map(|p| p.t).chain(s.histograms.iter().map(|p| p.t)));
        if !sorted_before || !s.histograms.is_empty() {
            t.sort_unstable();
            t.dedup();
        }
    }
    times
}

/// Keeps the points of `s` whose time is (`want`) or is not (`!want`) among the times of its
/// signature on the other side.
fn retain_by_signature_times(s: &mut Series, times: &HashMap<Labels, Vec<i64>>, m: &Matching, want: bool) {
    let times = times.get(&m.signature(&s.metric)).map_or(&[][..], Vec::as_slice);
    retain_by_times(&mut s.floats, |p| p.t, times, want);
    retain_by_times(&mut s.histograms, |p| p.t, times, want);
}

/// Keeps the points whose time is (`want`) or is not (`!want`) in `times`; both sorted.
fn retain_by_times<P>(points: &mut Vec<P>, time: impl Fn(&P) -> i64, times: &[i64], want: bool) {
    let mut k = 0;
    points.retain(|p| {
        let t = time(p);
        while times.get(k).is_some_and(|&x| x < t) {
            k += 1;
        }
        (times.get(k) == Some(&t)) == want
    });
}

fn result_metric(lhs: &Labels, rhs: &Labels, m: &Matching) -> Labels {
    let mut l = match m.card {
        Card::OneToOne => {
            let names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
            if m.on {
                lhs.keep_only(&names)
            } else {
                lhs.without(&names)
            }
        }
        _ => lhs.clone(),
    };
    if matches!(m.card, Card::ManyToOne | Card::OneToMany) && !m.include.is_empty() {
        let mut b = l.builder();
        for name in &m.include {
            match rhs.get(name) {
                Some(v) => b.set(name.clone(), v),
                None => b.del(name),
            };
        }
        l = b.build();
    }
    l
}

#[allow(dead_code)]
fn unused(_: &FloatHistogram) {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STEPS: usize = 8;

    /// A matrix from (label values, per-step presence bits, value seed); series share
    /// signatures, miss steps and collide in result labels at random.
    fn matrix(specs: &[(u8, u8, u16, u8)], name: &str) -> Matrix {
        specs
            .iter()
            .enumerate()
            .map(|(n, &(a, b, present, seed))| {
                let mut s = Series::new(Labels::from_pairs([
                    ("__name__", name.to_string()),
                    ("a", (a % 3).to_string()),
                    ("b", (b % 2).to_string()),
                    ("n", n.to_string()),
                ]));
                for step in 0..STEPS {
                    if present & (1 << step) != 0 {
                        let v = match (seed as usize + step) % 7 {
                            0 => f64::NAN,
                            1 => 0.0,
                            k => (k as f64 - 3.5) * f64::from(seed),
                        };
                        s.floats.push(FPoint {
                            t: 1_000 + step as i64 * 10_000,
                            v,
                        });
                    }
                }
                s
            })
            .collect()
    }

    fn outcome(r: Result<Matrix, QueryError>) -> Result<Vec<(String, bool, Vec<(i64, u64)>)>, String> {
        r.map(|m| {
            m.into_iter()
                .map(|s| {
                    let pts = s.floats.iter().map(|p| (p.t, p.v.to_bits())).collect();
                    (labels_string(&s.metric), s.drop_name, pts)
                })
                .collect()
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn matching_by_series_answers_the_usual_cases() {
        let guard = super::super::Guard {
            max_samples: usize::MAX,
            deadline: None,
            cancel: None,
        };
        let data = HashMap::new();
        let mut ev = Evaluator::new(&data, "", 1_000, 71_000, 10_000, 300_000, 60_000, &guard);
        let l = matrix(&[(0, 0, 0b1111_0111, 2), (1, 0, 0b0011_1100, 3), (2, 1, 0xff, 4)], "x");
        let r = matrix(&[(1, 0, 0b1110_1110, 5), (0, 1, 0xff, 6)], "y");
        let on_a = Matching {
            card: Card::OneToOne,
            on: true,
            labels: vec!["a".into()],
            include: vec![],
            fill_left: None,
            fill_right: None,
        };
        let out = ev
            .vector_vector_by_series(Op::Sub, &l, &r, &on_a, false, false)
            .unwrap();
        let want = ev.vector_vector_by_step(Op::Sub, &l, &r, &on_a, false, false, None);
        assert_eq!(outcome(Ok(out.expect("answered by series"))), outcome(want));
        // group_left(b): many left series per right one.
        let many = matrix(&[(0, 0, 0xff, 2), (0, 1, 0xf0, 3), (1, 0, 0x0f, 4)], "x");
        let group_left = Matching {
            card: Card::ManyToOne,
            include: vec!["b".into()],
            ..on_a
        };
        let out = ev
            .vector_vector_by_series(Op::Mul, &many, &r, &group_left, false, false)
            .unwrap();
        let want = ev.vector_vector_by_step(Op::Mul, &many, &r, &group_left, false, false, None);
        assert_eq!(outcome(Ok(out.expect("answered by series"))), outcome(want));
    }

    proptest! {
        /// Wherever the series-by-series path answers, it answers exactly like the step-by-step
        /// path: same series in the same order, same bits, same drop-name flags.
        #[test]
        fn matching_by_series_equals_matching_by_step(
            left in proptest::collection::vec((0u8..6, 0u8..4, 0u16..256, 1u8..9), 0..8),
            right in proptest::collection::vec((0u8..6, 0u8..4, 0u16..256, 1u8..9), 0..8),
            op in proptest::sample::select(vec![Op::Add, Op::Sub, Op::Div, Op::Pow, Op::Gt, Op::Eq, Op::Le]),
            on in proptest::bool::ANY,
            labels in proptest::sample::select(vec![vec![], vec!["a"], vec!["a", "b"], vec!["n"], vec!["b", "n"]]),
            card in proptest::sample::select(vec![Card::OneToOne, Card::ManyToOne, Card::OneToMany]),
            include in proptest::sample::select(vec![vec![], vec!["b"], vec!["n"]]),
            return_bool in proptest::bool::ANY,
        ) {
            let guard = super::super::Guard { max_samples: usize::MAX, deadline: None, cancel: None };
            let data = HashMap::new();
            let mut ev = Evaluator::new(&data, "", 1_000, 71_000, 10_000, 300_000, 60_000, &guard);
            let m = Matching {
                card,
                on,
                labels: labels.into_iter().map(String::from).collect(),
                include: include.into_iter().map(String::from).collect(),
                fill_left: None,
                fill_right: None,
            };
            let (l, r) = (matrix(&left, "x"), matrix(&right, "y"));
            let (l, r, swapped) = if card == Card::OneToMany { (&r, &l, true) } else { (&l, &r, false) };
            let return_bool = return_bool && op.is_comparison();
            let by_series = ev.vector_vector_by_series(op, l, r, &m, return_bool, swapped);
            let by_step = ev.vector_vector_by_step(op, l, r, &m, return_bool, swapped, None);
            match by_series {
                Ok(Some(out)) => prop_assert_eq!(outcome(Ok(out)), outcome(by_step)),
                Ok(None) => {}
                Err(e) => prop_assert!(false, "by series failed: {}", e),
            }
        }
    }
}
