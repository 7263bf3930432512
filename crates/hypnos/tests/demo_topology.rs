//! `hypnos demo` as a user runs it: the topology comes up, the printed querier answers
//! `instances_active_session` once per series without the replica label, and SIGTERM stops
//! every process it started.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ChildGuard, hypnos_bin, require_tool};

/// An offset that moves every port of the seed's layout onto free ports.
/// `first` differs per test: nextest runs them at the same time.
fn free_offset(first: u16) -> u16 {
    let seed_ports = [
        8080u16, 9090, 9091, 9092, 19090, 19091, 19092, 19094, 19190, 19191, 19192, 19194, 29090, 29190,
    ];
    for offset in (first..50000).step_by(997) {
        if seed_ports
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p + offset)).is_ok())
        {
            return offset;
        }
    }
    panic!("no free port offset");
}

fn spawn_demo(dir: &std::path::Path, offset: u16, extra: &[&str]) -> ChildGuard {
    let mut args = vec![
        "demo".to_string(),
        format!("--port-offset={offset}"),
        "--scrape-interval=1s".into(),
        "--self-load=20".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    ChildGuard::spawn("demo", Command::new(hypnos_bin()).current_dir(dir).args(&args), dir)
}

/// SIGTERM, then every Prometheus the demo started must be gone (its port free again).
fn stop_demo(demo: &mut ChildGuard, offset: u16) {
    let pid = nix::unistd::Pid::from_raw(demo.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            assert!(status.success(), "demo exit status {status}:\n{}", demo.log_tail());
            break;
        }
        assert!(Instant::now() < deadline, "demo did not stop:\n{}", demo.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    for p in [9090, 9091, 9092] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", p + offset)).is_ok(),
            "port {} still taken",
            p + offset
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_brings_up_the_topology_and_stops_it() {
    require_tool("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let offset = free_offset(21000);
    let mut demo = spawn_demo(dir.path(), offset, &[]);
    let querier = format!("http://127.0.0.1:{}", 29090 + offset);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let body: Option<serde_json::Value> = match client
            .get(format!("{querier}/api/v1/query"))
            .query(&[("query", "instances_active_session")])
            .send()
            .await
        {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        let result = body
            .as_ref()
            .and_then(|b| b["data"]["result"].as_array().cloned())
            .unwrap_or_default();
        if result.len() >= 3 {
            // The HA pair's two replicas were deduplicated: one series per instance name.
            let mut names: Vec<String> = result
                .iter()
                .map(|s| {
                    assert!(s["metric"].get("replica").is_none(), "replica label left in {s}");
                    assert_eq!(s["metric"]["cluster"], "ap-south1", "{s}");
                    s["metric"]["instance_name"].as_str().unwrap_or("").to_string()
                })
                .collect();
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n, "a series came back twice: {result:?}");
            break;
        }
        if let Ok(Some(status)) = demo.child.try_wait() {
            panic!("demo exited with {status}:\n{}", demo.log_tail());
        }
        assert!(Instant::now() < deadline, "no data in time:\n{}", demo.log_tail());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let printed = std::fs::read_to_string(&demo.log).unwrap();
    assert!(printed.contains(&querier), "URL table lists {querier}:\n{printed}");
    for f in [
        "prometheus-0-apsouth1.yml",
        "prometheus-1-apsouth1.yml",
        "prometheus-0-apsouth2.yml",
    ] {
        let cfg = std::fs::read_to_string(dir.path().join(".hypnos-demo/config").join(f)).unwrap();
        assert!(cfg.contains("cluster: \"ap-south"), "{cfg}");
    }

    stop_demo(&mut demo, offset);
}

/// Instant query through the querier; `None` while it is not answering yet.
async fn query_at(client: &reqwest::Client, querier: &str, q: &str, t: f64) -> Option<Vec<serde_json::Value>> {
    let body: serde_json::Value = client
        .get(format!("{querier}/api/v1/query"))
        .query(&[("query", q), ("time", &format!("{t:.3}"))])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["data"]["result"].as_array().cloned()
}

/// `--with-history`: the last week lands in the HA pair's data directories (served by the
/// sidecars), anything older in the bucket (served by the store gateway); either way the
/// querier answers for days back, once per series, without the replica label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_history_answers_for_days_back() {
    require_tool("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let offset = free_offset(21500);
    let mut demo = spawn_demo(dir.path(), offset, &["--with-history=7d12h"]);
    let querier = format!("http://127.0.0.1:{}", 29090 + offset);
    let client = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Three days back: the HA pair's generated blocks, through the sidecars. Seven days
    // and six hours back: the bucket's, through the store gateway.
    for (what, t) in [("local", now - 3.0 * 86400.0), ("bucket", now - 7.25 * 86400.0)] {
        let deadline = Instant::now() + Duration::from_secs(240);
        let result = loop {
            let r = query_at(&client, &querier, r#"instances_active_session{cluster="ap-south1"}"#, t)
                .await
                .unwrap_or_default();
            if !r.is_empty() {
                break r;
            }
            if let Ok(Some(status)) = demo.child.try_wait() {
                panic!("demo exited with {status}:\n{}", demo.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "no {what} history in time:\n{}",
                demo.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let mut seen = std::collections::BTreeSet::new();
        for s in &result {
            assert!(s["metric"].get("replica").is_none(), "replica label left in {s}");
            assert_eq!(s["metric"]["cluster"], "ap-south1", "{s}");
            assert!(
                seen.insert(s["metric"].to_string()),
                "{what}: a series came back twice: {result:?}"
            );
        }
    }
    let printed = std::fs::read_to_string(&demo.log).unwrap();
    assert!(printed.contains("Backfilling"), "{printed}");
    stop_demo(&mut demo, offset);

    // A second start finds the blocks and does not write them again.
    let mut again = spawn_demo(dir.path(), offset, &["--with-history=7d12h"]);
    wait_for_querier(&client, &querier, &mut again).await;
    let printed = std::fs::read_to_string(&again.log).unwrap();
    assert!(printed.contains("already holds blocks"), "{printed}");
    stop_demo(&mut again, offset);
}

async fn wait_for_querier(client: &reqwest::Client, querier: &str, demo: &mut ChildGuard) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = client.get(format!("{querier}/-/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        if let Ok(Some(status)) = demo.child.try_wait() {
            panic!("demo exited with {status}:\n{}", demo.log_tail());
        }
        assert!(Instant::now() < deadline, "querier not ready:\n{}", demo.log_tail());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
