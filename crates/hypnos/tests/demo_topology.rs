//! `hypnos demo` as a user runs it: the topology comes up, the printed querier answers
//! `instances_active_session` once per series without the replica label, and SIGTERM stops
//! every process it started.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ChildGuard, hypnos_bin, require_tool};

/// An offset that moves every port of the seed's layout onto free ports.
fn free_offset() -> u16 {
    let seed_ports = [
        8080u16, 9090, 9091, 9092, 19090, 19091, 19092, 19094, 19190, 19191, 19192, 19194, 29090, 29190,
    ];
    for offset in (21000..50000).step_by(997) {
        if seed_ports
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p + offset)).is_ok())
        {
            return offset;
        }
    }
    panic!("no free port offset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_brings_up_the_topology_and_stops_it() {
    require_tool("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let offset = free_offset();
    let mut demo = ChildGuard::spawn(
        "demo",
        Command::new(hypnos_bin()).current_dir(dir.path()).args([
            "demo",
            &format!("--port-offset={offset}"),
            "--scrape-interval=1s",
            "--self-load=20",
        ]),
        dir.path(),
    );
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
    // Every Prometheus the demo started is gone: its port is free again.
    for p in [9090, 9091, 9092] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", p + offset)).is_ok(),
            "port {} still taken",
            p + offset
        );
    }
}
