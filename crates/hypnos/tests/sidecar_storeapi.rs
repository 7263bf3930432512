//! `hypnos sidecar` in front of a real Prometheus 2.42 scraping `hypnos demo-app`: the StoreAPI
//! (Info, Series, LabelNames, LabelValues) over gRPC returns what Prometheus's HTTP API holds,
//! with the external labels appended, native histograms included; the reloader reloads
//! Prometheus on a configuration change; and the sidecar keeps answering while Prometheus
//! restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{ChildGuard, free_port, hypnos_bin, require_tool, wait_http_ok};
use hypnos_model::{Labels, SampleValue};
use hypnos_storepb::client::GrpcStore;
use hypnos_storepb::thanos::{LabelMatcher, LabelNamesRequest, LabelValuesRequest, Series, SeriesRequest};
use hypnos_storepb::thanos::{label_matcher, series_response};

const EXTERNAL: [(&str, &str); 2] = [("cluster", "test"), ("replica", "r0")];

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: label_matcher::Type::Eq as i32,
        name: name.into(),
        value: value.into(),
    }
}

fn re(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: label_matcher::Type::Re as i32,
        name: name.into(),
        value: value.into(),
    }
}

async fn series(store: &GrpcStore, req: SeriesRequest) -> Result<Vec<Series>, tonic::Status> {
    let mut stream = store.store_client().series(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(frame) = stream.message().await? {
        match frame.result {
            Some(series_response::Result::Series(s)) => out.push(s),
            Some(series_response::Result::Batch(b)) => out.extend(b.series),
            Some(series_response::Result::Warning(w)) => panic!("warning: {w}"),
            _ => {}
        }
    }
    Ok(out)
}

fn labels_of(s: &Series) -> Labels {
    Labels::from_pairs(s.labels.iter().map(|l| (l.name.clone(), l.value.clone())))
}

/// Prometheus's JSON metric object plus the external labels.
fn prom_labels(metric: &serde_json::Value) -> Labels {
    let mut pairs: Vec<(String, String)> = metric
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    pairs.extend(EXTERNAL.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Labels::from_pairs(pairs)
}

/// Decoded samples of a series' chunks within `[mint, maxt]`.
fn samples(s: &Series, mint: i64, maxt: i64) -> Vec<(i64, SampleValue)> {
    let mut out = Vec::new();
    for c in &s.chunks {
        let raw = c.raw.as_ref().expect("raw chunk");
        let enc = hypnos_tsdb::Encoding::from_byte(raw.r#type as u8 + 1).expect("known encoding");
        for (t, v) in hypnos_tsdb::chunkenc::decode_all(enc, &raw.data).unwrap() {
            if (mint..=maxt).contains(&t) {
                out.push((t, v));
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

async fn prom_get(url: &str, path: &str, query: &[(&str, String)]) -> serde_json::Value {
    let resp: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .query(query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["status"], "success", "{path}: {resp}");
    resp["data"].clone()
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// A Prometheus on a given port and data directory, so that it can be restarted in place.
fn start_prometheus_at(dir: &Path, port: u16, name: &str) -> ChildGuard {
    let mut cmd = Command::new(require_tool("prometheus"));
    cmd.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(["--enable-feature=native-histograms", "--web.enable-lifecycle"]);
    let mut guard = ChildGuard::spawn(name, &mut cmd, dir);
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/-/ready"),
        Duration::from_secs(30),
        &mut guard,
    );
    guard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_serves_prometheus_over_storeapi() {
    let dir = tempfile::tempdir().unwrap();
    let app_port = free_port();
    let mut app = ChildGuard::spawn(
        "demo-app",
        Command::new(hypnos_bin()).args([
            "demo-app",
            &format!("--listen-address=127.0.0.1:{app_port}"),
            "--min-delay=1ms",
            "--max-delay=10ms",
        ]),
        dir.path(),
    );
    let app_url = format!("http://127.0.0.1:{app_port}");
    wait_http_ok(&format!("{app_url}/-/healthy"), Duration::from_secs(20), &mut app);

    let prom_port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: test\n    replica: r0\n\
         scrape_configs:\n  - job_name: demo-app\n    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n\
         \x20 - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{prom_port}']\n"
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, &config).unwrap();
    let prom_guard = start_prometheus_at(dir.path(), prom_port, "prometheus");
    let prom_url = format!("http://127.0.0.1:{prom_port}");

    let http = reqwest::Client::new();
    for i in 0..20 {
        let path = if i % 2 == 0 { "/" } else { "/throw-random-response" };
        http.post(format!("{app_url}{path}"))
            .body(r#"{"prod": 1}"#)
            .send()
            .await
            .unwrap();
    }

    let grpc_port = free_port();
    let http_port = free_port();
    let mut sidecar = ChildGuard::spawn(
        "sidecar",
        Command::new(hypnos_bin()).args([
            "sidecar",
            &format!("--prometheus.url={prom_url}"),
            &format!("--tsdb.path={}", dir.path().join("prom-data").display()),
            &format!("--grpc-address=127.0.0.1:{grpc_port}"),
            &format!("--http-address=127.0.0.1:{http_port}"),
            &format!("--reloader.config-file={}", config_path.display()),
            "--reloader.watch-interval=300ms",
            "--prometheus.get_config_interval=1s",
        ]),
        dir.path(),
    );
    let sidecar_http = format!("http://127.0.0.1:{http_port}");
    wait_http_ok(
        &format!("{sidecar_http}/-/ready"),
        Duration::from_secs(30),
        &mut sidecar,
    );
    let store = GrpcStore::connect(&format!("127.0.0.1:{grpc_port}")).await.unwrap();
    let external = Labels::from_pairs(EXTERNAL);

    // Wait for a few scrapes, native histograms included.
    eventually("Prometheus holds scraped data", Duration::from_secs(30), || async {
        let q = |query: &str| {
            let query = query.to_string();
            let url = prom_url.clone();
            async move { prom_get(&url, "/api/v1/query", &[("query", query)]).await["result"].clone() }
        };
        let n = q("count_over_time(up[1m])").await;
        let h = q("request_duration_seconds_native").await;
        let enough = n.as_array().is_some_and(|r| {
            r.len() == 2
                && r.iter()
                    .all(|s| s["value"][1].as_str().unwrap().parse::<f64>().unwrap() >= 3.0)
        });
        if enough && h.as_array().is_some_and(|r| !r.is_empty()) {
            Ok(())
        } else {
            Err(format!("up: {n}, histograms: {h}"))
        }
    })
    .await;

    // Info: the external labels, the sidecar component, a min time at or before the data and
    // an open end.
    let info = store
        .info_client()
        .info(hypnos_storepb::info::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.component_type, "sidecar");
    assert_eq!(info.label_sets.len(), 1);
    assert_eq!(
        hypnos_storepb::convert::label_set_from_proto(info.label_sets[0].clone()),
        external
    );
    let store_info = info.store.unwrap();
    assert_eq!(store_info.max_time, i64::MAX);
    // The lowest timestamp is refreshed every second; once set it is a real time.
    eventually(
        "Info's min time is Prometheus's lowest timestamp",
        Duration::from_secs(10),
        || async {
            let info = store
                .info_client()
                .info(hypnos_storepb::info::InfoRequest {})
                .await
                .unwrap()
                .into_inner();
            let mint = info.store.unwrap().min_time;
            if mint > now_ms() - 600_000 && mint <= now_ms() {
                Ok(())
            } else {
                Err(format!("min time {mint}"))
            }
        },
    )
    .await;

    // Series of `up`: the same samples as Prometheus's range query, with external labels.
    let t = now_ms() - 1500;
    let (mint, maxt) = (t - 60_000, t);
    let got = series(
        &store,
        SeriesRequest {
            min_time: mint,
            max_time: maxt,
            matchers: vec![eq("__name__", "up")],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let want = prom_get(
        &prom_url,
        "/api/v1/query",
        &[("query", "up[1m]".into()), ("time", secs(t))],
    )
    .await;
    let want = want["result"].as_array().unwrap().clone();
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    assert_eq!(got.len(), 2);
    for w in &want {
        let labels = prom_labels(&w["metric"]);
        let s = got
            .iter()
            .find(|s| labels_of(s) == labels)
            .unwrap_or_else(|| panic!("no series {labels}"));
        let expect: Vec<(i64, f64)> = w["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    p[1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        let have: Vec<(i64, f64)> = samples(s, mint, maxt)
            .into_iter()
            .map(|(t, v)| match v {
                SampleValue::Float(f) => (t, f),
                other => panic!("float expected, got {other:?}"),
            })
            .collect();
        assert_eq!(have, expect, "{labels}");
        assert!(
            s.chunks.iter().all(|c| c.raw.as_ref().unwrap().hash != 0),
            "chunk hashes filled"
        );
    }

    // Native histograms come through as histogram chunks, sample for sample.
    let got = series(
        &store,
        SeriesRequest {
            min_time: mint,
            max_time: maxt,
            matchers: vec![eq("__name__", "request_duration_seconds_native")],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let want = prom_get(
        &prom_url,
        "/api/v1/query",
        &[
            ("query", "request_duration_seconds_native[1m]".into()),
            ("time", secs(t)),
        ],
    )
    .await;
    let want = want["result"].as_array().unwrap().clone();
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len());
    for w in &want {
        let labels = prom_labels(&w["metric"]);
        let s = got
            .iter()
            .find(|s| labels_of(s) == labels)
            .unwrap_or_else(|| panic!("no series {labels}"));
        assert!(
            s.chunks.iter().all(|c| c.raw.as_ref().unwrap().r#type != 0),
            "histogram chunks, not XOR: {s:?}"
        );
        let expect: Vec<(i64, f64)> = w["histograms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    p[1]["count"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        let have: Vec<(i64, f64)> = samples(s, mint, maxt)
            .into_iter()
            .map(|(t, v)| match v {
                SampleValue::Histogram(h) => (t, h.count as f64),
                SampleValue::FloatHistogram(h) => (t, h.count),
                other => panic!("histogram expected, got {other:?}"),
            })
            .collect();
        assert_eq!(have, expect, "{labels}");
    }

    // Everything, sorted by the full label set, each series once; the same set Prometheus lists.
    let all = series(
        &store,
        SeriesRequest {
            min_time: mint,
            max_time: maxt,
            matchers: vec![re("job", ".+")],
            skip_chunks: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let all_labels: Vec<Labels> = all.iter().map(labels_of).collect();
    assert!(all_labels.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    let prom_series = prom_get(
        &prom_url,
        "/api/v1/series",
        &[
            ("match[]", r#"{job=~".+"}"#.into()),
            ("start", secs(mint)),
            ("end", secs(maxt)),
        ],
    )
    .await;
    let prom_set: BTreeSet<Labels> = prom_series.as_array().unwrap().iter().map(prom_labels).collect();
    let got_set: BTreeSet<Labels> = all_labels.iter().cloned().collect();
    assert_eq!(got_set, prom_set);
    assert!(all.iter().all(|s| s.chunks.is_empty()), "skip_chunks");
    // A selector that also matches the empty label set, which Prometheus's series API refuses:
    // the same series, through remote read.
    let all_empty_matching = series(
        &store,
        SeriesRequest {
            min_time: mint,
            max_time: maxt,
            matchers: vec![re("job", ".*")],
            skip_chunks: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all_empty_matching.iter().map(labels_of).collect::<Vec<_>>(), all_labels);

    // Matchers on external labels: a mismatch gives nothing, a match is dropped before
    // forwarding, and nothing but external-label matchers is an error, as in Thanos.
    let req = |ms: Vec<LabelMatcher>| SeriesRequest {
        min_time: mint,
        max_time: maxt,
        matchers: ms,
        ..Default::default()
    };
    assert!(
        series(&store, req(vec![eq("__name__", "up"), eq("cluster", "other")]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        series(&store, req(vec![eq("__name__", "up"), re("cluster", "te.*")]))
            .await
            .unwrap()
            .len(),
        2
    );
    let err = series(&store, req(vec![eq("cluster", "test")])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");

    // without_replica_labels drops the replica external label.
    let got = series(
        &store,
        SeriesRequest {
            without_replica_labels: vec!["replica".into()],
            ..req(vec![eq("__name__", "up")])
        },
    )
    .await
    .unwrap();
    assert!(
        got.iter()
            .all(|s| !labels_of(s).has("replica") && labels_of(s).has("cluster"))
    );

    // LabelNames / LabelValues: Prometheus's plus the external labels.
    let (start, end) = (now_ms() - 3_600_000, now_ms());
    let names = store
        .store_client()
        .label_names(LabelNamesRequest {
            start,
            end,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .names;
    let prom_names = prom_get(
        &prom_url,
        "/api/v1/labels",
        &[("start", secs(start)), ("end", secs(end))],
    )
    .await;
    let mut want: Vec<String> = prom_names
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .chain(EXTERNAL.iter().map(|(k, _)| k.to_string()))
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(names, want);

    let values = |label: &str, matchers: Vec<LabelMatcher>| {
        let mut c = store.store_client();
        let req = LabelValuesRequest {
            label: label.into(),
            start,
            end,
            matchers,
            ..Default::default()
        };
        async move { c.label_values(req).await.unwrap().into_inner().values }
    };
    assert_eq!(values("job", vec![]).await, vec!["demo-app", "prometheus"]);
    assert_eq!(
        values(
            "job",
            vec![eq("__name__", "up"), eq("instance", &format!("127.0.0.1:{app_port}"))]
        )
        .await,
        vec!["demo-app"]
    );
    assert_eq!(values("cluster", vec![]).await, vec!["test"]);
    assert!(values("job", vec![eq("replica", "r1")]).await.is_empty());
    let prom_methods = prom_get(
        &prom_url,
        "/api/v1/label/method/values",
        &[("start", secs(start)), ("end", secs(end))],
    )
    .await;
    let prom_methods: Vec<String> = prom_methods
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().into())
        .collect();
    assert_eq!(values("method", vec![]).await, prom_methods);

    // The reloader: a configuration change reaches Prometheus.
    std::fs::write(
        &config_path,
        config.replace("job_name: prometheus", "job_name: prometheus-self"),
    )
    .unwrap();
    eventually(
        "Prometheus reloaded the changed configuration",
        Duration::from_secs(20),
        || async {
            let cfg = prom_get(&prom_url, "/api/v1/status/config", &[]).await;
            if cfg["yaml"].as_str().unwrap().contains("prometheus-self") {
                Ok(())
            } else {
                Err("old configuration".into())
            }
        },
    )
    .await;

    // Prometheus down: calls fail with a clear Unavailable, Info still answers; once it is
    // back, Series works again.
    drop(prom_guard);
    let err = series(&store, req(vec![eq("__name__", "up")])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(err.message().contains(&prom_url), "{}", err.message());
    store
        .info_client()
        .info(hypnos_storepb::info::InfoRequest {})
        .await
        .unwrap();
    let _prom_guard = start_prometheus_at(dir.path(), prom_port, "prometheus-restarted");
    let t = now_ms();
    let got = series(
        &store,
        SeriesRequest {
            min_time: t - 600_000,
            max_time: t,
            matchers: vec![eq("__name__", "up")],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!got.is_empty());

    let metrics = reqwest::get(format!("{sidecar_http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // One reload at start-up (Thanos's reloader applies the file once when it starts), one for
    // the change.
    assert!(
        metrics.contains("\nthanos_sidecar_reloader_reloads_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nthanos_sidecar_reloader_reloads_failed_total 0\n"),
        "{metrics}"
    );
    assert!(sidecar.child.try_wait().unwrap().is_none(), "sidecar still running");
}
