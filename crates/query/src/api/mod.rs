//! The Prometheus HTTP API v1 with Thanos's additions (`dedup`, `partial_response`,
//! `replicaLabels[]`, `max_source_resolution`, `storeMatch[]`, `/api/v1/stores`).

pub mod bounds;
pub mod json;
pub mod params;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hypnos_model::{Labels, Matcher};
use hypnos_promql::{Engine, EngineOptions, ErrorType, QueryError, QueryResult, SelectHints, Severity};
use tokio::sync::Semaphore;

use crate::fanout::Fanout;
use crate::storage::{FanoutQueryable, QueryOptions};
use params::{MAX_TIME, MIN_TIME, Params, invalid_param, parse_bool, parse_duration, parse_match_params, parse_time};

/// Everything the handlers share.
#[derive(Debug)]
pub struct ApiState {
    pub fanout: Fanout,
    pub engine: EngineOptions,
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    pub max_concurrent: Arc<Semaphore>,
}

/// An API failure: Prometheus's `errorType` and message.
#[derive(Debug)]
pub struct ApiError {
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            kind: "bad_data",
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        // Prometheus 2.42's respondError mapping.
        match self.kind {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            "canceled" | "timeout" => StatusCode::SERVICE_UNAVAILABLE,
            "not_found" => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Parse(p) => ApiError::bad_data(invalid_param("query", p)),
            // Store failures reach the engine as storage errors; Prometheus's API reports errors
            // that are not its own ErrStorage as `execution`, and so does Thanos's querier.
            QueryError::Storage(s) => ApiError {
                kind: "execution",
                message: s.to_string(),
            },
            other => ApiError {
                kind: match other.error_type() {
                    ErrorType::BadData => "bad_data",
                    ErrorType::Execution => "execution",
                    ErrorType::Timeout => "timeout",
                    ErrorType::Canceled => "canceled",
                    ErrorType::Internal => "internal",
                },
                message: other.to_string(),
            },
        }
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn write_list_field(out: &mut String, name: &str, items: &[String]) {
    if !items.is_empty() {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":");
        json::write_string_list(out, items);
    }
}

const SUCCESS_PREFIX: &str = "{\"status\":\"success\",\"data\":";

/// `{"status":"success","data":…,"warnings":[…],"infos":[…]}`.
fn success(data: &str, warnings: &[String], infos: &[String]) -> Response {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str(SUCCESS_PREFIX);
    out.push_str(data);
    finish_success(out, warnings, infos)
}

/// Closes an envelope whose data [`SUCCESS_PREFIX`] and the caller wrote.
fn finish_success(mut out: String, warnings: &[String], infos: &[String]) -> Response {
    write_list_field(&mut out, "warnings", warnings);
    write_list_field(&mut out, "infos", infos);
    out.push('}');
    json_response(StatusCode::OK, out)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut out = String::from("{\"status\":\"error\",\"errorType\":\"");
        out.push_str(self.kind);
        out.push_str("\",\"error\":");
        json::write_str(&mut out, &self.message);
        out.push('}');
        json_response(self.status(), out)
    }
}

type ApiResult = Result<Response, ApiError>;

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn request_params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
    let form = (is_form(headers) && !body.is_empty()).then_some(&body[..]);
    Params::parse(query.as_deref(), form).map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ApiState {
    /// Thanos's per-request parameters, falling back to the flags.
    fn query_options(&self, p: &Params) -> Result<QueryOptions, ApiError> {
        let dedup = match p.get("dedup") {
            Some(v) => parse_bool("dedup", v).map_err(ApiError::bad_data)?,
            None => true,
        };
        let partial_response = match p.get("partial_response") {
            Some(v) => parse_bool("partial_response", v).map_err(ApiError::bad_data)?,
            None => self.partial_response,
        };
        let mut replica_labels: Vec<String> = p
            .all("replicaLabels[]")
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        if replica_labels.is_empty() {
            replica_labels = self.replica_labels.clone();
        }
        let store_match = parse_match_params(&p.all("storeMatch[]")).map_err(ApiError::bad_data)?;
        let max_resolution_ms = match p.get("max_source_resolution") {
            None | Some("auto") => 0,
            Some(v) => {
                let ms =
                    parse_duration(v).map_err(|e| ApiError::bad_data(invalid_param("max_source_resolution", e)))?;
                if ms < 0 {
                    return Err(ApiError::bad_data(
                        "negative max_source_resolution is not accepted. Try a positive integer",
                    ));
                }
                ms
            }
        };
        Ok(QueryOptions {
            dedup,
            replica_labels,
            partial_response,
            store_match,
            max_resolution_ms,
        })
    }

    /// The engine settings for one request: `timeout` (capped by the flag) and
    /// `lookback_delta`.
    fn engine_for(&self, p: &Params) -> Result<Engine, ApiError> {
        let mut opts = self.engine.clone();
        if let Some(t) = p.get("timeout") {
            let ms = parse_duration(t).map_err(|e| ApiError::bad_data(invalid_param("timeout", e)))?;
            let d = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            opts.timeout = opts.timeout.min(d);
        }
        if let Some(l) = p.get("lookback_delta") {
            let ms = parse_duration(l).map_err(|e| ApiError::bad_data(invalid_param("lookback_delta", e)))?;
            if ms > 0 {
                opts.lookback_delta = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            }
        }
        Ok(Engine::new(opts))
    }

    fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
        let start = match p.get("start") {
            Some(s) => parse_time(s).map_err(|e| ApiError::bad_data(invalid_param("start", e)))?,
            None => MIN_TIME,
        };
        let end = match p.get("end") {
            Some(s) => parse_time(s).map_err(|e| ApiError::bad_data(invalid_param("end", e)))?,
            None => MAX_TIME,
        };
        Ok((start, end))
    }
}

/// Runs a query under the concurrency limit and the timeout, and renders it.
async fn run_query(
    state: &ApiState,
    p: &Params,
    eval: impl AsyncFnOnce(&Engine, &FanoutQueryable) -> Result<QueryResult, QueryError>,
) -> ApiResult {
    let opts = state.query_options(p)?;
    let engine = state.engine_for(p)?;
    let storage = FanoutQueryable::new(state.fanout.clone(), opts);
    let _permit = state.max_concurrent.acquire().await.map_err(|_| ApiError {
        kind: "internal",
        message: "querier is shutting down".into(),
    })?;
    let timeout = engine.options.timeout;
    let res = match tokio::time::timeout(timeout, eval(&engine, &storage)).await {
        Ok(r) => r?,
        Err(_) => return Err(QueryError::Timeout("query execution").into()),
    };
    let mut warnings = storage.take_warnings();
    let mut infos = Vec::new();
    for a in res.annotations.iter() {
        match a.severity {
            Severity::Warning => warnings.push(a.to_string()),
            Severity::Info => infos.push(a.to_string()),
        }
    }
    let mut tail = String::new();
    write_list_field(&mut tail, "warnings", &warnings);
    write_list_field(&mut tail, "infos", &infos);
    tail.push('}');
    let mut pieces = json::QueryDataPieces::new(SUCCESS_PREFIX, res.value, tail);
    let first = pieces.next().unwrap_or_default();
    if pieces.is_done() {
        return Ok(json_response(StatusCode::OK, first));
    }
    // A large answer goes out in pieces as the connection takes them (chunked encoding), so
    // its text is never held in full, and each series is freed once written. The status is
    // sent with the first piece; nothing can fail after it: the value is already evaluated and
    // writing it as JSON cannot fail.
    let pieces = std::iter::once(first)
        .chain(pieces)
        .map(|p| Ok::<_, Infallible>(Bytes::from(p)));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures::stream::iter(pieces)),
    )
        .into_response())
}

async fn query(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = request_params(q, &headers, &body)?;
    let t = match p.get("time") {
        Some(t) => parse_time(t).map_err(|e| ApiError::bad_data(invalid_param("time", e)))?,
        None => now_ms(),
    };
    let expr = p.get("query").unwrap_or("").to_string();
    run_query(&s, &p, async |engine, storage| {
        engine.instant_query(storage, &expr, t, None).await
    })
    .await
}

async fn query_range(
    State(s): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = request_params(q, &headers, &body)?;
    let start = parse_time(p.get("start").unwrap_or("")).map_err(|e| ApiError::bad_data(invalid_param("start", e)))?;
    let end = parse_time(p.get("end").unwrap_or("")).map_err(|e| ApiError::bad_data(invalid_param("end", e)))?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    let step = parse_duration(p.get("step").unwrap_or("")).map_err(|e| ApiError::bad_data(invalid_param("step", e)))?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > 11_000 {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let expr = p.get("query").unwrap_or("").to_string();
    run_query(&s, &p, async |engine, storage| {
        engine.range_query(storage, &expr, start, end, step, None).await
    })
    .await
}

fn storage_error(e: hypnos_promql::StorageError) -> ApiError {
    ApiError {
        kind: "execution",
        message: e.to_string(),
    }
}

async fn series(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = request_params(q, &headers, &body)?;
    let matches = p.all("match[]");
    if matches.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = ApiState::time_range(&p)?;
    let sets = parse_match_params(&matches).map_err(ApiError::bad_data)?;
    let storage = FanoutQueryable::new(s.fanout.clone(), s.query_options(&p)?);
    let hints = SelectHints {
        start,
        end,
        ..Default::default()
    };
    let mut all: BTreeSet<Labels> = BTreeSet::new();
    for ms in &sets {
        for series in storage.fetch(&hints, ms, true).await.map_err(storage_error)? {
            all.insert(series.labels);
        }
    }
    let mut data = String::from("[");
    for (i, l) in all.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        json::write_labels(&mut data, l);
    }
    data.push(']');
    Ok(success(&data, &storage.take_warnings(), &[]))
}

async fn labels(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = request_params(q, &headers, &body)?;
    let (start, end) = ApiState::time_range(&p)?;
    let sets = parse_match_params(&p.all("match[]")).map_err(ApiError::bad_data)?;
    let storage = FanoutQueryable::new(s.fanout.clone(), s.query_options(&p)?);
    let mut names = BTreeSet::new();
    if sets.is_empty() {
        names.extend(
            hypnos_promql::Queryable::label_names(&storage, start, end, &[])
                .await
                .map_err(storage_error)?,
        );
    } else {
        for ms in &sets {
            names.extend(
                hypnos_promql::Queryable::label_names(&storage, start, end, ms)
                    .await
                    .map_err(storage_error)?,
            );
        }
    }
    let names: Vec<String> = names.into_iter().collect();
    let mut data = String::new();
    json::write_string_list(&mut data, &names);
    Ok(success(&data, &storage.take_warnings(), &[]))
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

async fn label_values(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = request_params(q, &headers, &body)?;
    if !valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let (start, end) = ApiState::time_range(&p)?;
    let sets = parse_match_params(&p.all("match[]")).map_err(ApiError::bad_data)?;
    let storage = FanoutQueryable::new(s.fanout.clone(), s.query_options(&p)?);
    let mut values = BTreeSet::new();
    let no_matchers: Vec<Vec<Matcher>> = vec![Vec::new()];
    for ms in if sets.is_empty() { &no_matchers } else { &sets } {
        values.extend(
            hypnos_promql::Queryable::label_values(&storage, &name, start, end, ms)
                .await
                .map_err(storage_error)?,
        );
    }
    let values: Vec<String> = values.into_iter().collect();
    let mut data = String::new();
    json::write_string_list(&mut data, &values);
    Ok(success(&data, &storage.take_warnings(), &[]))
}

async fn metadata() -> Response {
    // No endpoint of ours serves the metadata API yet; an empty map is what Prometheus returns
    // when it knows no metric.
    success("{}", &[], &[])
}

async fn empty_list() -> Response {
    success("[]", &[], &[])
}

async fn rules() -> Response {
    success("{\"groups\":[]}", &[], &[])
}

async fn alerts() -> Response {
    success("{\"alerts\":[]}", &[], &[])
}

async fn buildinfo() -> Response {
    let mut data = String::from("{\"version\":");
    json::write_str(&mut data, env!("CARGO_PKG_VERSION"));
    data.push_str(
        ",\"revision\":\"unknown\",\"branch\":\"unknown\",\"buildUser\":\"unknown\",\"buildDate\":\"unknown\",\"goVersion\":",
    );
    json::write_str(&mut data, "rust");
    data.push('}');
    success(&data, &[], &[])
}

/// Thanos's `/api/v1/stores`: endpoints grouped by component type.
async fn stores(State(s): State<Arc<ApiState>>) -> Response {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ep in &s.fanout.set.endpoints {
        let st = ep.status();
        let mut o = String::from("{\"name\":");
        json::write_str(&mut o, &ep.addr);
        o.push_str(",\"lastCheck\":");
        let check = st
            .last_check
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        if check == 0 {
            o.push_str("\"0001-01-01T00:00:00Z\"");
        } else {
            json::write_str(&mut o, &params::format_rfc3339_nano(check));
        }
        o.push_str(",\"lastError\":");
        match &st.last_error {
            Some(e) => json::write_str(&mut o, e),
            None => o.push_str("null"),
        }
        o.push_str(",\"labelSets\":[");
        let info = st.info.clone().unwrap_or_default();
        for (i, ls) in info.label_sets.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            json::write_labels(&mut o, ls);
        }
        o.push_str(&format!(
            "],\"minTime\":{},\"maxTime\":{}}}",
            info.min_time, info.max_time
        ));
        let kind = if info.component_type.is_empty() {
            "unknown".to_string()
        } else {
            info.component_type
        };
        groups.entry(kind).or_default().push(o);
    }
    let mut data = String::from("{");
    for (i, (k, v)) in groups.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        json::write_str(&mut data, k);
        data.push_str(":[");
        data.push_str(&v.join(","));
        data.push(']');
    }
    data.push('}');
    success(&data, &[], &[])
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

/// The API routes under `/api/v1`.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/query_exemplars", get(empty_list).post(empty_list))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/stores", get(stores))
        .fallback(not_found)
        .with_state(state)
}
