//! Property tests: chunk encodings and index/block round-trips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use hypnos_model::{CounterResetHint, FloatHistogram, Histogram, Labels, Matcher, SampleValue, Span};
use hypnos_tsdb::chunkenc::{
    CounterResetHeader, FloatHistogramAppender, FloatHistogramIterator, HistogramAppender, HistogramIterator,
    XorAppender, XorIterator,
};
use hypnos_tsdb::{BlockReader, BlockWriter, BlockWriterOptions};
use proptest::prelude::*;

fn timestamps(n: usize) -> impl Strategy<Value = Vec<i64>> {
    (
        any::<i32>(),
        proptest::collection::vec(prop_oneof![1i64..100, 1i64..100_000, 1i64..(1 << 40)], n),
    )
        .prop_map(|(start, deltas)| {
            let mut t = i64::from(start);
            deltas
                .into_iter()
                .map(|d| {
                    t += d;
                    t
                })
                .collect()
        })
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (-1000i32..1000).prop_map(f64::from),
        Just(f64::NAN),
        Just(0.0),
        Just(-0.0)
    ]
}

fn spans_and_len() -> impl Strategy<Value = (Vec<Span>, usize)> {
    proptest::collection::vec((0i32..4, 1u32..4), 0..4).prop_map(|v| {
        let spans: Vec<Span> = v.into_iter().map(|(o, l)| Span::new(o, l)).collect();
        let n = spans.iter().map(|s| s.length as usize).sum();
        (spans, n)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn xor_round_trip(ts in timestamps(150), vs in proptest::collection::vec(float(), 150)) {
        let mut a = XorAppender::new();
        for (t, v) in ts.iter().zip(&vs) {
            a.append(*t, *v);
        }
        let b = a.into_bytes();
        let got: Vec<(i64, f64)> = XorIterator::new(&b).unwrap().map(|r| r.unwrap()).collect();
        prop_assert_eq!(got.len(), ts.len());
        for ((gt, gv), (t, v)) in got.iter().zip(ts.iter().zip(&vs)) {
            prop_assert_eq!(gt, t);
            prop_assert_eq!(gv.to_bits(), v.to_bits());
        }
    }

    #[test]
    fn histogram_round_trip(
        ts in timestamps(60),
        (pspans, np) in spans_and_len(),
        (nspans, nn) in spans_and_len(),
        schema in -4i32..=8,
        zt in prop_oneof![Just(0.0), Just(0.001), Just(2f64.powi(-128)), 0.0f64..1.0],
        seed in any::<u64>(),
    ) {
        let mut s = seed;
        let mut rnd = move |m: u64| { s = s.wrapping_mul(6364136223846793005).wrapping_add(1); (s >> 33) % m };
        let hs: Vec<Histogram> = (0..ts.len()).map(|i| Histogram {
            counter_reset_hint: if i == 0 { CounterResetHint::CounterReset } else { CounterResetHint::NotCounterReset },
            schema, zero_threshold: zt,
            zero_count: rnd(1000), count: rnd(1 << 40), sum: rnd(1 << 50) as f64 / 7.0,
            positive_spans: pspans.clone(), negative_spans: nspans.clone(),
            positive_buckets: (0..np).map(|_| rnd(2000) as i64 - 1000).collect(),
            negative_buckets: (0..nn).map(|_| rnd(2000) as i64 - 1000).collect(),
            custom_values: vec![],
        }).collect();
        let mut a = HistogramAppender::new(CounterResetHeader::CounterReset);
        for (t, h) in ts.iter().zip(&hs) { a.append(*t, h); }
        let b = a.into_bytes();
        let mut it = HistogramIterator::new(&b).unwrap();
        for (t, h) in ts.iter().zip(&hs) {
            let (gt, gh) = it.next_histogram().unwrap().unwrap();
            prop_assert_eq!(gt, *t);
            prop_assert_eq!(&gh, h);
        }
        prop_assert!(it.next_histogram().unwrap().is_none());

        let fhs: Vec<FloatHistogram> = hs.iter().map(|h| { let mut f = h.to_float(); f.counter_reset_hint = CounterResetHint::Gauge; f }).collect();
        let mut a = FloatHistogramAppender::new(CounterResetHeader::Gauge);
        for (t, h) in ts.iter().zip(&fhs) { a.append(*t, h); }
        let b = a.into_bytes();
        let mut it = FloatHistogramIterator::new(&b).unwrap();
        for (t, h) in ts.iter().zip(&fhs) {
            let (gt, gh) = it.next_histogram().unwrap().unwrap();
            prop_assert_eq!(gt, *t);
            prop_assert_eq!(&gh, h);
        }
    }

    #[test]
    fn block_round_trip(series in proptest::collection::btree_map(
        proptest::collection::btree_map("[a-c]", "[x-z]{0,2}", 1..3),
        proptest::collection::btree_set(-1000i64..100_000, 1..40),
        1..12,
    )) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::new(BlockWriterOptions { chunk_range: 20_000, ..Default::default() });
        let mut want: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for (ls, ts) in &series {
            let labels = Labels::from_pairs(ls.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if labels.is_empty() || want.contains_key(&labels) { continue; }
            let e = want.entry(labels.clone()).or_default();
            for &t in ts {
                w.append(&labels, t, &SampleValue::Float(t as f64 * 0.5)).unwrap();
                e.push((t, t as f64 * 0.5));
            }
        }
        let Some(meta) = w.flush(dir.path()).unwrap() else { return Ok(()); };
        let b = BlockReader::open(&dir.path().join(&meta.ulid)).unwrap();
        let mut got: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for s in b.select(&[], i64::MIN, i64::MAX).unwrap() {
            let s = s.unwrap();
            let v = b.samples(&s, i64::MIN, i64::MAX).map(|r| match r.unwrap() {
                (t, SampleValue::Float(v)) => (t, v),
                _ => panic!("not a float"),
            }).collect();
            got.insert(s.labels.clone(), v);
        }
        prop_assert_eq!(&got, &want);
        // Every label pair selects exactly the series having it.
        for name in b.index().label_names() {
            for value in b.index().label_values(name) {
                let sel: Vec<Labels> = b.select(&[Matcher::equal(name, value)], i64::MIN, i64::MAX).unwrap().map(|s| s.unwrap().labels).collect();
                let exp: Vec<Labels> = want.keys().filter(|l| l.get(name) == Some(value)).cloned().collect();
                prop_assert_eq!(sel, exp);
            }
        }
        let rep = hypnos_tsdb::tools::verify::verify_block(&dir.path().join(&meta.ulid), &mut |_, _| {}).unwrap();
        prop_assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    }
}
