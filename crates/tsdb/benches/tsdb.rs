//! Criterion benchmarks: XOR decode/encode per sample, postings intersection, and series
//! selection on a 100k-series block. Run with `cargo bench -p hypnos-tsdb`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use hypnos_model::{Labels, MatchOp, Matcher, SampleValue};
use hypnos_tsdb::chunkenc::{XorAppender, XorIterator};
use hypnos_tsdb::index::postings::{intersect, union};
use hypnos_tsdb::{BlockReader, BlockWriter, BlockWriterOptions};

/// 120 samples as a scrape produces them: 15s apart with millisecond jitter, a gauge
/// wandering by small steps.
fn realistic_samples() -> Vec<(i64, f64)> {
    let mut seed = 7u64;
    let mut rnd = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut v = 100.0f64;
    (0..120)
        .map(|i| {
            v += (rnd() % 21) as f64 - 10.0;
            (1_700_000_000_000 + i * 15_000 + (rnd() % 5) as i64, v)
        })
        .collect()
}

fn xor(c: &mut Criterion) {
    let samples = realistic_samples();
    let mut a = XorAppender::new();
    for &(t, v) in &samples {
        a.append(t, v);
    }
    let chunk = a.into_bytes();
    let mut g = c.benchmark_group("xor");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("decode_120", |b| {
        b.iter(|| {
            let mut it = XorIterator::new(black_box(&chunk)).unwrap();
            let mut sum = 0.0;
            while let Some((_, v)) = it.next_sample().unwrap() {
                sum += v;
            }
            sum
        })
    });
    g.bench_function("decode_120_batch", |b| {
        b.iter(|| {
            let mut it = XorIterator::new(black_box(&chunk)).unwrap();
            let mut n = 0;
            loop {
                let batch = it.next_batch().unwrap();
                if batch.is_empty() {
                    return n;
                }
                for s in batch {
                    black_box(s);
                }
                n += batch.len();
            }
        })
    });
    // Exact 15 s steps and one constant value: 2 bits per sample, every branch predictable.
    let mut a = XorAppender::new();
    for i in 0..120 {
        a.append(1_700_000_000_000 + i * 15_000, 42.0);
    }
    let regular = a.into_bytes();
    g.bench_function("decode_120_regular_batch", |b| {
        b.iter(|| {
            let mut it = XorIterator::new(black_box(&regular)).unwrap();
            let mut n = 0;
            loop {
                let batch = it.next_batch().unwrap();
                if batch.is_empty() {
                    return n;
                }
                for s in batch {
                    black_box(s);
                }
                n += batch.len();
            }
        })
    });
    g.bench_function("encode_120", |b| {
        b.iter(|| {
            let mut a = XorAppender::new();
            for &(t, v) in black_box(&samples) {
                a.append(t, v);
            }
            a.into_bytes()
        })
    });
    g.finish();
}

fn postings(c: &mut Criterion) {
    let a: Vec<u32> = (0..100_000u32).map(|i| i * 2).collect();
    let b: Vec<u32> = (0..50_000u32).map(|i| i * 3).collect();
    let small: Vec<u32> = (0..100u32).map(|i| i * 1999).collect();
    let mut g = c.benchmark_group("postings");
    g.bench_function("intersect_100k_50k", |bn| {
        bn.iter(|| intersect(vec![black_box(a.clone()), black_box(b.clone())]))
    });
    g.bench_function("intersect_100k_100", |bn| {
        bn.iter(|| intersect(vec![black_box(a.clone()), black_box(small.clone())]))
    });
    g.bench_function("union_100k_50k", |bn| {
        bn.iter(|| union(vec![black_box(a.clone()), black_box(b.clone())]))
    });
    g.finish();
}

fn selection(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(BlockWriterOptions::default());
    for i in 0..100_000u32 {
        let l = Labels::from_pairs([
            ("__name__", format!("metric_{}", i % 100)),
            ("instance", format!("host-{}", i % 1000)),
            ("job", format!("job-{}", i % 10)),
            ("id", i.to_string()),
        ]);
        for k in 0..4 {
            w.append(&l, 1_700_000_000_000 + k * 15_000, &SampleValue::Float(k as f64))
                .unwrap();
        }
    }
    let meta = w.flush(dir.path()).unwrap().unwrap();
    let block = BlockReader::open(&dir.path().join(&meta.ulid)).unwrap();
    let cases = [
        ("name_eq", vec![Matcher::equal("__name__", "metric_7")]),
        (
            "name_eq_job_eq",
            vec![Matcher::equal("__name__", "metric_7"), Matcher::equal("job", "job-7")],
        ),
        (
            "job_regex_instance_neq",
            vec![
                Matcher::new(MatchOp::RegexMatch, "job", "job-[1-3]").unwrap(),
                Matcher::new(MatchOp::NotEqual, "instance", "host-1").unwrap(),
            ],
        ),
    ];
    let mut g = c.benchmark_group("select_100k_series");
    g.sample_size(20);
    for (name, ms) in &cases {
        g.bench_with_input(BenchmarkId::from_parameter(name), ms, |b, ms| {
            b.iter(|| {
                block
                    .select(ms, i64::MIN, i64::MAX)
                    .unwrap()
                    .map(|s| s.unwrap().chunks.len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, xor, postings, selection);
criterion_main!(benches);
