//! Criterion benchmark of the store gateway's `Series` call over many blocks: 100 blocks of
//! 1,000 series (8 samples each, as bench/store_memory.sh), one FILESYSTEM bucket, every series
//! of every block selected and streamed with its chunks. Run with
//! `cargo bench -p hypnos-store --bench series`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use hypnos_model::{Labels, SampleValue};
use hypnos_store::{BucketStore, StoreConfig, StoreService};
use hypnos_storepb::StoreApi;
use hypnos_storepb::api::{SeriesFrame, frames};
use hypnos_storepb::thanos::{LabelMatcher, SeriesRequest};
use hypnos_tsdb::meta::ThanosMeta;
use hypnos_tsdb::{BlockWriter, BlockWriterOptions};

const BLOCKS: i64 = 100;
const SERIES: usize = 1000;
const BLOCK_MS: i64 = 2 * 3600 * 1000;
const STEP_MS: i64 = 900 * 1000;

fn write_bucket(dir: &std::path::Path) {
    for b in 0..BLOCKS {
        let start = 1_700_006_400_000 + b * BLOCK_MS;
        let mut w = BlockWriter::new(BlockWriterOptions {
            thanos: Some(ThanosMeta {
                labels: [("cluster".to_string(), "bench".to_string())].into_iter().collect(),
                source: "test".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        for s in 0..SERIES {
            let labels = Labels::from_pairs([
                ("__name__", "bench_metric".to_string()),
                ("instance", format!("host-{s:04}")),
                ("job", format!("job-{}", s % 10)),
                ("zone", format!("z{}", s % 3)),
            ]);
            let mut t = start;
            while t < start + BLOCK_MS {
                w.append(
                    &labels,
                    t,
                    &SampleValue::Float(((t / STEP_MS) as usize + s) as f64 % 1000.0),
                )
                .unwrap();
                t += STEP_MS;
            }
        }
        w.flush_with_range(dir, start, start + BLOCK_MS).unwrap();
    }
}

fn series(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    write_bucket(&bucket_dir);
    let yaml = format!("type: FILESYSTEM\nconfig:\n  directory: {}\n", bucket_dir.display());
    let bucket = hypnos_objstore::load_bucket(None, Some(&yaml)).unwrap();
    let store = Arc::new(BucketStore::new(bucket, StoreConfig::new(tmp.path().join("data"))));
    rt.block_on(store.sync()).unwrap();
    let api = StoreService(store);
    let req = SeriesRequest {
        min_time: i64::MIN,
        max_time: i64::MAX,
        matchers: vec![LabelMatcher {
            r#type: 0,
            name: "__name__".into(),
            value: "bench_metric".into(),
        }],
        ..Default::default()
    };
    let run = || async {
        let mut stream = api.series(req.clone()).await.unwrap();
        let mut chunks = 0;
        while let Some(r) = stream.next().await {
            for f in frames(r.unwrap()) {
                if let SeriesFrame::Series(s) = f {
                    chunks += s.chunks.len();
                }
            }
        }
        assert_eq!(chunks, SERIES * BLOCKS as usize);
    };
    let mut g = c.benchmark_group("store_series");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SERIES as u64 * BLOCKS as u64));
    g.bench_function("all_series_100_blocks_cached_index", |b| b.iter(|| rt.block_on(run())));
    g.finish();
}

criterion_group!(benches, series);
criterion_main!(benches);
