//! Two replicas written by `hypnos tools generate --replicas 2` into a bucket, served by
//! `hypnos store` and queried through `hypnos query --query.replica-label=replica`,
//! deduplicate into one series set: the replicas' jittered timestamps and gaps disappear.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ChildGuard, free_port, hypnos_bin, wait_http_ok};
use serde_json::Value;

const MAX_S: i64 = 1_627_344_000; // 2021-07-27T00:00:00Z

async fn query(url: &str, q: &str, t: i64, dedup: bool) -> Vec<Value> {
    let resp: Value = reqwest::Client::new()
        .get(format!("{url}/api/v1/query"))
        .query(&[
            ("query", q),
            ("time", &t.to_string()),
            ("dedup", if dedup { "true" } else { "false" }),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["status"], "success", "{q}: {resp}");
    resp["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_replicas_deduplicate_through_store_and_querier() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        dir.path().join("bkt").display()
    );
    let out = Command::new(hypnos_bin())
        .args([
            "tools",
            "generate",
            "--plan=seed",
            "--duration=6h",
            "--targets=1",
            "--churn=0s",
            "--replicas=2",
            "--label=cluster=\"ap-south1\"",
            "--max-time=2021-07-27T00:00:00Z",
        ])
        .arg(format!("--objstore.config={yaml}"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    let (grpc, http) = (free_port(), free_port());
    let mut cmd = Command::new(hypnos_bin());
    cmd.arg("store")
        .arg(format!("--objstore.config={yaml}"))
        .arg(format!("--data-dir={}", dir.path().join("store-data").display()))
        .arg(format!("--grpc-address=127.0.0.1:{grpc}"))
        .arg(format!("--http-address=127.0.0.1:{http}"))
        .arg("--min-time=-1000000h")
        .arg("--consistency-delay=0s");
    let mut store = ChildGuard::spawn("hypnos-store", &mut cmd, dir.path());
    wait_http_ok(
        &format!("http://127.0.0.1:{http}/-/ready"),
        Duration::from_secs(60),
        &mut store,
    );

    let qhttp = free_port();
    let mut cmd = Command::new(hypnos_bin());
    cmd.args([
        "query",
        &format!("--http-address=127.0.0.1:{qhttp}"),
        &format!("--grpc-address=127.0.0.1:{}", free_port()),
        "--query.replica-label=replica",
        &format!("--endpoint=127.0.0.1:{grpc}"),
    ]);
    let mut q = ChildGuard::spawn("hypnos-query", &mut cmd, dir.path());
    let url = format!("http://127.0.0.1:{qhttp}");
    wait_http_ok(&format!("{url}/-/ready"), Duration::from_secs(30), &mut q);

    // The querier may need a moment to learn the store's label sets.
    let t = MAX_S - 3600;
    let mut raw = Vec::new();
    for _ in 0..60 {
        raw = query(&url, "up", t, false).await;
        if raw.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(raw.len(), 2, "both replicas, not deduplicated: {raw:?}");
    let replicas: Vec<&str> = raw.iter().map(|s| s["metric"]["replica"].as_str().unwrap()).collect();
    assert!(replicas.contains(&"0") && replicas.contains(&"1"), "{raw:?}");

    let dedup = query(&url, "up", t, true).await;
    assert_eq!(dedup.len(), 1, "{dedup:?}");
    assert!(dedup[0]["metric"].get("replica").is_none(), "{dedup:?}");
    assert_eq!(dedup[0]["metric"]["cluster"], "ap-south1");

    // Every series of the seed profile collapses to one per label set.
    let all_raw = query(&url, r#"count({job="demo-app"})"#, t, false).await;
    let all_dedup = query(&url, r#"count({job="demo-app"})"#, t, true).await;
    let n = |v: &[Value]| v[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap();
    assert_eq!(n(&all_raw), 2.0 * n(&all_dedup), "{all_raw:?} {all_dedup:?}");
    // Deduplicated scrapes fill each replica's gaps: over 6h a series has one sample per 15s.
    let c = query(&url, "count_over_time(total_http_requests[5h])", t, true).await;
    let got = n(&c);
    assert!((1150.0..=1201.0).contains(&got), "deduplicated samples over 5h: {got}");
    let rate = query(&url, "sum(rate(total_http_requests[5m]))", t, true).await;
    assert!(n(&rate) > 0.0);
}
