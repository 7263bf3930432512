//! The long-term path with blocks Prometheus cut itself: a real Prometheus 2.42 with 10 s
//! blocks (`--storage.tsdb.min-block-duration` = max) scrapes `hypnos demo-app` (floats and
//! native histograms); its `hypnos sidecar` ships the blocks to a FILESYSTEM bucket, or to S3
//! (moto_server on 127.0.0.1, which must be installed: `pip install 'moto[server]'`); `hypnos
//! store` serves the bucket; `hypnos query` sits over the store gateway and the sidecar. What
//! Prometheus answers over the shipped range is recorded; then Prometheus and its sidecar are
//! stopped and Prometheus's data directory deleted, and the querier (now through the store
//! gateway alone) must give the same answers, value for value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    ChildGuard, eventually, free_port, get_json, hypnos_bin, prometheus_config, require_tool, secs, start_component,
    start_demo_app, start_prometheus_at, start_querier, terminate, wait_http_ok,
};
use serde_json::Value;

const EXTERNAL: [(&str, &str); 2] = [("cluster", "longterm"), ("replica", "0")];

/// Where the sidecar ships to: a FILESYSTEM directory or an S3 bucket on moto_server.
enum Bucket {
    Filesystem(PathBuf),
    S3 { port: u16, _moto: ChildGuard },
}

impl Bucket {
    fn objstore(&self) -> String {
        match self {
            Bucket::Filesystem(dir) => format!("type: FILESYSTEM\nconfig:\n  directory: {}\n", dir.display()),
            Bucket::S3 { port, .. } => format!(
                "type: S3\nconfig:\n  bucket: longterm\n  endpoint: 127.0.0.1:{port}\n  insecure: true\n  \
                 access_key: testing\n  secret_key: testing\n  region: us-east-1\n"
            ),
        }
    }
}

/// moto_server on a free port with an empty bucket `longterm`.
async fn start_moto(dir: &Path) -> Bucket {
    let port = free_port();
    let mut cmd = Command::new(require_tool("moto_server"));
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let mut guard = ChildGuard::spawn("moto", &mut cmd, dir);
    tokio::task::block_in_place(|| {
        wait_http_ok(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_secs(30),
            &mut guard,
        )
    });
    let r = reqwest::Client::new()
        .put(format!("http://127.0.0.1:{port}/longterm"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    Bucket::S3 { port, _moto: guard }
}

/// meta.json of every complete block in the bucket, by min time, as `hypnos tools bucket ls
/// -o json` lists them (one JSON object a line).
fn bucket_metas(objstore: &str) -> Vec<Value> {
    let out = Command::new(hypnos_bin())
        .args(["tools", "bucket", "ls", "-o", "json"])
        .arg(format!("--objstore.config={objstore}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut metas: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    metas.sort_by_key(|m| m["minTime"].as_i64().unwrap());
    metas
}

/// The result with the external labels removed and the series sorted by their labels, so
/// that the querier's answer and Prometheus's are comparable as JSON.
fn normalized(result: &[Value]) -> BTreeMap<String, Value> {
    result
        .iter()
        .map(|s| {
            let mut s = s.clone();
            let metric = s["metric"].as_object_mut().unwrap();
            for (k, _) in EXTERNAL {
                metric.remove(k);
            }
            (s["metric"].to_string(), s)
        })
        .collect()
}

async fn answer(url: &str, path: &str, params: &[(&str, String)]) -> (BTreeMap<String, Value>, Value) {
    let (code, v) = get_json(&format!("{url}{path}"), params).await;
    assert_eq!(code, 200, "{url}{path} {params:?}: {v}");
    assert_eq!(v["status"], "success", "{v}");
    (normalized(v["data"]["result"].as_array().unwrap()), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_prometheus_blocks_answer_after_prometheus_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::Filesystem(dir.path().join("bucket"));
    longterm_path(dir.path(), bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_prometheus_blocks_answer_from_s3_after_prometheus_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = start_moto(dir.path()).await;
    longterm_path(dir.path(), bucket).await;
}

async fn longterm_path(dir: &Path, bucket: Bucket) {
    let (_app, app) = tokio::task::block_in_place(|| start_demo_app(dir, &["--self-load=10"]));
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.join("prometheus.yml"),
        prometheus_config("1s", &EXTERNAL, &[("demo-app", app.trim_start_matches("http://"))]),
    )
    .unwrap();
    let mut prometheus = tokio::task::block_in_place(|| {
        start_prometheus_at(
            dir,
            port,
            "prometheus",
            &[
                "--enable-feature=native-histograms",
                "--storage.tsdb.min-block-duration=10s",
                "--storage.tsdb.max-block-duration=10s",
            ],
        )
    });
    let data = dir.join("prom-data");
    let objstore = bucket.objstore();
    let (mut sidecar, store) = tokio::task::block_in_place(|| {
        let sidecar = start_component(
            "sidecar",
            dir,
            "sidecar",
            &[
                format!("--prometheus.url={prom}"),
                format!("--tsdb.path={}", data.display()),
                format!("--objstore.config={objstore}"),
                "--shipper.sync-interval=300ms".into(),
                "--prometheus.get_config_interval=1s".into(),
            ],
            Duration::from_secs(30),
        );
        let store = start_component(
            "store",
            dir,
            "store",
            &[
                format!("--objstore.config={objstore}"),
                format!("--data-dir={}", dir.join("store-data").display()),
                "--sync-block-duration=1s".into(),
            ],
            Duration::from_secs(60),
        );
        (sidecar, store)
    });
    let querier = tokio::task::block_in_place(|| start_querier("query", dir, &[&store.grpc, &sidecar.grpc], &[]));

    // Prometheus cuts a block every 10 s (once its head spans 15 s); wait for two shipped.
    let shipped = eventually("two blocks shipped", Duration::from_secs(60), || async {
        let m = tokio::task::block_in_place(|| bucket_metas(&objstore));
        if m.len() >= 2 {
            Ok(m)
        } else {
            Err(format!("{} blocks", m.len()))
        }
    })
    .await;
    for m in &shipped {
        let ulid = m["ulid"].as_str().unwrap();
        assert!(
            data.join(ulid).join("meta.json").is_file(),
            "{ulid} is a block of Prometheus's own data directory"
        );
        assert_eq!(m["compaction"]["level"], 1, "{m}");
        assert_eq!(m["thanos"]["source"], "sidecar", "{m}");
        assert_eq!(
            m["thanos"]["labels"],
            serde_json::json!({"cluster": "longterm", "replica": "0"}),
            "{m}"
        );
        assert_eq!(m["maxTime"].as_i64().unwrap() % 10_000, 0, "10 s aligned: {m}");
    }
    let lo = shipped[0]["minTime"].as_i64().unwrap();
    let hi = shipped.last().unwrap()["maxTime"].as_i64().unwrap(); // exclusive
    let t = hi - 1;

    // What Prometheus answers over [lo, hi). Prometheus 2.42 range selectors are closed at
    // the start, Prometheus 3's (the querier's) open: the windows start before `lo`, where
    // there is no data, or half a scrape off the sample times, so the two agree.
    let raw_window = format!("{}ms", t - lo + 1000);
    let raw = |sel: &str| vec![("query", format!("{sel}[{raw_window}]")), ("time", secs(t))];
    let (up, _) = answer(&prom, "/api/v1/query", &raw("up{job=\"demo-app\"}")).await;
    let first = up.values().next().unwrap()["values"][0][0].as_f64().unwrap();
    let first_sample_ms = (first * 1000.0).round() as i64;
    let offset = first_sample_ms + 500;
    let range = |q: &str, start: i64| {
        vec![
            ("query", q.to_string()),
            ("start", secs(start)),
            ("end", secs(t)),
            ("step", "1".to_string()),
        ]
    };
    let queries: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("/api/v1/query", raw("{job=\"demo-app\"}")),
        ("/api/v1/query", raw("request_duration_seconds_native")),
        (
            "/api/v1/query",
            vec![("query", "instances_active_session".into()), ("time", secs(t))],
        ),
        (
            "/api/v1/query_range",
            range("rate(total_http_requests[5s])", offset + 5_000),
        ),
        (
            "/api/v1/query_range",
            range(
                "sum by (code) (histogram_count(rate(request_duration_seconds_native[5s])))",
                offset + 5_000,
            ),
        ),
        ("/api/v1/query_range", range("instances_active_session", lo)),
    ];
    let mut recorded = Vec::new();
    for (path, params) in &queries {
        let (want, v) = answer(&prom, path, params).await;
        assert!(!want.is_empty(), "Prometheus has data for {params:?}: {v}");
        recorded.push(want);
    }
    assert!(
        recorded[1]
            .values()
            .all(|s| s["histograms"].as_array().is_some_and(|h| !h.is_empty())),
        "native histograms in the shipped range: {:?}",
        recorded[1]
    );
    let samples: usize = recorded[0]
        .values()
        .map(|s| s["values"].as_array().map_or(0, Vec::len) + s["histograms"].as_array().map_or(0, Vec::len))
        .sum();
    eprintln!(
        "{} shipped blocks over [{lo}, {hi}): {} series, {samples} samples",
        shipped.len(),
        recorded[0].len()
    );

    // Prometheus and its sidecar go; so does Prometheus's data.
    terminate(&mut prometheus);
    terminate(&mut sidecar.guard);
    std::fs::remove_dir_all(&data).unwrap();
    assert!(!data.exists());

    // The querier answers the same from the bucket (once the store gateway has synced every
    // shipped block), with at most a warning about the stopped sidecar.
    for ((path, params), want) in queries.iter().zip(&recorded) {
        eventually(
            &format!("the querier answers {params:?} as Prometheus did"),
            Duration::from_secs(30),
            || async {
                let (got, v) = answer(&querier.http, path, params).await;
                if let Some(ws) = v["warnings"].as_array() {
                    assert!(
                        ws.iter().all(|w| w.as_str().unwrap().contains(&sidecar.grpc)),
                        "unexpected warning: {v}"
                    );
                }
                if &got == want {
                    Ok(())
                } else {
                    Err(format!(
                        "querier:\n{}\nPrometheus:\n{}",
                        serde_json::to_string(&got).unwrap(),
                        serde_json::to_string(want).unwrap()
                    ))
                }
            },
        )
        .await;
    }
    drop(store);
}
