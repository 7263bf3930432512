//! The bucket store in-process over a FILESYSTEM bucket holding blocks written by our TSDB
//! writer, checked against our TSDB block reader (the block-level reference), through the
//! StoreAPI trait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use hypnos_model::{Labels, Matcher, SampleValue};
use hypnos_objstore::Bucket;
use hypnos_store::{BucketStore, StoreConfig, StoreService};
use hypnos_storepb::StoreApi;
use hypnos_storepb::api::{SeriesFrame, frames};
use hypnos_storepb::thanos::{LabelMatcher, LabelNamesRequest, LabelValuesRequest, SeriesRequest, ShardInfo};
use hypnos_tsdb::meta::ThanosMeta;
use hypnos_tsdb::{BlockReader, BlockWriter, BlockWriterOptions};

const HOUR: i64 = 3600 * 1000;

/// Writes a block of `series` series covering `[start, start + 2h)` into `dir`.
fn write_block(dir: &Path, ext: &[(&str, &str)], start: i64, series: usize, metric: &str) -> String {
    let thanos = ThanosMeta {
        labels: ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        source: "test".into(),
        ..Default::default()
    };
    let mut w = BlockWriter::new(BlockWriterOptions {
        thanos: Some(thanos),
        ..Default::default()
    });
    for s in 0..series {
        let labels = Labels::from_pairs([
            ("__name__", metric.to_string()),
            ("instance", format!("host-{s:04}")),
            ("job", if s % 2 == 0 { "api" } else { "db" }.to_string()),
        ]);
        let mut t = start;
        while t < start + 2 * HOUR {
            w.append(&labels, t, &SampleValue::Float((t / 1000 + s as i64) as f64))
                .unwrap();
            t += 15_000;
        }
    }
    let meta = w.flush_with_range(dir, start, start + 2 * HOUR).unwrap();
    meta.ulid
}

fn bucket_yaml(dir: &Path) -> String {
    format!("type: FILESYSTEM\nconfig:\n  directory: {}\n", dir.display())
}

async fn open_store(bucket_dir: &Path, data_dir: &Path) -> Arc<BucketStore> {
    let bucket = hypnos_objstore::load_bucket(None, Some(&bucket_yaml(bucket_dir))).unwrap();
    let store = Arc::new(BucketStore::new(bucket, StoreConfig::new(data_dir.to_path_buf())));
    store.sync().await.unwrap();
    store
}

fn matcher(name: &str, t: i32, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: t,
        name: name.into(),
        value: value.into(),
    }
}

struct Answer {
    series: Vec<(BTreeMap<String, String>, Vec<(i64, f64)>)>,
    chunk_counts: Vec<usize>,
    warnings: Vec<String>,
}

async fn series(api: &StoreService, req: SeriesRequest) -> Answer {
    let mut stream = api.series(req).await.unwrap();
    let mut out = Answer {
        series: Vec::new(),
        chunk_counts: Vec::new(),
        warnings: Vec::new(),
    };
    while let Some(frame) = stream.next().await {
        for f in frames(frame.unwrap()) {
            match f {
                SeriesFrame::Series(s) => {
                    let labels = s.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                    let mut samples = Vec::new();
                    for c in &s.chunks {
                        let raw = c.raw.as_ref().unwrap();
                        assert_eq!(raw.hash, hypnos_storepb::chunk::chunk_hash(&raw.data));
                        for (t, v) in hypnos_tsdb::chunkenc::decode_all(hypnos_tsdb::Encoding::Xor, &raw.data).unwrap()
                        {
                            let SampleValue::Float(v) = v else {
                                panic!("float expected")
                            };
                            samples.push((t, v));
                        }
                    }
                    out.chunk_counts.push(s.chunks.len());
                    out.series.push((labels, samples));
                }
                SeriesFrame::Warning(w) => out.warnings.push(w),
                SeriesFrame::Hints(_) => {}
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_blocks_like_the_block_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % (2 * HOUR);
    let ext_a = [("cluster", "eu"), ("replica", "a")];
    let b1 = write_block(&bucket_dir, &ext_a, t0, 50, "up");
    let b2 = write_block(&bucket_dir, &ext_a, t0 + 2 * HOUR, 50, "up");
    let b3 = write_block(&bucket_dir, &[("cluster", "us"), ("replica", "a")], t0, 20, "up");
    // A partial upload (no meta.json) is ignored.
    std::fs::create_dir_all(bucket_dir.join("01HZZZZZZZZZZZZZZZZZZZZZZZ/chunks")).unwrap();
    let store = open_store(&bucket_dir, &tmp.path().join("data")).await;
    assert_eq!(store.blocks().len(), 3);
    assert!(tmp.path().join("data").join(&b1).join("index-header").is_file());
    let api = StoreService(store.clone());

    // All series of cluster=eu, job=api, across both blocks: merged per series, sorted.
    let ans = series(
        &api,
        SeriesRequest {
            min_time: i64::MIN,
            max_time: i64::MAX,
            matchers: vec![matcher("cluster", 0, "eu"), matcher("job", 0, "api")],
            ..Default::default()
        },
    )
    .await;
    assert!(ans.warnings.is_empty(), "{:?}", ans.warnings);
    assert_eq!(ans.series.len(), 25);
    let keys: Vec<_> = ans.series.iter().map(|(l, _)| l.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort_by_key(|l| Labels::from_pairs(l.clone()));
    assert_eq!(keys, sorted);
    // Compare with the block reader on both blocks.
    let mut want: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for id in [&b1, &b2] {
        let r = BlockReader::open(&bucket_dir.join(id)).unwrap();
        for s in r.select(&[Matcher::equal("job", "api")], i64::MIN, i64::MAX).unwrap() {
            let s = s.unwrap();
            let mut labels = s.labels.builder();
            labels.set("cluster", "eu").set("replica", "a");
            let entry = want.entry(labels.build()).or_default();
            for x in r.samples(&s, i64::MIN, i64::MAX) {
                let (t, v) = x.unwrap();
                let SampleValue::Float(v) = v else { panic!() };
                entry.push((t, v));
            }
        }
    }
    let got: Vec<(Labels, Vec<(i64, f64)>)> = ans
        .series
        .iter()
        .map(|(l, s)| (Labels::from_pairs(l.clone()), s.clone()))
        .collect();
    let want: Vec<(Labels, Vec<(i64, f64)>)> = want.into_iter().collect();
    assert_eq!(got, want);

    // Time range: only the first block's chunks.
    let ans = series(
        &api,
        SeriesRequest {
            min_time: t0,
            max_time: t0 + HOUR,
            matchers: vec![matcher("instance", 0, "host-0000")],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ans.series.len(), 2, "eu and us");
    assert!(
        ans.series
            .iter()
            .all(|(_, s)| s.iter().all(|(t, _)| *t < t0 + 2 * HOUR))
    );

    // An external-label matcher that rules every block out: empty, no error.
    let ans = series(
        &api,
        SeriesRequest {
            min_time: i64::MIN,
            max_time: i64::MAX,
            matchers: vec![matcher("cluster", 0, "nowhere"), matcher("job", 0, "api")],
            ..Default::default()
        },
    )
    .await;
    assert!(ans.series.is_empty());

    // without_replica_labels, skip_chunks, limit, regex on external labels.
    let ans = series(
        &api,
        SeriesRequest {
            min_time: i64::MIN,
            max_time: i64::MAX,
            matchers: vec![matcher("cluster", 2, "e.|u."), matcher("__name__", 0, "up")],
            without_replica_labels: vec!["replica".into()],
            skip_chunks: true,
            limit: 7,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ans.series.len(), 7);
    assert!(
        ans.series
            .iter()
            .all(|(l, s)| !l.contains_key("replica") && s.is_empty())
    );
    assert!(ans.chunk_counts.iter().all(|&n| n == 0));

    // Label names and values, including external labels.
    let names = api
        .label_names(LabelNamesRequest {
            start: i64::MIN,
            end: i64::MAX,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(names.names, vec!["__name__", "cluster", "instance", "job", "replica"]);
    let values = api
        .label_values(LabelValuesRequest {
            label: "cluster".into(),
            start: i64::MIN,
            end: i64::MAX,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(values.values, vec!["eu", "us"]);
    let values = api
        .label_values(LabelValuesRequest {
            label: "instance".into(),
            start: i64::MIN,
            end: i64::MAX,
            matchers: vec![matcher("cluster", 0, "us"), matcher("job", 0, "db")],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(values.values.len(), 10);
    assert!(values.values.iter().all(|v| v.starts_with("host-")));

    // Info: two label sets, the eu blocks merged into one TSDB info.
    let info = api.info().await.unwrap();
    assert_eq!(info.component_type, "store");
    assert_eq!(info.label_sets.len(), 2);
    let s = info.store.unwrap();
    assert_eq!((s.min_time, s.max_time), (t0, t0 + 4 * HOUR));
    assert!(s.supports_without_replica_labels);
    assert_eq!(s.tsdb_infos.len(), 2);
    let _ = b3;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_answers_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    write_block(&bucket_dir, &[("cluster", "eu")], 0, 5, "up");
    let store = open_store(&bucket_dir, &tmp.path().join("data")).await;
    let api = StoreService(store);
    // No matchers: InvalidArgument.
    let err = api.series(SeriesRequest::default()).await.err().unwrap();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    // Absurd time ranges: empty.
    for (mint, maxt) in [(i64::MAX, i64::MIN), (i64::MIN, i64::MIN), (i64::MAX, i64::MAX), (5, 4)] {
        let ans = series(
            &api,
            SeriesRequest {
                min_time: mint,
                max_time: maxt,
                matchers: vec![matcher("job", 2, ".*")],
                ..Default::default()
            },
        )
        .await;
        assert!(ans.series.is_empty() || (mint <= 0 && maxt >= 0));
    }
    // Huge and broken regexes, unknown matcher types: InvalidArgument.
    for m in [
        matcher("job", 2, &"(a|b)*c{1000}".repeat(2000)),
        matcher("job", 2, "(("),
        matcher("job", 9, "x"),
    ] {
        let err = api
            .series(SeriesRequest {
                matchers: vec![m],
                max_time: i64::MAX,
                ..Default::default()
            })
            .await
            .err()
            .unwrap();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
    // Matchers that match the empty string only, negative limits, empty label name.
    let ans = series(
        &api,
        SeriesRequest {
            min_time: i64::MIN,
            max_time: i64::MAX,
            matchers: vec![matcher("nonexistent", 0, "")],
            limit: -5,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ans.series.len(), 5);
    let err = api.label_values(LabelValuesRequest::default()).await.err().unwrap();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let names = api
        .label_names(LabelNamesRequest {
            start: 10,
            end: -10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(names.names.is_empty());
}

/// Flips a byte inside the first chunk's data of a block's first segment.
fn corrupt_first_chunk(block_dir: &Path) {
    let seg = block_dir.join("chunks/000001");
    let mut b = std::fs::read(&seg).unwrap();
    b[8 + 4] ^= 0xff;
    std::fs::write(&seg, b).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blocks_are_skipped_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    let good = write_block(&bucket_dir, &[("cluster", "eu")], 0, 5, "up");
    let bad_chunk = write_block(&bucket_dir, &[("cluster", "eu")], 2 * HOUR, 5, "up");
    let truncated = write_block(&bucket_dir, &[("cluster", "eu")], 4 * HOUR, 5, "up");
    let no_index = write_block(&bucket_dir, &[("cluster", "eu")], 6 * HOUR, 5, "up");
    corrupt_first_chunk(&bucket_dir.join(&bad_chunk));
    let index = bucket_dir.join(&truncated).join("index");
    let len = std::fs::metadata(&index).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::remove_file(bucket_dir.join(&no_index).join("index")).unwrap();

    let store = open_store(&bucket_dir, &tmp.path().join("data")).await;
    let loaded: Vec<String> = store.blocks().iter().map(|b| b.id.to_string()).collect();
    assert_eq!(loaded.len(), 2, "{loaded:?}");
    assert!(loaded.contains(&good) && loaded.contains(&bad_chunk));
    let corrupt = store.corrupt_blocks();
    assert_eq!(corrupt.len(), 2, "{corrupt:?}");
    assert_eq!(store.metrics.corrupt_blocks.get(), 2);

    let api = StoreService(store.clone());
    let req = SeriesRequest {
        min_time: i64::MIN,
        max_time: i64::MAX,
        matchers: vec![matcher("__name__", 0, "up")],
        ..Default::default()
    };
    let ans = series(&api, req.clone()).await;
    // Every series still comes (from the good block); the bad chunk's block is reported.
    assert_eq!(ans.series.len(), 5);
    assert_eq!(ans.warnings.len(), 1, "{:?}", ans.warnings);
    assert!(ans.warnings[0].contains("checksum"), "{}", ans.warnings[0]);
    assert_eq!(store.blocks().len(), 1);
    assert_eq!(store.metrics.corrupt_blocks.get(), 3);
    // With partial responses disabled the same failure is an error; here the block is gone
    // already, so the answer is clean.
    let ans = series(&api, req).await;
    assert!(ans.warnings.is_empty(), "{:?}", ans.warnings);
    // A later sync does not bring the corrupt blocks back.
    store.sync().await.unwrap();
    assert_eq!(store.blocks().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_honours_deletion_marks_and_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    let a = write_block(&bucket_dir, &[("cluster", "eu")], 0, 3, "up");
    let b = write_block(&bucket_dir, &[("cluster", "eu")], 2 * HOUR, 3, "up");
    let marked = write_block(&bucket_dir, &[("cluster", "eu")], 4 * HOUR, 3, "up");
    // A "compacted" block whose sources are a and b.
    let c = write_block(&bucket_dir, &[("cluster", "eu")], 0, 3, "up");
    let meta_path = bucket_dir.join(&c).join("meta.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["compaction"]["level"] = 2.into();
    meta["compaction"]["sources"] = serde_json::json!([a, b]);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let mark = serde_json::json!({"id": marked, "version": 1, "deletion_time": 1});
    std::fs::write(bucket_dir.join(&marked).join("deletion-mark.json"), mark.to_string()).unwrap();

    let bucket: Arc<dyn Bucket> = hypnos_objstore::load_bucket(None, Some(&bucket_yaml(&bucket_dir))).unwrap();
    let mut cfg = StoreConfig::new(tmp.path().join("data"));
    cfg.fetcher.ignore_deletion_marks_delay = std::time::Duration::ZERO;
    let store = BucketStore::new(bucket, cfg);
    store.sync().await.unwrap();
    let ids: Vec<String> = store.blocks().iter().map(|b| b.id.to_string()).collect();
    assert_eq!(ids, vec![c.clone()]);
    // The marked block comes back if the mark goes (e.g. a different delay).
    std::fs::remove_file(bucket_dir.join(&marked).join("deletion-mark.json")).unwrap();
    store.sync().await.unwrap();
    assert_eq!(store.blocks().len(), 2);
    // A block deleted from the bucket is dropped, its index-header removed.
    std::fs::remove_dir_all(bucket_dir.join(&c)).unwrap();
    store.sync().await.unwrap();
    assert_eq!(store.blocks().len(), 3);
    assert!(!tmp.path().join("data").join(&c).exists());
}

/// Sharding with replica labels removed (as Thanos's store gateway does it): both replicas of a
/// series land in the same shard, every series in exactly one, merged across the replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_ignore_replica_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % (2 * HOUR);
    write_block(&bucket_dir, &[("replica", "a")], t0, 40, "up");
    write_block(&bucket_dir, &[("replica", "b")], t0, 40, "up");
    let store = open_store(&bucket_dir, &tmp.path().join("data")).await;
    let api = StoreService(store);
    let mut seen: BTreeMap<BTreeMap<String, String>, usize> = BTreeMap::new();
    for shard_index in 0..3 {
        let ans = series(
            &api,
            SeriesRequest {
                min_time: i64::MIN,
                max_time: i64::MAX,
                matchers: vec![matcher("__name__", 0, "up")],
                without_replica_labels: vec!["replica".into()],
                shard_info: Some(ShardInfo {
                    shard_index,
                    total_shards: 3,
                    by: true,
                    labels: Vec::new(),
                }),
                ..Default::default()
            },
        )
        .await;
        assert!(ans.warnings.is_empty(), "{:?}", ans.warnings);
        for ((labels, _), chunks) in ans.series.into_iter().zip(ans.chunk_counts) {
            assert!(!labels.contains_key("replica"));
            // 480 samples per replica: four chunks of 120 from each.
            assert_eq!(chunks, 8, "{labels:?}: the chunks of both replicas");
            *seen.entry(labels).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 40);
    assert!(
        seen.values().all(|&n| n == 1),
        "a series in more than one shard: {seen:?}"
    );
}

/// Label names and values restricted by matchers come from the matching series only, with
/// the external labels of blocks that have such series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_apis_with_matchers() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % (2 * HOUR);
    write_block(&bucket_dir, &[("replica", "a")], t0, 40, "up");
    write_block(&bucket_dir, &[("replica", "b")], t0 + 2 * HOUR, 30, "down");
    let store = open_store(&bucket_dir, &tmp.path().join("data")).await;
    let api = StoreService(store);
    let names = |matchers: Vec<LabelMatcher>, without: Vec<String>| {
        let api = api.clone();
        async move {
            api.label_names(LabelNamesRequest {
                start: i64::MIN,
                end: i64::MAX,
                matchers,
                without_replica_labels: without,
                ..Default::default()
            })
            .await
            .unwrap()
            .names
        }
    };
    assert_eq!(
        names(vec![matcher("job", 0, "db")], vec![]).await,
        vec!["__name__", "instance", "job", "replica"]
    );
    assert_eq!(
        names(vec![matcher("job", 0, "db")], vec!["replica".into()]).await,
        vec!["__name__", "instance", "job"]
    );
    assert!(names(vec![matcher("job", 0, "nope")], vec![]).await.is_empty());
    let values = |label: &str, matchers: Vec<LabelMatcher>| {
        let (api, label) = (api.clone(), label.to_string());
        async move {
            api.label_values(LabelValuesRequest {
                label,
                start: i64::MIN,
                end: i64::MAX,
                matchers,
                ..Default::default()
            })
            .await
            .unwrap()
            .values
        }
    };
    let hosts = values(
        "instance",
        vec![matcher("__name__", 0, "down"), matcher("job", 0, "db")],
    )
    .await;
    assert_eq!(hosts.len(), 15);
    assert!(hosts.iter().all(|h| h.starts_with("host-")));
    assert_eq!(values("replica", vec![matcher("__name__", 0, "down")]).await, vec!["b"]);
    assert_eq!(
        values("__name__", vec![matcher("job", 0, "api")]).await,
        vec!["down", "up"]
    );
}

/// Writes a block with the given series (one sample each at `start`).
fn write_series_block(dir: &Path, ext: &[(&str, &str)], start: i64, series: &[&[(&str, &str)]]) {
    let thanos = ThanosMeta {
        labels: ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        source: "test".into(),
        ..Default::default()
    };
    let mut w = BlockWriter::new(BlockWriterOptions {
        thanos: Some(thanos),
        ..Default::default()
    });
    for (i, pairs) in series.iter().enumerate() {
        let labels = Labels::from_pairs(pairs.iter().copied());
        w.append(&labels, start, &SampleValue::Float(i as f64)).unwrap();
    }
    w.flush_with_range(dir, start, start + 2 * HOUR).unwrap();
}

/// External labels inserted between a series' labels, and replica labels that are series
/// labels, change the order of a block's series: the answer is still sorted, each series once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_stay_sorted_when_labels_are_inserted_or_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % (2 * HOUR);
    // In index order {a=1} < {a=1,b=2} < {a=1,b=2,z=9} < {a=2}; with c=x inserted the
    // extensions of {a=1} sort before it.
    let all: [&[(&str, &str)]; 5] = [
        &[("__name__", "m"), ("a", "1")],
        &[("__name__", "m"), ("a", "1"), ("b", "2")],
        &[("__name__", "m"), ("a", "1"), ("b", "2"), ("z", "9")],
        &[("__name__", "m"), ("a", "2")],
        &[("__name__", "m"), ("a", "2"), ("r", "0")],
    ];
    write_series_block(&bucket_dir, &[("c", "x")], t0, &all);
    write_series_block(&bucket_dir, &[("c", "x")], t0 + 2 * HOUR, &all[1..]);
    let store = open_store(&bucket_dir, &tmp.path().join("data")).await;
    let api = StoreService(store);
    let req = |without: &[&str]| SeriesRequest {
        min_time: i64::MIN,
        max_time: i64::MAX,
        matchers: vec![matcher("__name__", 0, "m")],
        without_replica_labels: without.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let names = |ans: &Answer| -> Vec<String> {
        ans.series
            .iter()
            .map(|(l, _)| l.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(","))
            .collect()
    };

    let ans = series(&api, req(&[])).await;
    assert_eq!(
        names(&ans),
        [
            "__name__=m,a=1,b=2,c=x",
            "__name__=m,a=1,b=2,c=x,z=9",
            "__name__=m,a=1,c=x",
            "__name__=m,a=2,c=x",
            "__name__=m,a=2,c=x,r=0",
        ]
    );
    // Series in both blocks have a chunk from each.
    assert_eq!(ans.chunk_counts, [2, 2, 1, 2, 2]);

    // `r` is a series label: removing it makes {a=2} and {a=2,r=0} one series.
    let ans = series(&api, req(&["r", "c"])).await;
    assert_eq!(
        names(&ans),
        [
            "__name__=m,a=1",
            "__name__=m,a=1,b=2",
            "__name__=m,a=1,b=2,z=9",
            "__name__=m,a=2"
        ]
    );
    assert_eq!(ans.chunk_counts, [1, 2, 2, 4]);
    let samples: Vec<usize> = ans.series.iter().map(|(_, s)| s.len()).collect();
    assert_eq!(samples, [1, 2, 2, 4]);
}

/// Every message of a `Series` answer, in order.
async fn raw_series(api: &StoreService, req: SeriesRequest) -> Vec<hypnos_storepb::thanos::SeriesResponse> {
    let mut stream = api.series(req).await.unwrap();
    let mut out = Vec::new();
    while let Some(msg) = stream.next().await {
        out.push(msg.unwrap());
    }
    out
}

/// A FILESYSTEM bucket's chunk segments are mapped, other buckets' read by ranges: both
/// answer the same, message for message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_and_ranged_chunk_reads_answer_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_dir = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % (2 * HOUR);
    write_block(&bucket_dir, &[("cluster", "eu")], t0, 700, "up");
    write_block(&bucket_dir, &[("cluster", "eu")], t0 + 2 * HOUR, 600, "up");
    write_block(&bucket_dir, &[("cluster", "us")], t0, 300, "down");
    let mapped = open_store(&bucket_dir, &tmp.path().join("data-mapped")).await;

    let memory: Arc<dyn Bucket> = Arc::new(hypnos_objstore::ObjectStoreBucket::in_memory());
    let mut stack = vec![bucket_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let key = path.strip_prefix(&bucket_dir).unwrap().to_str().unwrap().to_string();
                memory.put(&key, std::fs::read(&path).unwrap().into()).await.unwrap();
            }
        }
    }
    assert_eq!(memory.local_path("x/y"), None);
    let ranged = Arc::new(BucketStore::new(
        memory,
        StoreConfig::new(tmp.path().join("data-ranged")),
    ));
    ranged.sync().await.unwrap();
    assert_eq!(ranged.blocks().len(), 3);

    let requests = [
        (i64::MIN, i64::MAX, vec![matcher("__name__", 2, ".+")], false),
        (t0 + HOUR, t0 + 3 * HOUR, vec![matcher("job", 0, "api")], false),
        (t0, t0 + HOUR, vec![matcher("instance", 2, "host-00[0-4].*")], false),
        (i64::MIN, i64::MAX, vec![matcher("__name__", 0, "up")], true),
    ];
    for (min_time, max_time, matchers, skip_chunks) in requests {
        let req = SeriesRequest {
            min_time,
            max_time,
            matchers,
            skip_chunks,
            ..Default::default()
        };
        let a = raw_series(&StoreService(mapped.clone()), req.clone()).await;
        let b = raw_series(&StoreService(ranged.clone()), req.clone()).await;
        assert!(a.len() > 10, "{req:?}: {} messages", a.len());
        assert!(a == b, "{req:?}: answers differ");
    }
}
