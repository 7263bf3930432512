//! Property tests for native histogram arithmetic: addition and subtraction are inverse,
//! compaction keeps content, and a histogram never looks like a reset of itself.
#![allow(clippy::unwrap_used)]

use hypnos_model::{FloatHistogram, Span};
use hypnos_promql::histogram_ops::{add, compact, detect_reset, equals, sub};
use proptest::prelude::*;

fn histogram() -> impl Strategy<Value = FloatHistogram> {
    (
        -2i32..4,
        // Offsets from 1 keep buckets clear of the zero bucket, whose widening legitimately
        // moves small buckets into it.
        1i32..4,
        prop::collection::vec(0u32..50, 0..6),
        1i32..4,
        prop::collection::vec(0u32..50, 0..4),
        0u32..10,
    )
        .prop_map(|(schema, off, pos, noff, neg, zero)| {
            let pos: Vec<f64> = pos.into_iter().map(f64::from).collect();
            let neg: Vec<f64> = neg.into_iter().map(f64::from).collect();
            let count = pos.iter().sum::<f64>() + neg.iter().sum::<f64>() + f64::from(zero);
            FloatHistogram {
                schema,
                zero_threshold: 0.001,
                zero_count: f64::from(zero),
                count,
                sum: count * 1.5,
                positive_spans: if pos.is_empty() {
                    vec![]
                } else {
                    vec![Span::new(off, pos.len() as u32)]
                },
                positive_buckets: pos,
                negative_spans: if neg.is_empty() {
                    vec![]
                } else {
                    vec![Span::new(noff, neg.len() as u32)]
                },
                negative_buckets: neg,
                ..Default::default()
            }
        })
}

proptest! {
    #[test]
    fn add_then_sub_is_identity_at_the_common_schema(a in histogram(), b in histogram()) {
        let (s, _) = add(&a, &b).unwrap();
        let (back, _) = sub(&s, &b).unwrap();
        // The result is at the lower schema of the two; compare after reducing `a` as well.
        let a_reduced = hypnos_promql::histogram_ops::reduce_resolution(&a, s.schema);
        prop_assert!((back.count - a_reduced.count).abs() < 1e-9);
        prop_assert!((back.sum - a_reduced.sum).abs() < 1e-9);
        let back = compact(back);
        let a_c = compact(a_reduced);
        prop_assert_eq!(back.positive_buckets.len(), a_c.positive_buckets.len());
    }

    #[test]
    fn compaction_keeps_content(a in histogram()) {
        prop_assert!(equals(&compact(a.clone()), &a));
    }

    #[test]
    fn no_reset_against_itself(a in histogram()) {
        prop_assert!(!detect_reset(&a, &a));
    }
}
