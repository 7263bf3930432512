//! Generated blocks read back with hypnos-tsdb's reader and verifier: every sample is
//! there, series have the shapes they should, replicas differ only as intended, and
//! bucket uploads put meta.json last with the external labels.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hypnos_generate::plan::{DAY, HOUR, SECOND};
use hypnos_generate::{Options, Output, Plan, Profile, generate};
use hypnos_model::{Matcher, SampleValue};
use hypnos_tsdb::tools::verify::verify_block;
use hypnos_tsdb::{BlockReader, block_dirs};

const MAX: i64 = 1_627_344_000_000; // 2021-07-27T00:00:00Z, the tutorial's max time

/// Every sample of every series in every block of `dir`: labels → samples, and block metas.
type SeriesSamples = BTreeMap<String, Vec<(i64, SampleValue)>>;

fn read_all(dir: &Path) -> (SeriesSamples, Vec<hypnos_tsdb::BlockMeta>) {
    let mut out = SeriesSamples::new();
    let mut metas = Vec::new();
    for b in block_dirs(dir).unwrap() {
        let rep = verify_block(&b, &mut hypnos_tsdb::tools::no_progress).unwrap();
        assert!(rep.problems.is_empty(), "{}: {:?}", b.display(), rep.problems);
        let r = BlockReader::open(&b).unwrap();
        metas.push(r.meta().clone());
        let mut n = 0;
        for s in r
            .select(
                &[Matcher::new(hypnos_model::MatchOp::RegexMatch, "__name__", ".+").unwrap()],
                i64::MIN,
                i64::MAX,
            )
            .unwrap()
        {
            let s = s.unwrap();
            let samples: Vec<(i64, SampleValue)> = r.samples(&s, i64::MIN, i64::MAX).map(|x| x.unwrap()).collect();
            for (t, _) in &samples {
                assert!(
                    *t >= r.meta().min_time && *t < r.meta().max_time,
                    "sample outside its block"
                );
            }
            n += samples.len() as u64;
            out.entry(s.labels.to_string()).or_default().extend(samples);
        }
        assert_eq!(n, r.meta().stats.num_samples);
    }
    (out, metas)
}

#[test]
fn continuous_30d_tiny_like_thanosbench() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::named("continuous-30d-tiny", MAX).unwrap();
    let s = generate(&plan, &Output::Dirs(vec![dir.path().into()]), &Options::default()).unwrap();
    assert_eq!(s.blocks.len(), 9);
    assert_eq!(s.series, 5);
    // 30 days at 15 s for 5 series.
    assert_eq!(s.samples, 5 * 30 * 24 * 240);
    let (series, metas) = read_all(dir.path());
    assert_eq!(series.len(), 5);
    assert_eq!(metas.first().unwrap().min_time, MAX - 30 * DAY);
    assert_eq!(metas.last().unwrap().max_time, MAX);
    assert!(metas.iter().all(|m| m.thanos.is_none() && m.compaction.level == 1));
    for (labels, samples) in &series {
        assert!(labels.starts_with("continuous_app_metric"), "{labels}");
        assert!(samples.windows(2).all(|w| w[1].0 - w[0].0 == 15 * SECOND));
        for (_, v) in samples {
            let SampleValue::Float(v) = v else {
                panic!("not a float")
            };
            assert!(
                (10_000_000.0 - 15_000_000.0..=200_000_001.0 + 15_000_000.0).contains(v),
                "{v}"
            );
        }
    }
}

#[test]
fn seed_profile_with_replicas_and_determinism() {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = vec![root.path().join("prom1"), root.path().join("prom10")];
    let plan = Plan::custom(Profile::seed(2), DAY, 2 * HOUR, 15 * SECOND, MAX).unwrap();
    let opts = Options::default()
        .with_replicas(2)
        .with_label("cluster", "ap-south1")
        .with_seed(7);
    let s = generate(&plan, &Output::Dirs(dirs.clone()), &opts).unwrap();
    assert_eq!(s.blocks.len(), 2 * 12);
    let (a, metas_a) = read_all(&dirs[0]);
    let (b, metas_b) = read_all(&dirs[1]);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "replicas hold the same series"
    );
    assert_eq!(
        metas_a[0]
            .thanos
            .as_ref()
            .unwrap()
            .labels
            .get("replica")
            .map(String::as_str),
        Some("0")
    );
    assert_eq!(
        metas_b[0]
            .thanos
            .as_ref()
            .unwrap()
            .labels
            .get("replica")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(metas_a[0].thanos.as_ref().unwrap().source, "hypnos-generate");
    // Same values, timestamps a few ms apart, a few samples missing in each.
    let mut differing_ts = 0;
    let mut total = 0;
    for (labels, sa) in &a {
        let sb = &b[labels];
        let bt: BTreeMap<i64, &SampleValue> = sb.iter().map(|(t, v)| (t / 1000, v)).collect();
        let exact: std::collections::HashSet<i64> = sb.iter().map(|(t, _)| *t).collect();
        for (t, v) in sa {
            total += 1;
            if let Some(vb) = bt.get(&(t / 1000))
                && !matches!(v, SampleValue::Float(x) if x.is_nan())
            {
                assert_eq!(&v, vb, "{labels} at {t}");
            }
            if !exact.contains(t) {
                differing_ts += 1;
            }
            if total > 20_000 {
                break;
            }
        }
    }
    assert!(differing_ts > 0, "replica timestamps should be jittered");
    let missing = a.values().map(Vec::len).sum::<usize>() as i64 - b.values().map(Vec::len).sum::<usize>() as i64;
    assert!(missing.abs() < 5000, "gaps are small: {missing}");

    // Counters reset, histograms are native, churn: several instances.
    let instances: std::collections::BTreeSet<&str> = a
        .keys()
        .filter_map(|k| k.split("instance=\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .collect();
    assert!(instances.len() >= 2, "{instances:?}");
    let native = a
        .iter()
        .find(|(k, _)| k.starts_with("request_duration_seconds_native2{"))
        .unwrap();
    assert!(matches!(native.1[0].1, SampleValue::Histogram(_)));
    let le_inf = a.keys().filter(|k| k.contains("le=\"+Inf\"")).count();
    assert!(le_inf >= 8);
    assert!(
        a.keys()
            .any(|k| k.starts_with("instances_active_session{") && k.contains("instance_name=\"staging\""))
    );

    // The same seed gives the same blocks, ULIDs included.
    let again = tempfile::tempdir().unwrap();
    let dirs2 = vec![again.path().join("a"), again.path().join("b")];
    let s2 = generate(&plan, &Output::Dirs(dirs2.clone()), &opts).unwrap();
    assert_eq!(
        s.blocks
            .iter()
            .map(|b| (&b.ulid, b.samples, b.bytes))
            .collect::<Vec<_>>(),
        s2.blocks
            .iter()
            .map(|b| (&b.ulid, b.samples, b.bytes))
            .collect::<Vec<_>>()
    );
    let first = &s.blocks[0];
    let f1 = std::fs::read(dirs[0].join(&first.ulid).join("chunks/000001")).unwrap();
    let f2 = std::fs::read(dirs2[0].join(&first.ulid).join("chunks/000001")).unwrap();
    assert!(f1 == f2, "chunks differ between runs with the same seed");
}

#[test]
fn uploads_to_a_bucket_meta_last() {
    let root = tempfile::tempdir().unwrap();
    let yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        root.path().join("bkt").display()
    );
    let bucket = hypnos_objstore::load_bucket(None, Some(&yaml)).unwrap();
    let plan = Plan::custom(Profile::continuous(3, 4), 6 * HOUR, 2 * HOUR, 15 * SECOND, MAX).unwrap();
    // Without external labels Thanos would refuse the blocks; so do we.
    let err = generate(&plan, &Output::Bucket(Arc::clone(&bucket)), &Options::default()).unwrap_err();
    assert!(err.to_string().contains("external labels"), "{err}");
    let opts = Options::default().with_replicas(2).with_label("cluster", "eu-1");
    let s = generate(&plan, &Output::Bucket(Arc::clone(&bucket)), &opts).unwrap();
    assert_eq!(s.blocks.len(), 6);
    let bkt = root.path().join("bkt");
    let (_, metas) = read_all(&bkt);
    assert_eq!(metas.len(), 6);
    let mut replicas = std::collections::BTreeSet::new();
    for m in &metas {
        let t = m.thanos.as_ref().unwrap();
        assert_eq!(t.labels.get("cluster").map(String::as_str), Some("eu-1"));
        replicas.insert(t.labels.get("replica").cloned().unwrap());
        assert!(t.files.iter().any(|f| f.rel_path == "index" && f.size_bytes > 0));
        // meta.json was written after index and chunks.
        let dir = bkt.join(&m.ulid);
        let mtime = |p: PathBuf| std::fs::metadata(p).unwrap().modified().unwrap();
        assert!(mtime(dir.join("meta.json")) >= mtime(dir.join("index")));
        assert!(mtime(dir.join("index")) >= mtime(dir.join("chunks/000001")));
    }
    assert_eq!(
        replicas.into_iter().collect::<Vec<_>>(),
        vec!["0".to_string(), "1".to_string()]
    );
}

#[test]
fn bad_options_are_clear_errors() {
    let plan = Plan::custom(Profile::continuous(1, 1), 2 * HOUR, 2 * HOUR, 15 * SECOND, MAX).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Output::Dirs(vec![dir.path().into()]);
    let e = generate(&plan, &out, &Options::default().with_replicas(2)).unwrap_err();
    assert!(e.to_string().contains("output directories"), "{e}");
    let opts = Options {
        timestamp_jitter: Some(20_000),
        ..Options::default()
    };
    assert!(generate(&plan, &out, &opts).unwrap_err().to_string().contains("jitter"));
}
