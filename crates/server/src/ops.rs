//! The operational endpoints every component serves on its `--http-address`, like Thanos:
//! `/metrics` (the component's own registry), `/-/healthy` and `/-/ready`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Whether the component is ready to serve; flipped once start-up work is done.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct OpsState {
    pub component: &'static str,
    pub registry: Arc<Registry>,
    pub readiness: Readiness,
}

/// A router with `/metrics`, `/-/healthy` and `/-/ready`; components merge their own routes in.
pub fn ops_router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .with_state(state)
}

async fn metrics(State(s): State<OpsState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding metrics: {e}"),
        ),
    }
}

async fn healthy(State(s): State<OpsState>) -> impl IntoResponse {
    (StatusCode::OK, format!("{} is Healthy.\n", s.component))
}

async fn ready(State(s): State<OpsState>) -> impl IntoResponse {
    if s.readiness.is_ready() {
        (StatusCode::OK, format!("{} is Ready.\n", s.component))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} is not ready.\n", s.component),
        )
    }
}
