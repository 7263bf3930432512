//! The HTTP side of the demo service: the random-status handler, `/metrics`, the populator
//! and the self-load generator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rand::Rng;
use rand::seq::IndexedRandom;

use crate::DemoAppArgs;
use crate::metrics::{DemoMetrics, proto, text};

/// The statuses the handler picks from, as in the seed.
const STATUSES: [u16; 4] = [200, 502, 504, 400];

/// Gauges the populator moves, with their starting values.
const POPULATED: [(&str, f64); 3] = [("development", 5.0), ("staging", 10.0), ("production", 15.0)];
const POPULATE_UP: [f64; 3] = [1.0, 2.0, 1.0];
const POPULATE_DOWN: [f64; 3] = [-2.0, -3.0, -1.0];

/// Instance names the self-load spreads its requests over.
const SELF_LOAD_INSTANCES: [&str; 8] = [
    "prod",
    "staging",
    "dev",
    "canary",
    "ap-south-1",
    "eu-west-1",
    "us-east-1",
    "batch",
];

/// The running service's shared state.
#[derive(Debug)]
pub struct DemoApp {
    pub metrics: DemoMetrics,
    min_delay: Duration,
    max_delay: Duration,
}

impl DemoApp {
    pub fn new(args: &DemoAppArgs) -> Arc<Self> {
        let app = DemoApp {
            metrics: DemoMetrics::new(),
            min_delay: args.min_delay,
            max_delay: args.max_delay.max(args.min_delay),
        };
        for (name, v) in POPULATED {
            app.metrics.set_active_sessions(name, v);
        }
        Arc::new(app)
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", any(handle))
            .route("/throw-random-response", any(handle))
            .route("/metrics", get(metrics))
            .route("/-/healthy", get(|| async { "OK" }))
            .with_state(self.clone())
    }

    fn random_delay(&self) -> Duration {
        if self.max_delay <= self.min_delay {
            return self.min_delay;
        }
        rand::rng().random_range(self.min_delay..=self.max_delay)
    }
}

/// Parses the body: a JSON object whose values are numbers. Anything else is rejected
/// before any metric moves, so a bad request leaves no trace in the metrics.
pub fn parse_sessions(body: &[u8]) -> Option<Vec<(String, f64)>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = value.as_object()?;
    obj.iter().map(|(k, v)| v.as_f64().map(|f| (k.clone(), f))).collect()
}

async fn handle(State(app): State<Arc<DemoApp>>, method: Method, body: Bytes) -> Response {
    let Some(sessions) = parse_sessions(&body) else {
        return (StatusCode::BAD_REQUEST, "Invalid JSON\n").into_response();
    };
    let start = Instant::now();
    app.metrics.inc_total_requests();
    for (name, v) in &sessions {
        app.metrics.set_active_sessions(name, *v);
    }
    let status = *STATUSES.choose(&mut rand::rng()).unwrap_or(&200);
    tokio::time::sleep(app.random_delay()).await;
    app.metrics
        .observe_request(method.as_str(), status, start.elapsed().as_secs_f64());
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (code, "OK").into_response()
}

async fn metrics(State(app): State<Arc<DemoApp>>, headers: HeaderMap) -> Response {
    let families = app.metrics.gather();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if proto::accepts_protobuf(accept) {
        ([(header::CONTENT_TYPE, proto::CONTENT_TYPE)], proto::encode(&families)).into_response()
    } else {
        ([(header::CONTENT_TYPE, text::CONTENT_TYPE)], text::encode(&families)).into_response()
    }
}

/// Moves the three populated gauges alternately up and down, and sends the service one
/// request so that the request metrics move even with no outside traffic.
async fn populate(app: Arc<DemoApp>, interval: Duration, self_url: String) {
    let client = reqwest::Client::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    let mut up = true;
    loop {
        ticker.tick().await;
        let deltas = if up { POPULATE_UP } else { POPULATE_DOWN };
        up = !up;
        let mut last = 0.0;
        for ((name, _), d) in POPULATED.iter().zip(deltas) {
            last = app.metrics.add_active_sessions(name, d);
        }
        let body = serde_json::json!({ "production": last }).to_string();
        if let Err(e) = client.post(&self_url).body(body).send().await {
            tracing::warn!(error = %e, "populator could not reach the service");
        }
    }
}

/// Keeps `rps` requests per second flowing to the service, each for a random instance.
async fn self_load(rps: f64, self_url: String) {
    let client = reqwest::Client::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rps));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let (name, value) = {
            let mut rng = rand::rng();
            let name = *SELF_LOAD_INSTANCES.choose(&mut rng).unwrap_or(&"prod");
            (name, rng.random_range(0..1000))
        };
        let body = serde_json::json!({ name: value }).to_string();
        let (client, url) = (client.clone(), self_url.clone());
        // Requests take up to the maximum delay: send them concurrently to keep the rate.
        tokio::spawn(async move {
            if let Err(e) = client.post(&url).body(body).send().await {
                tracing::debug!(error = %e, "self-load request failed");
            }
        });
    }
}

/// Serves the demo service until `shutdown` resolves.
pub async fn run(
    args: DemoAppArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = DemoApp::new(&args);
    let listener = tokio::net::TcpListener::bind(args.listen_address).await?;
    let local = listener.local_addr()?;
    let self_addr = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    let self_url = format!("http://{self_addr}/");
    tracing::info!(address = %local, "demo-app listening");
    let populator = tokio::spawn(populate(app.clone(), args.populate_interval, self_url.clone()));
    let load = (args.self_load > 0.0).then(|| tokio::spawn(self_load(args.self_load, self_url)));
    let result = axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await;
    populator.abort();
    if let Some(l) = load {
        l.abort();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::parse_sessions;

    #[test]
    fn body_must_be_an_object_of_numbers() {
        assert_eq!(
            parse_sessions(br#"{"prod": 69420}"#),
            Some(vec![("prod".into(), 69420.0)])
        );
        assert_eq!(parse_sessions(b"{}"), Some(vec![]));
        assert_eq!(parse_sessions(b""), None);
        assert_eq!(parse_sessions(b"[1]"), None);
        assert_eq!(parse_sessions(b"5"), None);
        assert_eq!(parse_sessions(br#"{"prod": "x"}"#), None);
        assert_eq!(parse_sessions(b"{not json"), None);
    }
}
