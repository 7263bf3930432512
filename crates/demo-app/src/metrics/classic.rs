/// A classic histogram with fixed upper bounds; counts per bucket are non-cumulative here
/// and made cumulative on exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicHistogram {
    pub upper_bounds: Vec<f64>,
    pub bucket_counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl ClassicHistogram {
    pub fn new(upper_bounds: &[f64]) -> Self {
        ClassicHistogram {
            upper_bounds: upper_bounds.to_vec(),
            bucket_counts: vec![0; upper_bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        // A value belongs to the first bucket whose upper bound is >= v (`le` semantics).
        let i = self.upper_bounds.partition_point(|b| *b < v);
        if let Some(c) = self.bucket_counts.get_mut(i) {
            *c += 1;
        }
        self.count += 1;
        self.sum += v;
    }

    /// `(upper bound, cumulative count)` for each finite bucket.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        self.upper_bounds
            .iter()
            .zip(&self.bucket_counts)
            .map(|(b, c)| {
                acc += c;
                (*b, acc)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_semantics() {
        let mut h = ClassicHistogram::new(&[0.1, 1.0]);
        h.observe(0.1);
        h.observe(0.5);
        h.observe(3.0);
        assert_eq!(h.cumulative(), vec![(0.1, 1), (1.0, 2)]);
        assert_eq!(h.count, 3);
    }
}
