//! The handler over real HTTP on 127.0.0.1: good bodies move the metrics, bad ones are
//! answered 400 "Invalid JSON" and change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hypnos_demo_app::{DemoApp, DemoAppArgs};

async fn start() -> (String, tokio::task::JoinHandle<()>) {
    let args = DemoAppArgs {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(3),
        ..DemoAppArgs::default()
    };
    let app = DemoApp::new(&args);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app.router();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (url, task)
}

async fn metrics_text(client: &reqwest::Client, url: &str) -> String {
    client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_bodies_are_400_and_leave_metrics_unchanged() {
    let (url, _task) = start().await;
    let client = reqwest::Client::new();
    let before = metrics_text(&client, &url).await;
    for body in ["{not json", "", "[1, 2]", "\"prod\"", "42", r#"{"prod": "many"}"#] {
        for path in ["/", "/throw-random-response"] {
            let resp = client.post(format!("{url}{path}")).body(body).send().await.unwrap();
            assert_eq!(resp.status(), 400, "body {body:?} on {path}");
            assert_eq!(resp.text().await.unwrap().trim(), "Invalid JSON");
        }
    }
    assert_eq!(before, metrics_text(&client, &url).await);
}

#[tokio::test]
async fn good_body_sets_gauge_and_counts() {
    let (url, _task) = start().await;
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let resp = client
            .post(format!("{url}/throw-random-response"))
            .body(r#"{"prod": 69420}"#)
            .send()
            .await
            .unwrap();
        assert!([200, 502, 504, 400].contains(&resp.status().as_u16()));
        assert_eq!(resp.text().await.unwrap(), "OK");
    }
    let text = metrics_text(&client, &url).await;
    assert!(
        text.contains("instances_active_session{instance_name=\"prod\"} 69420\n"),
        "{text}"
    );
    assert!(
        text.contains("instances_active_session{instance_name=\"production\"} 15\n"),
        "{text}"
    );
    assert!(text.contains("total_http_requests 20\n"), "{text}");
    assert!(text.contains("# TYPE request_duration_seconds histogram"), "{text}");
    assert!(text.contains("le=\"0.005\"}"), "{text}");
    assert!(text.contains("request_duration_seconds_native_count{code="), "{text}");
    assert!(text.contains("# TYPE request_error_counts counter"), "{text}");
}

#[tokio::test]
async fn protobuf_when_asked() {
    let (url, _task) = start().await;
    let client = reqwest::Client::new();
    client.post(&url).body(r#"{"a": 1}"#).send().await.unwrap();
    let resp = client
        .get(format!("{url}/metrics"))
        .header(
            "Accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3",
        )
        .send()
        .await
        .unwrap();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/vnd.google.protobuf"), "{ct}");
    let body = resp.bytes().await.unwrap();
    let mut buf = &body[..];
    let mut names = Vec::new();
    while !buf.is_empty() {
        let mf: hypnos_demo_app::metrics::proto::MetricFamily =
            prost::Message::decode_length_delimited(&mut buf).unwrap();
        if mf.name.as_deref() == Some("request_duration_seconds_native") {
            let h = mf.metric[0].histogram.as_ref().unwrap();
            assert_eq!(h.schema, Some(-1));
            assert!(!h.positive_span.is_empty());
        }
        if mf.name.as_deref() == Some("request_duration_seconds_native2") {
            assert_eq!(mf.metric[0].histogram.as_ref().unwrap().schema, Some(0));
        }
        names.push(mf.name.unwrap());
    }
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "families sorted by name: {names:?}"
    );
    for want in [
        "instances_active_session",
        "request_duration_seconds_native",
        "request_duration_seconds_native2",
        "total_http_requests",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
}
