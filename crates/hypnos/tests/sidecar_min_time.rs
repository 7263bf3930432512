//! `hypnos sidecar --min-time` in front of a real Prometheus 2.42: like Thanos, the sidecar
//! advertises the later of `--min-time` and Prometheus's lowest timestamp in Info, and never
//! asks Prometheus for data before it, so a Series call entirely before `--min-time` is empty
//! even though Prometheus holds samples there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{eventually, free_port, get_json, now_ms, prometheus_config, secs, start_component, start_prometheus_at};
use hypnos_storepb::client::GrpcStore;
use hypnos_storepb::thanos::{LabelMatcher, SeriesRequest, label_matcher, series_response};

async fn series_count(store: &GrpcStore, min_time: i64, max_time: i64) -> usize {
    let req = SeriesRequest {
        min_time,
        max_time,
        matchers: vec![LabelMatcher {
            r#type: label_matcher::Type::Eq as i32,
            name: "__name__".into(),
            value: "up".into(),
        }],
        ..Default::default()
    };
    let mut stream = store.store_client().series(req).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(frame) = stream.message().await.unwrap() {
        match frame.result {
            Some(series_response::Result::Series(_)) => n += 1,
            Some(series_response::Result::Batch(b)) => n += b.series.len(),
            _ => {}
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_serves_nothing_before_min_time() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        prometheus_config(
            "1s",
            &[("cluster", "mintime"), ("replica", "0")],
            &[("prometheus", &format!("127.0.0.1:{port}"))],
        ),
    )
    .unwrap();
    let _prometheus = tokio::task::block_in_place(|| start_prometheus_at(dir.path(), port, "prometheus", &[]));
    // Six seconds of samples, then a sidecar that serves only the last three.
    let first = eventually("six scrapes", Duration::from_secs(30), || async {
        let (_, v) = get_json(
            &format!("{prom}/api/v1/query"),
            &[("query", "up[1m]".into()), ("time", secs(now_ms()))],
        )
        .await;
        let values = v["data"]["result"][0]["values"].as_array().cloned().unwrap_or_default();
        if values.len() >= 6 {
            Ok((values[0][0].as_f64().unwrap() * 1000.0).round() as i64)
        } else {
            Err(format!("{} samples", values.len()))
        }
    })
    .await;
    let started = now_ms();
    let sidecar = tokio::task::block_in_place(|| {
        start_component(
            "sidecar",
            dir.path(),
            "sidecar",
            &[
                format!("--prometheus.url={prom}"),
                format!("--tsdb.path={}", dir.path().join("prom-data").display()),
                "--min-time=-3s".into(),
            ],
            Duration::from_secs(30),
        )
    });
    let store = GrpcStore::connect(&sidecar.grpc).await.unwrap();
    let info = store
        .info_client()
        .info(hypnos_storepb::info::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let min_time = info.store.unwrap().min_time;
    assert!(
        min_time >= started - 3_000 && min_time <= now_ms() - 3_000,
        "Info's min time {min_time} is --min-time (sidecar started at {started})"
    );
    assert!(min_time > first + 1_000, "Prometheus holds data before --min-time");

    // Entirely before --min-time: nothing. Across it and after it: the series.
    assert_eq!(series_count(&store, first - 1_000, min_time - 1_000).await, 0);
    assert_eq!(series_count(&store, first - 1_000, now_ms()).await, 1);
    assert_eq!(series_count(&store, min_time, now_ms()).await, 1);
}
