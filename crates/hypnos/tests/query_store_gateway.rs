//! End to end over real components: a FILESYSTEM bucket holding two HA replicas' blocks
//! (written by `promtool tsdb create-blocks-from openmetrics`, external labels replica="0" and
//! replica="1", replica "0" with a 30-minute gap, replica "1" scraping 1 s later), served by
//! `hypnos store`, queried through `hypnos query --query.replica-label=replica`. Each series
//! comes back once, without the replica label and without the gap; `dedup=false` returns both
//! replicas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{ChildGuard, free_port, hypnos_bin, require_tool, wait_http_ok};
use serde_json::Value;

const START_S: i64 = 1_700_000_000;
const HOURS: i64 = 3;
/// Replica "0" misses [GAP.0, GAP.1) seconds after START_S; the querier must switch to "1".
const GAP: (i64, i64) = (3_600, 5_400);

fn openmetrics(replica: &str) -> String {
    let mut s = String::new();
    let offset = if replica == "0" { 0 } else { 1 };
    for instance in ["a", "b"] {
        s.push_str("# TYPE requests counter\n");
        for k in 0..HOURS * 240 {
            let rel = k * 15;
            if replica == "0" && (GAP.0..GAP.1).contains(&rel) {
                continue;
            }
            let t = START_S + rel + offset;
            s.push_str(&format!(
                "requests_total{{instance=\"{instance}\",job=\"demo\"}} {} {t}\n",
                rel * 2
            ));
        }
    }
    s.push_str("# EOF\n");
    s
}

fn promtool_blocks(dir: &Path, replica: &str) -> Vec<PathBuf> {
    let om = dir.join(format!("r{replica}.om"));
    std::fs::write(&om, openmetrics(replica)).unwrap();
    let tsdb = dir.join(format!("tsdb-{replica}"));
    let status = Command::new(require_tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(&om)
        .arg(&tsdb)
        .status()
        .unwrap();
    assert!(status.success());
    let mut out: Vec<PathBuf> = std::fs::read_dir(&tsdb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    out.sort();
    out
}

/// Copies a block into the bucket with a `thanos` section naming its external labels.
fn upload(bucket: &Path, block: &Path, replica: &str) {
    let id = block.file_name().unwrap().to_str().unwrap();
    let dst = bucket.join(id);
    std::fs::create_dir_all(dst.join("chunks")).unwrap();
    for e in std::fs::read_dir(block.join("chunks")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join("chunks").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(block.join("index"), dst.join("index")).unwrap();
    let mut meta: Value = serde_json::from_slice(&std::fs::read(block.join("meta.json")).unwrap()).unwrap();
    meta["thanos"] = serde_json::json!({
        "labels": {"cluster": "eu", "replica": replica},
        "downsample": {"resolution": 0},
        "source": "test"
    });
    std::fs::write(dst.join("meta.json"), serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

async fn get(url: &str, params: &[(&str, String)]) -> Value {
    let r = reqwest::Client::new().get(url).query(params).send().await.unwrap();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn querier_over_store_gateway_deduplicates_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    for replica in ["0", "1"] {
        for b in promtool_blocks(tmp.path(), replica) {
            upload(&bucket, &b, replica);
        }
    }
    let (store_grpc, store_http) = (free_port(), free_port());
    let mut store = ChildGuard::spawn(
        "hypnos-store",
        Command::new(hypnos_bin()).args([
            "store",
            &format!(
                "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {}\n",
                bucket.display()
            ),
            &format!("--data-dir={}", tmp.path().join("store-data").display()),
            &format!("--grpc-address=127.0.0.1:{store_grpc}"),
            &format!("--http-address=127.0.0.1:{store_http}"),
            "--min-time=-1000000h",
            "--consistency-delay=0s",
        ]),
        tmp.path(),
    );
    tokio::task::block_in_place(|| {
        wait_http_ok(
            &format!("http://127.0.0.1:{store_http}/-/ready"),
            Duration::from_secs(60),
            &mut store,
        )
    });
    let http = free_port();
    let mut query = ChildGuard::spawn(
        "hypnos-query",
        Command::new(hypnos_bin()).args([
            "query",
            &format!("--http-address=127.0.0.1:{http}"),
            &format!("--grpc-address=127.0.0.1:{}", free_port()),
            &format!("--endpoint=127.0.0.1:{store_grpc}"),
            "--query.replica-label=replica",
        ]),
        tmp.path(),
    );
    let url = format!("http://127.0.0.1:{http}");
    tokio::task::block_in_place(|| wait_http_ok(&format!("{url}/-/ready"), Duration::from_secs(30), &mut query));

    // Across replica 0's gap: one series per instance, no replica label, a value every step.
    let (start, end) = (START_S + GAP.0 - 600, START_S + GAP.1 + 600);
    let v = get(
        &format!("{url}/api/v1/query_range"),
        &[
            ("query", "requests_total".into()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", "30".into()),
        ],
    )
    .await;
    assert_eq!(v["status"], "success", "{v}");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{v}");
    for s in result {
        assert!(s["metric"].get("replica").is_none(), "{s}");
        assert_eq!(s["metric"]["cluster"], "eu");
        let values = s["values"].as_array().unwrap();
        assert_eq!(values.len() as i64, (end - start) / 30 + 1, "a gap in {s}");
    }
    // The counter never goes down across replica switches.
    let v = get(
        &format!("{url}/api/v1/query"),
        &[
            ("query", "resets(requests_total[3h])".into()),
            ("time", (START_S + HOURS * 3600 - 10).to_string()),
        ],
    )
    .await;
    for s in v["data"]["result"].as_array().unwrap() {
        assert_eq!(s["value"][1], "0", "{v}");
    }

    // dedup=false: both replicas, with their label.
    let v = get(
        &format!("{url}/api/v1/query"),
        &[
            ("query", "requests_total".into()),
            ("time", (START_S + 600).to_string()),
            ("dedup", "false".into()),
        ],
    )
    .await;
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 4, "{v}");
    let replicas: Vec<&str> = result
        .iter()
        .map(|s| s["metric"]["replica"].as_str().unwrap())
        .collect();
    assert_eq!(replicas, vec!["0", "1", "0", "1"], "{v}");

    let v = get(&format!("{url}/api/v1/stores"), &[]).await;
    assert_eq!(v["data"]["store"].as_array().map(Vec::len), Some(1), "{v}");
}
