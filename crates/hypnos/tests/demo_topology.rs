//! `hypnos demo` as a user runs it: the topology comes up, the printed Prometheus answers
//! `instances_active_session`, and SIGTERM stops every process it started.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ChildGuard, hypnos_bin, require_tool};

/// An offset that moves every port of the seed's layout onto free ports.
fn free_offset() -> u16 {
    let seed_ports = [8080u16, 9090, 9091, 9092, 19090, 19091, 19092, 19094, 29090];
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
    let prom = format!("http://127.0.0.1:{}", 9090 + offset);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let body: Option<serde_json::Value> = match client
            .get(format!("{prom}/api/v1/query"))
            .query(&[("query", "instances_active_session")])
            .send()
            .await
        {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        let n = body
            .as_ref()
            .and_then(|b| b["data"]["result"].as_array().map(|a| a.len()))
            .unwrap_or(0);
        if n >= 3 {
            break;
        }
        if let Ok(Some(status)) = demo.child.try_wait() {
            panic!("demo exited with {status}:\n{}", demo.log_tail());
        }
        assert!(Instant::now() < deadline, "no data in time:\n{}", demo.log_tail());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let printed = std::fs::read_to_string(&demo.log).unwrap();
    assert!(printed.contains(&prom), "URL table lists {prom}:\n{printed}");
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
