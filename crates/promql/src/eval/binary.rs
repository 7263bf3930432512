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

#[derive(Clone, Copy, PartialEq, Eq)]
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
        let steps = self.num_steps();
        let lsig: Vec<Labels> = l.iter().map(|s| m.signature(&s.metric)).collect();
        let rsig: Vec<Labels> = r.iter().map(|s| m.signature(&s.metric)).collect();
        // Per step, which signatures each side has.
        let mut rhs_present: Vec<std::collections::HashSet<&Labels>> = vec![Default::default(); steps];
        for (j, s) in r.iter().enumerate() {
            for t in s.floats.iter().map(|p| p.t).chain(s.histograms.iter().map(|p| p.t)) {
                rhs_present[self.step_index(t)].insert(&rsig[j]);
            }
        }
        match op {
            Op::And | Op::Unless => {
                let want = op == Op::And;
                l.into_iter()
                    .enumerate()
                    .filter_map(|(i, mut s)| {
                        s.floats
                            .retain(|p| rhs_present[self.step_index(p.t)].contains(&lsig[i]) == want);
                        s.histograms
                            .retain(|p| rhs_present[self.step_index(p.t)].contains(&lsig[i]) == want);
                        if s.is_empty() { None } else { Some(s) }
                    })
                    .collect()
            }
            _ => {
                let mut lhs_present: Vec<std::collections::HashSet<&Labels>> = vec![Default::default(); steps];
                for (i, s) in l.iter().enumerate() {
                    for t in s.floats.iter().map(|p| p.t).chain(s.histograms.iter().map(|p| p.t)) {
                        lhs_present[self.step_index(t)].insert(&lsig[i]);
                    }
                }
                let mut out: Matrix = Vec::new();
                let mut index: HashMap<Labels, usize> = HashMap::new();
                for s in &l {
                    index.insert(s.metric.clone(), out.len());
                    out.push(s.clone());
                }
                for (j, s) in r.iter().enumerate() {
                    let mut keep = s.clone();
                    keep.floats
                        .retain(|p| !lhs_present[self.step_index(p.t)].contains(&rsig[j]));
                    keep.histograms
                        .retain(|p| !lhs_present[self.step_index(p.t)].contains(&rsig[j]));
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
                        let oi = match by_labels.get(&metric) {
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
                        };
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
                let oi = match by_labels.get(&metric) {
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
                };
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
