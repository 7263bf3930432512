//! HA failover with real processes: two Prometheus 2.42 replicas (external labels
//! cluster=ap-south1, replica=0/1) scrape the same `hypnos demo-app` every second, each with a
//! `hypnos sidecar`, and one `hypnos query --query.replica-label=replica` over both sidecars.
//! Each series comes back once without the replica label; after one Prometheus is killed the
//! answers keep coming — same series, status success (at most a warning naming the down
//! side), fresh samples from the surviving replica — and a range query across the moment of
//! the kill has a value at every step, all of them from the surviving replica; restarted, the
//! replica is back in the answers without warnings. A second test
//! runs the full topology (both sidecars uploading, a store gateway over the bucket): a dead
//! replica whose data directory is gone still shows its shipped history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{
    ChildGuard, Component, eventually, free_port, get_json, now_ms, prometheus_config, result_of, secs,
    start_component, start_demo_app, start_prometheus_at, start_querier,
};
use serde_json::Value;

/// demo-app's populated gauges (development, staging, production) plus the self-load's
/// instance names (eight, staging among them).
const INSTANCES: usize = 3 + 8 - 1;

struct Replica {
    prometheus: ChildGuard,
    url: String,
    sidecar: Component,
}

/// Prometheus `replica` scraping `app` and its sidecar; with `objstore`, Prometheus cuts 10 s
/// blocks and the sidecar ships them there.
fn start_replica(dir: &Path, replica: &str, app: &str, objstore: Option<&str>) -> Replica {
    let dir = dir.join(format!("replica-{replica}"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        prometheus_config(
            "1s",
            &[("cluster", "ap-south1"), ("replica", replica)],
            &[("demo-app", app.trim_start_matches("http://"))],
        ),
    )
    .unwrap();
    let blocks: &[&str] = if objstore.is_some() {
        &[
            "--storage.tsdb.min-block-duration=10s",
            "--storage.tsdb.max-block-duration=10s",
        ]
    } else {
        &[]
    };
    let prometheus = start_prometheus_at(&dir, port, &format!("prometheus-{replica}"), blocks);
    let url = format!("http://127.0.0.1:{port}");
    let mut args = vec![
        format!("--prometheus.url={url}"),
        format!("--tsdb.path={}", dir.join("prom-data").display()),
        "--prometheus.get_config_interval=1s".into(),
    ];
    if let Some(objstore) = objstore {
        args.push(format!("--objstore.config={objstore}"));
        args.push("--shipper.sync-interval=300ms".into());
    }
    let sidecar = start_component(
        &format!("sidecar-{replica}"),
        &dir,
        "sidecar",
        &args,
        Duration::from_secs(30),
    );
    Replica {
        prometheus,
        url,
        sidecar,
    }
}

/// Label sets of a result, as sorted `name=value` lists.
fn label_sets(result: &[Value]) -> BTreeSet<Vec<String>> {
    result
        .iter()
        .map(|s| {
            s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect()
        })
        .collect()
}

/// Instant query through the querier; panics unless the answer is a success.
async fn query(querier: &str, q: &str, extra: &[(&str, String)]) -> Value {
    let mut params = vec![("query", q.to_string())];
    params.extend(extra.iter().cloned());
    let (code, v) = get_json(&format!("{querier}/api/v1/query"), &params).await;
    assert_eq!(code, 200, "{q}: {v}");
    assert_eq!(v["status"], "success", "{q}: {v}");
    v
}

/// Every series once, without the replica label, with cluster=ap-south1.
fn assert_deduplicated(q: &str, result: &[Value]) {
    let sets = label_sets(result);
    assert_eq!(sets.len(), result.len(), "{q}: a series came back twice: {result:?}");
    for s in result {
        assert!(s["metric"].get("replica").is_none(), "{q}: replica label left in {s}");
        assert_eq!(s["metric"]["cluster"], "ap-south1", "{q}: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn querier_keeps_answering_when_one_ha_replica_dies() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, app) = tokio::task::block_in_place(|| start_demo_app(dir.path(), &["--self-load=20"]));
    let (mut r0, r1) = tokio::task::block_in_place(|| {
        (
            start_replica(dir.path(), "0", &app, None),
            start_replica(dir.path(), "1", &app, None),
        )
    });
    let querier =
        tokio::task::block_in_place(|| start_querier("query", dir.path(), &[&r0.sidecar.grpc, &r1.sidecar.grpc], &[]));
    let q = querier.http.clone();

    // Both replicas are in: without dedup every series is there twice, once per replica.
    let (sessions, rates) = eventually("both replicas answer", Duration::from_secs(40), || async {
        let raw = result_of(&query(&q, "instances_active_session", &[("dedup", "false".into())]).await);
        let replicas: BTreeSet<&str> = raw.iter().filter_map(|s| s["metric"]["replica"].as_str()).collect();
        let sessions = result_of(&query(&q, "instances_active_session", &[]).await);
        let rates = result_of(&query(&q, "rate(total_http_requests[1m])", &[]).await);
        if replicas.len() == 2 && raw.len() == 2 * INSTANCES && sessions.len() == INSTANCES && rates.len() == 1 {
            Ok((sessions, rates))
        } else {
            Err(format!(
                "replicas {replicas:?}, {} raw, {} deduplicated sessions, rates {rates:?}",
                raw.len(),
                sessions.len()
            ))
        }
    })
    .await;
    assert_deduplicated("instances_active_session", &sessions);
    assert_deduplicated("rate(total_http_requests[1m])", &rates);
    let session_set = label_sets(&sessions);
    let rate_set = label_sets(&rates);
    let (_, v) = get_json(&format!("{q}/api/v1/stores"), &[]).await;
    assert_eq!(v["data"]["sidecar"].as_array().map(Vec::len), Some(2), "{v}");

    // Let a stretch of history build up, then kill replica 0's Prometheus.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let killed_at = now_ms();
    r0.prometheus.child.kill().unwrap();
    r0.prometheus.child.wait().unwrap();
    let r0_url = r0.url.clone();

    // Answers keep flowing throughout, and soon carry samples newer than the kill.
    let mut warned = false;
    let deadline = killed_at + 8_000;
    while now_ms() < deadline {
        for (expr, want) in [
            ("instances_active_session", &session_set),
            ("rate(total_http_requests[1m])", &rate_set),
        ] {
            let v = query(&q, expr, &[]).await;
            let result = result_of(&v);
            assert_deduplicated(expr, &result);
            assert_eq!(&label_sets(&result), want, "{expr} after the kill: {v}");
            if let Some(ws) = v["warnings"].as_array() {
                warned = true;
                for w in ws {
                    let w = w.as_str().unwrap();
                    assert!(
                        w.contains(&r0.sidecar.grpc) || w.contains(&r0_url),
                        "a warning about something else than the down replica: {w}"
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("partial-response warning seen after the kill: {warned}");

    // Strict mode refuses the incomplete answer and names the down side, as Thanos does.
    let (code, v) = get_json(
        &format!("{q}/api/v1/query"),
        &[
            ("query", "instances_active_session".into()),
            ("partial_response", "false".into()),
        ],
    )
    .await;
    assert_eq!(code, 422, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains(&r0.sidecar.grpc) || err.contains(&r0_url), "{v}");

    // The metadata APIs keep working too: series deduplicated, label values without replica 0.
    let (code, v) = get_json(
        &format!("{q}/api/v1/series"),
        &[
            ("match[]", "instances_active_session".into()),
            ("start", secs(killed_at - 5_000)),
            ("end", secs(now_ms())),
        ],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let series = v["data"].as_array().unwrap();
    let sets: BTreeSet<String> = series.iter().map(|s| s.to_string()).collect();
    assert_eq!(sets.len(), INSTANCES, "{v}");
    assert!(series.iter().all(|s| s.get("replica").is_none()), "{v}");
    let (code, v) = get_json(&format!("{q}/api/v1/label/instance_name/values"), &[]).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), INSTANCES, "{v}");
    let now = now_ms();
    let v = query(&q, "timestamp(instances_active_session)", &[("time", secs(now))]).await;
    for s in result_of(&v) {
        let ts: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        let ts = (ts * 1000.0).round() as i64;
        assert!(
            ts > killed_at + 2_000,
            "stale sample at {ts} (killed at {killed_at}): {s}"
        );
        assert!(now - ts < 5_000, "sample {} ms old: {s}", now - ts);
    }
    let v = query(&q, "rate(total_http_requests[1m])", &[("time", secs(now))]).await;
    let rate: f64 = result_of(&v)[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(rate > 0.0, "{v}");

    // A range across the kill: a value at every step, from the one replica or the other.
    let (start, end) = (killed_at - 6_000, now_ms() - 1_000);
    let range = |expr: &'static str, dedup: bool| {
        let q = q.clone();
        async move {
            let (code, v) = get_json(
                &format!("{q}/api/v1/query_range"),
                &[
                    ("query", expr.to_string()),
                    ("start", secs(start)),
                    ("end", secs(end)),
                    ("step", "1".into()),
                    ("dedup", dedup.to_string()),
                ],
            )
            .await;
            assert_eq!(code, 200, "{expr}: {v}");
            result_of(&v)
        }
    };
    let steps = ((end - start) / 1000 + 1) as usize;
    let counts = range("count_over_time(up{job=\"demo-app\"}[5s])", true).await;
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_deduplicated("count_over_time(up[5s])", &counts);
    let values = counts[0]["values"].as_array().unwrap();
    assert_eq!(values.len(), steps, "a gap in the deduplicated samples: {values:?}");
    assert!(
        values
            .iter()
            .all(|p| p[1].as_str().unwrap().parse::<f64>().unwrap() >= 1.0)
    );
    let rates = range("rate(total_http_requests[1m])", true).await;
    assert_eq!(rates.len(), 1, "{rates:?}");
    assert_eq!(rates[0]["values"].as_array().unwrap().len(), steps, "{rates:?}");
    let sessions = range("instances_active_session", true).await;
    assert_eq!(label_sets(&sessions), session_set);
    assert!(sessions.iter().all(|s| s["values"].as_array().unwrap().len() == steps));

    // Without dedup only replica 1 answers now (replica 0's data lived in its Prometheus
    // alone): the survivor's own samples cover the whole range, before and after the kill.
    let raw = range("count_over_time(up{job=\"demo-app\"}[5s])", false).await;
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(raw[0]["metric"]["replica"], "1", "{raw:?}");
    assert_eq!(raw[0]["values"].as_array().unwrap().len(), steps, "{raw:?}");

    // Replica 0 comes back (same port, same data): its sidecar serves again and the querier
    // sees both replicas without any warning.
    let port: u16 = r0_url.rsplit(':').next().unwrap().parse().unwrap();
    let _restarted = tokio::task::block_in_place(|| {
        start_prometheus_at(&dir.path().join("replica-0"), port, "prometheus-0-restarted", &[])
    });
    eventually("both replicas answer again", Duration::from_secs(30), || async {
        let v = query(&q, "instances_active_session", &[("dedup", "false".into())]).await;
        let raw = result_of(&v);
        let replicas: BTreeSet<&str> = raw.iter().filter_map(|s| s["metric"]["replica"].as_str()).collect();
        if replicas.len() == 2 && raw.len() == 2 * INSTANCES && v.get("warnings").is_none() {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    drop(r1);
    drop(querier);
}

/// Replica labels of the complete blocks in the bucket, with each block's time range.
fn shipped(bucket: &Path) -> Vec<(String, i64, i64)> {
    let Ok(entries) = std::fs::read_dir(bucket) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path().join("meta.json")).ok())
        .map(|b| {
            let m: Value = serde_json::from_slice(&b).unwrap();
            (
                m["thanos"]["labels"]["replica"].as_str().unwrap().to_string(),
                m["minTime"].as_i64().unwrap(),
                m["maxTime"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The seed's full HA topology: both sidecars ship their Prometheus's blocks to one bucket and
/// a store gateway serves it next to the sidecars. Replica 0's Prometheus is killed and its
/// data directory deleted: the deduplicated answer stays gapless, and without dedup replica
/// 0's shipped history is still there, from the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_gateway_keeps_a_dead_replicas_shipped_history() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let objstore = format!("type: FILESYSTEM\nconfig:\n  directory: {}\n", bucket.display());
    let (_app, app) = tokio::task::block_in_place(|| start_demo_app(dir.path(), &["--self-load=10"]));
    let (mut r0, r1, store) = tokio::task::block_in_place(|| {
        let r0 = start_replica(dir.path(), "0", &app, Some(&objstore));
        let r1 = start_replica(dir.path(), "1", &app, Some(&objstore));
        let store = start_component(
            "store",
            dir.path(),
            "store",
            &[
                format!("--objstore.config={objstore}"),
                format!("--data-dir={}", dir.path().join("store-data").display()),
                "--sync-block-duration=1s".into(),
            ],
            Duration::from_secs(60),
        );
        (r0, r1, store)
    });
    let querier = tokio::task::block_in_place(|| {
        start_querier(
            "query",
            dir.path(),
            &[&r0.sidecar.grpc, &r1.sidecar.grpc, &store.grpc],
            &[],
        )
    });
    let q = querier.http.clone();

    // Two blocks of replica 0 shipped (its first one covers the start of its data).
    let r0_blocks = eventually("replica 0 shipped two blocks", Duration::from_secs(60), || async {
        let b: Vec<(i64, i64)> = shipped(&bucket)
            .into_iter()
            .filter(|(r, _, _)| r == "0")
            .map(|(_, lo, hi)| (lo, hi))
            .collect();
        if b.len() >= 2 { Ok(b) } else { Err(format!("{b:?}")) }
    })
    .await;
    let r0_shipped_from = r0_blocks.iter().map(|b| b.0).min().unwrap();
    let r0_shipped_to = r0_blocks.iter().map(|b| b.1).max().unwrap();
    let killed_at = now_ms();
    r0.prometheus.child.kill().unwrap();
    r0.prometheus.child.wait().unwrap();
    std::fs::remove_dir_all(dir.path().join("replica-0").join("prom-data")).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;

    let (start, end) = (r0_shipped_from + 5_000, now_ms() - 1_000);
    let steps = ((end - start) / 1000 + 1) as usize;
    let range = |dedup: bool| {
        let q = q.clone();
        async move {
            let (code, v) = get_json(
                &format!("{q}/api/v1/query_range"),
                &[
                    ("query", "count_over_time(up{job=\"demo-app\"}[5s])".to_string()),
                    ("start", secs(start)),
                    ("end", secs(end)),
                    ("step", "1".into()),
                    ("dedup", dedup.to_string()),
                ],
            )
            .await;
            assert_eq!(code, 200, "{v}");
            result_of(&v)
        }
    };
    // Deduplicated: one series, a value at every step across the kill.
    let dedup = range(true).await;
    assert_eq!(dedup.len(), 1, "{dedup:?}");
    assert_deduplicated("count_over_time(up[5s])", &dedup);
    assert_eq!(dedup[0]["values"].as_array().unwrap().len(), steps, "{dedup:?}");

    // Without dedup: replica 1 everywhere; replica 0 from the bucket, up to what it shipped
    // (the store gateway may need a sync or two for the newest block).
    eventually("replica 0's shipped history is served", Duration::from_secs(20), || async {
        let raw = range(false).await;
        let steps_of = |replica: &str| {
            raw.iter()
                .find(|s| s["metric"]["replica"] == replica)
                .map(|s| {
                    s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (p[0].as_f64().unwrap() * 1000.0).round() as i64)
                        .collect::<Vec<i64>>()
                })
                .unwrap_or_default()
        };
        let (s0, s1) = (steps_of("0"), steps_of("1"));
        let covered = s0.first() == Some(&start) && s0.last().is_some_and(|&t| t >= r0_shipped_to - 1_000);
        let stops = s0.last().is_some_and(|&t| t < killed_at + 5_000);
        if s1.len() == steps && covered && stops {
            Ok(())
        } else {
            Err(format!(
                "replica 1: {} of {steps} steps; replica 0: {:?}..{:?} (shipped to {r0_shipped_to}, killed {killed_at})",
                s1.len(),
                s0.first(),
                s0.last()
            ))
        }
    })
    .await;
    drop(r1);
}
