//! Native histograms written by Go: a real Prometheus 2.42 scrapes `hypnos demo-app`
//! with native histograms on, the admin snapshot API writes its head as a block, and our
//! reader must return exactly what Prometheus's query API returns for those series; our
//! writer must round-trip them. Fails (never skips) when prometheus is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ChildGuard, Prometheus, free_port, hypnos_bin, wait_http_ok};
use hypnos_model::histogram::bucket_indexes;
use hypnos_model::{Histogram, Labels, Matcher, SampleValue};
use hypnos_tsdb::{BlockReader, BlockWriter, BlockWriterOptions};

const NAME: &str = "request_duration_seconds_native";

/// Bucket upper bound at `schema` (Prometheus's `getBound`, computed rather than tabled).
fn bound(idx: i32, schema: i32) -> f64 {
    (f64::from(idx) * (-f64::from(schema)).exp2()).exp2()
}

/// The `[boundary rule, lower, upper, count]` buckets Prometheus 2.42's JSON shows.
fn json_buckets(h: &Histogram) -> Vec<(i64, f64, f64, f64)> {
    let f = h.to_float();
    let mut out = Vec::new();
    let neg: Vec<(i32, f64)> = bucket_indexes(&f.negative_spans, &f.negative_buckets).collect();
    for (i, c) in neg.into_iter().rev() {
        if c != 0.0 {
            out.push((1, -bound(i, f.schema), -bound(i - 1, f.schema), c));
        }
    }
    if f.zero_count != 0.0 {
        out.push((3, -f.zero_threshold, f.zero_threshold, f.zero_count));
    }
    for (i, c) in bucket_indexes(&f.positive_spans, &f.positive_buckets) {
        if c != 0.0 {
            out.push((0, bound(i - 1, f.schema), bound(i, f.schema), c));
        }
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsdb_reads_and_rewrites_native_histograms_from_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let app_port = free_port();
    let mut app = ChildGuard::spawn(
        "demo-app",
        Command::new(hypnos_bin()).args([
            "demo-app",
            &format!("--listen-address=127.0.0.1:{app_port}"),
            "--min-delay=1ms",
            "--max-delay=30ms",
            "--populate-interval=1h",
        ]),
        dir.path(),
    );
    let app_url = format!("http://127.0.0.1:{app_port}");
    wait_http_ok(&format!("{app_url}/-/healthy"), Duration::from_secs(20), &mut app);
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: demo-app\n    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
    );
    let prom = Prometheus::start(
        dir.path(),
        &config,
        &["--enable-feature=native-histograms", "--web.enable-admin-api"],
    );
    let client = reqwest::Client::new();
    // Requests spread over several scrapes so the chunks hold changing histograms.
    for i in 0..60 {
        let _ = client
            .post(format!("{app_url}/"))
            .body(r#"{"prod": 1}"#)
            .send()
            .await
            .unwrap();
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = prom.query(&format!("sum(histogram_count({NAME}))")).await;
        if r.first().and_then(|s| s["value"][1].as_str()) == Some("60") {
            break;
        }
        assert!(Instant::now() < deadline, "prometheus never saw all 60 requests: {r:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let snap: serde_json::Value = client
        .post(format!("{}/api/v1/admin/tsdb/snapshot", prom.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = snap["data"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("snapshot failed: {snap}"));
    let snap_dir: PathBuf = dir.path().join("prom-data/snapshots").join(name);
    let blocks = hypnos_tsdb::block_dirs(&snap_dir).unwrap();
    assert!(!blocks.is_empty(), "snapshot {} holds no block", snap_dir.display());

    // Everything our reader returns for the native histogram series.
    let mut ours: Vec<(Labels, Vec<(i64, Histogram)>)> = Vec::new();
    for b in &blocks {
        let block = BlockReader::open(b).unwrap();
        for s in block
            .select(&[Matcher::equal("__name__", NAME)], i64::MIN, i64::MAX)
            .unwrap()
        {
            let s = s.unwrap();
            let samples = block
                .samples(&s, i64::MIN, i64::MAX)
                .map(|x| match x.unwrap() {
                    (t, SampleValue::Histogram(h)) => (t, *h),
                    other => panic!("expected an integer histogram, got {other:?}"),
                })
                .collect();
            ours.push((s.labels, samples));
        }
    }
    assert!(!ours.is_empty(), "no {NAME} series in the snapshot");
    let last_t = ours.iter().filter_map(|(_, v)| v.last().map(|x| x.0)).max().unwrap();
    let first_t = ours.iter().filter_map(|(_, v)| v.first().map(|x| x.0)).min().unwrap();

    // What Prometheus's query API returns for the same range.
    let range_s = (last_t - first_t) / 1000 + 5;
    let at = format!("{}.{:03}", last_t / 1000, last_t % 1000);
    let resp: serde_json::Value = client
        .get(format!("{}/api/v1/query", prom.url))
        .query(&[("query", format!("{NAME}[{range_s}s]")), ("time", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let result = resp["data"]["result"].as_array().unwrap_or_else(|| panic!("{resp}"));
    assert_eq!(result.len(), ours.len(), "{resp}");
    for (labels, samples) in &ours {
        let series = result
            .iter()
            .find(|s| {
                let m = s["metric"].as_object().unwrap();
                m.len() == labels.len()
                    && labels
                        .iter()
                        .all(|l| m.get(&l.name).and_then(|v| v.as_str()) == Some(&l.value))
            })
            .unwrap_or_else(|| panic!("{labels} missing from {resp}"));
        let hs = series["histograms"]
            .as_array()
            .unwrap_or_else(|| panic!("no histograms: {series}"));
        assert_eq!(hs.len(), samples.len(), "{labels}: sample count");
        for ((t, h), j) in samples.iter().zip(hs) {
            let jt = (j[0].as_f64().unwrap() * 1000.0).round() as i64;
            assert_eq!(jt, *t, "{labels}");
            let jh = &j[1];
            let num = |v: &serde_json::Value| v.as_str().unwrap().parse::<f64>().unwrap();
            assert_eq!(num(&jh["count"]), h.count as f64, "{labels} @{t}");
            assert_eq!(num(&jh["sum"]), h.sum, "{labels} @{t}");
            let want = json_buckets(h);
            let got: Vec<(i64, f64, f64, f64)> = jh["buckets"]
                .as_array()
                .map(|bs| {
                    bs.iter()
                        .map(|b| (b[0].as_i64().unwrap(), num(&b[1]), num(&b[2]), num(&b[3])))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(got.len(), want.len(), "{labels} @{t}: {got:?} vs {want:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.0 == w.0 && close(g.1, w.1) && close(g.2, w.2) && g.3 == w.3,
                    "{labels} @{t}: {g:?} vs {w:?}"
                );
            }
        }
    }

    // Our writer round-trips them.
    let out = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(BlockWriterOptions::default());
    for (labels, samples) in &ours {
        for (t, h) in samples {
            w.append(labels, *t, &SampleValue::Histogram(Box::new(h.clone())))
                .unwrap();
        }
    }
    let meta = w.flush(out.path()).unwrap().unwrap();
    let block = BlockReader::open(&out.path().join(&meta.ulid)).unwrap();
    let mut back = Vec::new();
    for s in block.select(&[], i64::MIN, i64::MAX).unwrap() {
        let s = s.unwrap();
        let v: Vec<(i64, Histogram)> = block
            .samples(&s, i64::MIN, i64::MAX)
            .map(|x| match x.unwrap() {
                (t, SampleValue::Histogram(h)) => (t, *h),
                other => panic!("{other:?}"),
            })
            .collect();
        back.push((s.labels, v));
    }
    let strip = |v: &[(Labels, Vec<(i64, Histogram)>)]| -> Vec<(Labels, Vec<(i64, Histogram)>)> {
        let mut v: Vec<_> = v
            .iter()
            .map(|(l, s)| {
                let s = s
                    .iter()
                    .map(|(t, h)| {
                        let mut h = h.clone();
                        h.counter_reset_hint = Default::default();
                        (*t, h)
                    })
                    .collect();
                (l.clone(), s)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(strip(&back), strip(&ours));
    // promtool-compatible verification of the Prometheus-written block too.
    for b in &blocks {
        let rep = hypnos_tsdb::tools::verify::verify_block(b, &mut |_, _| {}).unwrap();
        assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    }
    drop(prom);
    drop(app);
}
