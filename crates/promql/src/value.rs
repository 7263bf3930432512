//! Result values of queries: scalars, strings, instant vectors and range vectors.

use std::sync::Arc;

use hypnos_model::{FloatHistogram, Labels, Timestamp};

/// A float point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FPoint {
    pub t: Timestamp,
    pub v: f64,
}

/// A histogram point. Histograms are shared because one stored histogram is often seen
/// by many steps.
#[derive(Clone, Debug, PartialEq)]
pub struct HPoint {
    pub t: Timestamp,
    pub h: Arc<FloatHistogram>,
}

/// A sample of either kind, for code that only looks at time.
pub trait Timed {
    fn time(&self) -> Timestamp;
}

impl Timed for FPoint {
    fn time(&self) -> Timestamp {
        self.t
    }
}

impl Timed for HPoint {
    fn time(&self) -> Timestamp {
        self.t
    }
}

/// One element of an instant vector: a float or a histogram at one time.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    pub t: Timestamp,
    pub f: f64,
    pub h: Option<Arc<FloatHistogram>>,
    /// Delayed `__name__` removal: the name is dropped when the query's result is final.
    pub drop_name: bool,
}

pub type Vector = Vec<Sample>;

/// One series of a range vector; floats and histograms each sorted by time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub metric: Labels,
    pub floats: Vec<FPoint>,
    pub histograms: Vec<HPoint>,
    pub drop_name: bool,
}

impl Series {
    pub fn new(metric: Labels) -> Self {
        Series {
            metric,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.floats.len() + self.histograms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.floats.is_empty() && self.histograms.is_empty()
    }
}

pub type Matrix = Vec<Series>;

/// What a query returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: Timestamp, v: f64 },
    String { t: Timestamp, s: String },
    Vector(Vector),
    Matrix(Matrix),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}
