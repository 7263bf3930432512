//! The querier in-process over in-memory StoreAPI endpoints on 127.0.0.1: HA replicas with
//! gaps deduplicated, `dedup=false`, partial response on and off, the metadata endpoints and a
//! querier stacked on a querier.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hypnos_model::Labels;
use hypnos_query::memstore::MemStore;
use hypnos_query::{QueryArgs, run};
use serde_json::Value;
use tokio::net::TcpListener;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Scrapes every 15 s from t=0 (ms), replica 1 offset by 1 s.
const STEP: i64 = 15_000;
const END: i64 = 1_800_000;

/// Two replicas of `up` and of a counter; replica "1" misses 600 s..900 s, replica "0" misses
/// 1200 s..1500 s, so only together do they cover the whole half hour.
fn replicas() -> (MemStore, MemStore) {
    let mut r0 = MemStore::new(Labels::from_pairs([("cluster", "eu"), ("replica", "0")]));
    let mut r1 = MemStore::new(Labels::from_pairs([("cluster", "eu"), ("replica", "1")]));
    let up = Labels::from_pairs([("__name__", "up"), ("job", "demo")]);
    let counter = Labels::from_pairs([("__name__", "requests_total"), ("job", "demo")]);
    let r0_up: Vec<(i64, f64)> = (0..=END)
        .step_by(STEP as usize)
        .filter(|t| !(1_200_000..1_500_000).contains(t))
        .map(|t| (t, 1.0))
        .collect();
    let r1_up: Vec<(i64, f64)> = (0..=END)
        .step_by(STEP as usize)
        .filter(|t| !(600_000..900_000).contains(t))
        .map(|t| (t + 1000, 1.0))
        .collect();
    r0.add(&up, r0_up.clone());
    r1.add(&up, r1_up.clone());
    // A counter rising 1/s on both replicas.
    r0.add(&counter, r0_up.iter().map(|&(t, _)| (t, t as f64 / 1000.0)).collect());
    r1.add(&counter, r1_up.iter().map(|&(t, _)| (t, t as f64 / 1000.0)).collect());
    (r0, r1)
}

async fn serve(store: MemStore) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    store.serve(l);
    addr
}

struct Querier {
    http: String,
    grpc: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_querier(endpoints: Vec<String>, extra: impl FnOnce(&mut QueryArgs)) -> Querier {
    let http = free_addr();
    let grpc = free_addr();
    let mut args = QueryArgs {
        http_address: http,
        grpc_address: grpc,
        endpoints,
        replica_labels: vec!["replica".into()],
        info_interval: Duration::from_millis(500),
        ..Default::default()
    };
    extra(&mut args);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        run(args, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let url = format!("http://{http}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/-/ready")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "querier at {url} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Querier {
        http: url,
        grpc,
        _stop: tx,
    }
}

async fn get(q: &Querier, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", q.http))
        .query(params)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
    )
}

fn result(v: &Value) -> &Vec<Value> {
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no result in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_merges_replicas_and_fills_gaps() {
    let (r0, r1) = replicas();
    let (a0, a1) = (serve(r0).await, serve(r1).await);
    let q = start_querier(vec![a0.to_string(), a1.to_string()], |_| {}).await;

    // Inside replica 1's gap and inside replica 0's gap: one series, no replica label.
    for t in ["700", "1300"] {
        let (code, v) = get(&q, "/api/v1/query", &[("query", "up"), ("time", t)]).await;
        assert_eq!(code, 200, "{v}");
        let res = result(&v);
        assert_eq!(res.len(), 1, "{v}");
        assert_eq!(
            res[0]["metric"],
            serde_json::json!({"__name__":"up","cluster":"eu","job":"demo"})
        );
        assert!(v.get("warnings").is_none(), "{v}");
    }

    // A range query over both gaps with a 15 s step has a value at every step: the gaps of
    // each replica are filled from the other one. The lookback is 35 s because a switch of
    // replicas skips one sample (the replica switched to was penalised by 2 × 15 s), as in
    // Thanos.
    let (code, v) = get(
        &q,
        "/api/v1/query_range",
        &[
            ("query", "up"),
            ("start", "30"),
            ("end", "1770"),
            ("step", "15"),
            ("lookback_delta", "35s"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let res = result(&v);
    assert_eq!(res.len(), 1, "{v}");
    assert_eq!(res[0]["values"].as_array().unwrap().len(), 117);

    // The counter does not show a fake reset when the output switches replicas.
    let (_, v) = get(
        &q,
        "/api/v1/query",
        &[("query", "resets(requests_total[30m])"), ("time", "1800")],
    )
    .await;
    assert_eq!(result(&v)[0]["value"][1], "0", "{v}");
    let (_, v) = get(
        &q,
        "/api/v1/query",
        &[("query", "increase(requests_total[5m])"), ("time", "1000")],
    )
    .await;
    let inc: f64 = result(&v)[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((inc - 300.0).abs() < 30.0, "{v}");

    // dedup=false: both replicas, each with its replica label.
    let (_, v) = get(
        &q,
        "/api/v1/query",
        &[("query", "up"), ("time", "100"), ("dedup", "false")],
    )
    .await;
    let res = result(&v);
    assert_eq!(res.len(), 2, "{v}");
    assert_eq!(res[0]["metric"]["replica"], "0");
    assert_eq!(res[1]["metric"]["replica"], "1");

    // Metadata endpoints see one series and no replica label under dedup.
    let (_, v) = get(&q, "/api/v1/series", &[("match[]", "up")]).await;
    assert_eq!(
        v["data"],
        serde_json::json!([{"__name__":"up","cluster":"eu","job":"demo"}])
    );
    let (_, v) = get(&q, "/api/v1/series", &[("match[]", "up"), ("dedup", "false")]).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let (_, v) = get(&q, "/api/v1/labels", &[]).await;
    assert_eq!(v["data"], serde_json::json!(["__name__", "cluster", "job"]));
    let (_, v) = get(&q, "/api/v1/label/__name__/values", &[]).await;
    assert_eq!(v["data"], serde_json::json!(["requests_total", "up"]));
    let (_, v) = get(&q, "/api/v1/label/replica/values", &[("dedup", "false")]).await;
    assert_eq!(v["data"], serde_json::json!(["0", "1"]));

    // Stores page: both endpoints, healthy, with their label sets.
    let (_, v) = get(&q, "/api/v1/stores", &[]).await;
    let sidecars = v["data"]["sidecar"].as_array().unwrap();
    assert_eq!(sidecars.len(), 2, "{v}");
    assert!(sidecars.iter().all(|s| s["lastError"].is_null()), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_endpoint_is_a_warning_or_an_error() {
    let (r0, _) = replicas();
    let a0 = serve(r0).await;
    let down = free_addr();
    let q = start_querier(vec![a0.to_string(), down.to_string()], |_| {}).await;

    let (code, v) = get(&q, "/api/v1/query", &[("query", "up"), ("time", "100")]).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(result(&v).len(), 1);
    let warnings = v["warnings"].as_array().unwrap();
    assert!(warnings[0].as_str().unwrap().contains(&down.to_string()), "{v}");

    let (code, v) = get(
        &q,
        "/api/v1/query",
        &[("query", "up"), ("time", "100"), ("partial_response", "false")],
    )
    .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "execution");
    assert!(v["error"].as_str().unwrap().contains(&down.to_string()), "{v}");

    // The flag's default can be turned off too.
    let q2 = start_querier(vec![a0.to_string(), down.to_string()], |a| a.partial_response = false).await;
    let (code, _) = get(&q2, "/api/v1/query", &[("query", "up"), ("time", "100")]).await;
    assert_eq!(code, 422);
    let (code, v) = get(&q2, "/api/v1/series", &[("match[]", "up")]).await;
    assert_eq!(code, 422, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacked_querier_answers_like_the_flat_one() {
    let (r0, r1) = replicas();
    let (a0, a1) = (serve(r0).await, serve(r1).await);
    let flat = start_querier(vec![a0.to_string(), a1.to_string()], |_| {}).await;
    let top = start_querier(vec![flat.grpc.to_string()], |_| {}).await;
    for (path, params) in [
        ("/api/v1/query", vec![("query", "up"), ("time", "1300")]),
        (
            "/api/v1/query",
            vec![("query", "rate(requests_total[5m])"), ("time", "1000")],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "sum by (job) (up)"),
                ("start", "0"),
                ("end", "1800"),
                ("step", "60"),
            ],
        ),
        (
            "/api/v1/query",
            vec![("query", "up"), ("time", "100"), ("dedup", "false")],
        ),
        ("/api/v1/series", vec![("match[]", "up")]),
        ("/api/v1/labels", vec![]),
    ] {
        let (c1, v1) = get(&flat, path, &params).await;
        let (c2, v2) = get(&top, path, &params).await;
        assert_eq!((c1, &v1), (c2, &v2), "{path} {params:?}");
        assert_eq!(c1, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_like_prometheus() {
    let q = start_querier(vec![], |_| {}).await;
    let (code, v) = get(&q, "/api/v1/query", &[("query", "sum(")]).await;
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\": "),
        "{v}"
    );
    let (code, v) = get(&q, "/api/v1/series", &[]).await;
    assert_eq!(
        (code, v["error"].as_str().unwrap()),
        (400, "no match[] parameter provided")
    );
    let (code, v) = get(&q, "/api/v1/series", &[("match[]", "{job=~\".*\"}")]).await;
    assert_eq!(
        (code, v["error"].as_str().unwrap()),
        (400, "match[] must contain at least one non-empty matcher")
    );
    let (code, v) = get(
        &q,
        "/api/v1/query_range",
        &[("query", "1"), ("start", "10"), ("end", "0"), ("step", "1")],
    )
    .await;
    assert_eq!(
        (code, v["error"].as_str().unwrap()),
        (400, "end timestamp must not be before start time")
    );
    let (code, v) = get(&q, "/api/v1/query", &[("query", "1"), ("time", "x")]).await;
    assert_eq!(
        (code, v["error"].as_str().unwrap()),
        (
            400,
            "invalid parameter \"time\": cannot parse \"x\" to a valid timestamp"
        )
    );
    let (code, v) = get(
        &q,
        "/api/v1/query",
        &[("query", "vector(1e-7)"), ("time", "1700000000.5")],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        v["data"]["result"][0]["value"],
        serde_json::json!([1700000000.5, "1e-07"])
    );
    let (code, v) = get(&q, "/api/v1/status/buildinfo", &[]).await;
    assert_eq!(code, 200);
    assert!(v["data"]["version"].is_string());
    // POST with a form body works the same.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/query", q.http))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("query=1%2B1&time=10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"status":"success","data":{"resultType":"scalar","result":[10,"2"]}}"#
    );
}

/// A query over more than 3 days is sent to a store as two requests split by time, on two
/// connections, and merged back: same answer as the samples say, and no stall when each
/// series' answer is larger than an HTTP/2 flow-control window (on one shared connection
/// the unread half filled the connection's window and the merge waited forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_range_queries_split_by_time_answer_in_full() {
    const DAYS: i64 = 8;
    let mut store = MemStore::new(Labels::default());
    for i in 0..12 {
        let samples: Vec<(i64, f64)> = (0..DAYS * 24 * 240)
            .map(|k| (k * STEP, ((k * (i + 3)) as f64 * 0.7).sin() * 1000.0))
            .collect();
        store.add(
            &Labels::from_pairs([("__name__", "wavy"), ("i", &i.to_string())]),
            samples,
        );
    }
    let a = serve(store).await;
    let q = start_querier(vec![a.to_string()], |_| {}).await;
    let end = (DAYS * 24 * 3600).to_string();
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        get(
            &q,
            "/api/v1/query_range",
            &[
                ("query", "sum(count_over_time(wavy[1h]))"),
                ("start", "3600"),
                ("end", &end),
                ("step", "3600"),
            ],
        ),
    )
    .await
    .expect("a query split by time must not stall");
    assert_eq!(answer.0, 200, "{}", answer.1);
    let values = result(&answer.1)[0]["values"].as_array().unwrap().clone();
    assert_eq!(values.len() as i64, DAYS * 24);
    for (k, v) in values.iter().enumerate() {
        // 12 series × 240 samples in every (t - 1h, t]; the data ends 15 s before the last step.
        let want = if k + 1 == values.len() { "2868" } else { "2880" };
        assert_eq!(v[1], want, "{v}");
    }
}
