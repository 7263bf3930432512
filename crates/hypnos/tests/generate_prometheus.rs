//! `hypnos tools generate` against the real tools: its blocks pass `hypnos tools block
//! verify` and `promtool tsdb analyze`, and Prometheus 2.42 loads and queries them (old
//! 176h blocks included). Fails (never skips) when promtool or prometheus is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Prometheus, hypnos_bin, require_tool};
use serde_json::Value;

/// 2021-07-27T00:00:00Z, the tutorial's max time.
const MAX_MS: i64 = 1_627_344_000_000;
const HOUR_MS: i64 = 3_600_000;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn block_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 26 && Path::new(dir).join(n).join("meta.json").is_file())
        .collect();
    ids.sort();
    ids
}

/// Generates into `data`, then checks with our verifier and promtool's analyzer.
fn generate_and_check(data: &Path, args: &[&str]) -> String {
    let out = run(Command::new(hypnos_bin())
        .args(["tools", "generate", "--max-time=2021-07-27T00:00:00Z"])
        .arg(format!("--output-dir={}", data.display()))
        .args(args));
    assert!(out.contains("samples/s"), "{out}");
    let verify = run(Command::new(hypnos_bin()).args(["tools", "block", "verify"]).arg(data));
    assert!(!verify.contains("problem"), "{verify}");
    let promtool = require_tool("promtool");
    for id in block_ids(data) {
        let analyze = run(Command::new(&promtool).args(["tsdb", "analyze"]).arg(data).arg(&id));
        assert!(analyze.contains(&format!("Block ID: {id}")), "{analyze}");
        assert!(analyze.contains("Label names:"), "{analyze}");
    }
    out
}

async fn query_at(p: &Prometheus, q: &str, t_ms: i64) -> Vec<Value> {
    let t = format!("{}.{:03}", t_ms / 1000, t_ms % 1000);
    let resp: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/query", p.url))
        .query(&[("query", q), ("time", &t)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["status"], "success", "query {q}: {resp}");
    resp["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn scalar(v: &[Value]) -> f64 {
    assert_eq!(v.len(), 1, "want one series: {v:?}");
    v[0]["value"][1].as_str().unwrap().parse().unwrap()
}

const PROM_ARGS: [&str; 2] = [
    "--storage.tsdb.retention.time=3650d",
    "--enable-feature=native-histograms",
];
const PROM_CONFIG: &str = "global:\n  scrape_interval: 15s\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_30d_tiny_loads_in_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prom-data");
    let out = generate_and_check(&data, &["--plan=continuous-30d-tiny"]);
    assert!(out.contains("5 series, 864000 samples, 9 blocks"), "{out}");
    assert_eq!(block_ids(&data).len(), 9);
    let p = tokio::task::block_in_place(|| Prometheus::start(dir.path(), PROM_CONFIG, &PROM_ARGS));
    // Newest block, and 29 days back inside a 176h block: one hour holds 240 scrapes.
    for t in [MAX_MS - HOUR_MS + 7_000, MAX_MS - 29 * 24 * HOUR_MS + 7_000] {
        let v = query_at(&p, r#"count({__name__=~"continuous_app_metric.+"})"#, t).await;
        assert_eq!(scalar(&v), 5.0, "at {t}");
        let v = query_at(&p, "count_over_time(continuous_app_metric3[1h])", t).await;
        assert_eq!(scalar(&v), 240.0, "at {t}");
        let v = query_at(&p, "max(continuous_app_metric0)", t).await;
        assert!((1e7 - 1.5e7..=2e8 + 1.5e7).contains(&scalar(&v)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_plan_loads_in_prometheus_with_consistent_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prom-data");
    generate_and_check(
        &data,
        &["--plan=seed", "--duration=1d", "--targets=2", "--churn=8h", "--seed=3"],
    );
    let p = tokio::task::block_in_place(|| Prometheus::start(dir.path(), PROM_CONFIG, &PROM_ARGS));
    let t = MAX_MS - HOUR_MS + 7_000;
    // Two live targets at any time (replaced instances went stale).
    assert_eq!(scalar(&query_at(&p, "count(up)", t).await), 2.0);
    assert!(query_at(&p, "count(count_over_time(up[1d]))", t).await.len() == 1);
    let instances = scalar(&query_at(&p, "count(count_over_time(up[1d]))", t).await);
    assert!(
        instances > 2.0,
        "churn should have replaced instances over a day: {instances}"
    );
    assert!(scalar(&query_at(&p, "sum(rate(total_http_requests[5m]))", t).await) > 0.0);
    assert_eq!(scalar(&query_at(&p, "count(instances_active_session)", t).await), 6.0);
    let q = "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[10m])))";
    let median = scalar(&query_at(&p, q, t).await);
    assert!((0.05..2.5).contains(&median), "classic median {median}");
    let q = "histogram_quantile(0.5, sum(rate(request_duration_seconds_native[10m])))";
    let native_median = scalar(&query_at(&p, q, t).await);
    assert!((0.05..4.0).contains(&native_median), "native median {native_median}");
    // Native histograms split the same requests by method: their counts add up to the classic _count.
    let classic = scalar(&query_at(&p, "sum(rate(request_duration_seconds_count[10m]))", t).await);
    let native = scalar(
        &query_at(
            &p,
            "histogram_count(sum(rate(request_duration_seconds_native2[10m])))",
            t,
        )
        .await,
    );
    assert!(
        classic > 0.0 && (classic - native).abs() < 1e-6 * classic,
        "{classic} vs {native}"
    );
    let errors = scalar(&query_at(&p, "sum(rate(request_error_counts[10m]))", t).await);
    let non_200 = scalar(
        &query_at(
            &p,
            r#"sum(rate(request_duration_seconds_count{status_code!="200"}[10m]))"#,
            t,
        )
        .await,
    );
    assert!(
        (errors - non_200).abs() < 1e-6 * errors.max(1.0),
        "{errors} vs {non_200}"
    );
}
