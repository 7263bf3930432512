//! `hypnos demo-app` scraped by a real Prometheus 2.42 with native histograms on: what we
//! post shows up in Prometheus's query API, and the native histograms arrive as native.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ChildGuard, Prometheus, free_port, hypnos_bin, wait_http_ok};

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_demo_app_with_native_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let app_port = free_port();
    let mut app = ChildGuard::spawn(
        "demo-app",
        Command::new(hypnos_bin()).args([
            "demo-app",
            &format!("--listen-address=127.0.0.1:{app_port}"),
            "--min-delay=1ms",
            "--max-delay=20ms",
            "--populate-interval=1h",
        ]),
        dir.path(),
    );
    let app_url = format!("http://127.0.0.1:{app_port}");
    wait_http_ok(&format!("{app_url}/-/healthy"), Duration::from_secs(20), &mut app);

    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: demo-app\n    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
    );
    let prom = Prometheus::start(dir.path(), &config, &["--enable-feature=native-histograms"]);

    let client = reqwest::Client::new();
    for (i, body) in [r#"{"prod": 69420}"#, r#"{"qa": 7}"#]
        .iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        let path = if i % 2 == 0 { "/" } else { "/throw-random-response" };
        let r = client
            .post(format!("{app_url}{path}"))
            .body(*body)
            .send()
            .await
            .unwrap();
        assert!([200, 400, 502, 504].contains(&r.status().as_u16()));
    }

    eventually("gauge holds the posted values", || async {
        let r = prom.query("instances_active_session").await;
        let get = |name: &str| {
            r.iter()
                .find(|s| s["metric"]["instance_name"] == name)
                .map(|s| s["value"][1].as_str().unwrap_or("").to_string())
        };
        match (get("prod"), get("qa"), get("production")) {
            (Some(p), Some(q), Some(prod)) if p == "69420" && q == "7" && prod == "15" => Ok(()),
            other => Err(format!("{other:?} in {r:?}")),
        }
    })
    .await;

    eventually("total_http_requests counted every request", || async {
        let r = prom.query("total_http_requests").await;
        match r.first().map(|s| s["value"][1].clone()) {
            Some(v) if v == "40" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    eventually("classic histogram and error counter moved", || async {
        let buckets = prom.query(r#"sum(request_duration_seconds_bucket{le="+Inf"})"#).await;
        let errors = prom.query("sum(request_error_counts)").await;
        let count = buckets
            .first()
            .and_then(|s| s["value"][1].as_str())
            .unwrap_or("0")
            .to_string();
        let errs: f64 = errors
            .first()
            .and_then(|s| s["value"][1].as_str())
            .unwrap_or("0")
            .parse()
            .unwrap();
        let le_buckets = prom.query("count(request_duration_seconds_bucket)").await;
        let n_series: f64 = le_buckets
            .first()
            .and_then(|s| s["value"][1].as_str())
            .unwrap_or("0")
            .parse()
            .unwrap();
        if count == "40" && errs > 0.0 && n_series >= 12.0 {
            Ok(())
        } else {
            Err(format!("+Inf count {count}, errors {errs}, bucket series {n_series}"))
        }
    })
    .await;

    for name in ["request_duration_seconds_native", "request_duration_seconds_native2"] {
        eventually(&format!("{name} is a native histogram"), || async {
            let r = prom.query(name).await;
            if r.is_empty() {
                return Err("no series".into());
            }
            for s in &r {
                let h = &s["histogram"];
                if h.is_null() {
                    return Err(format!("not a native histogram: {s}"));
                }
                if h[1]["buckets"].as_array().is_none_or(|b| b.is_empty()) {
                    return Err(format!("no buckets: {s}"));
                }
                assert!(s["metric"]["method"] == "POST", "{s}");
            }
            let total: f64 = r
                .iter()
                .map(|s| s["histogram"][1]["count"].as_str().unwrap().parse::<f64>().unwrap())
                .sum();
            if total == 40.0 {
                Ok(())
            } else {
                Err(format!("count {total}"))
            }
        })
        .await;
    }
    // The classic series of a native-only histogram must not exist: Prometheus 2.42 ingests a
    // native histogram only as native.
    assert!(prom.query("request_duration_seconds_native_count").await.is_empty());
    drop(prom);
    drop(app);
}
