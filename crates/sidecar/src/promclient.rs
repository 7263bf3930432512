//! The Prometheus HTTP API calls the sidecar makes: configuration and flags, `/metrics` for the
//! lowest timestamp, the label APIs, remote read, and `/-/reload`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hypnos_model::{Labels, MatchOp, Matcher};
use prost::Message;
use serde::Deserialize;

use crate::frames::{FrameDecoder, FrameError};
use crate::prompb::{self, ChunkedReadResponse, ReadRequest, ReadResponse};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// For the small metadata calls; remote read has no overall timeout (it streams).
const API_TIMEOUT: Duration = Duration::from_secs(60);
/// Error bodies are quoted in messages up to this many bytes.
const MAX_ERROR_BODY: usize = 1024;

/// Content type of a streamed remote-read response.
pub const STREAMED_CONTENT_TYPE: &str = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
/// Content type of a sampled remote-read response.
pub const SAMPLED_CONTENT_TYPE: &str = "application/x-protobuf";

#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("invalid Prometheus URL {url:?}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("Prometheus at {url} is unreachable: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Prometheus at {url} answered HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("Prometheus at {url} answered with an error ({error_type}): {error}")]
    Api {
        url: String,
        error_type: String,
        error: String,
    },
    #[error("unexpected answer from Prometheus at {url}: {message}")]
    BadResponse { url: String, message: String },
    #[error("remote read from {url}: {source}")]
    Frame {
        url: String,
        #[source]
        source: FrameError,
    },
}

impl PromError {
    /// Whether Prometheus could not be reached at all (down or restarting: a starting
    /// Prometheus answers 503 until its WAL is replayed), as opposed to answering something
    /// wrong.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            PromError::Unreachable { .. } | PromError::Status { status: 503, .. }
        )
    }
}

/// A client of one Prometheus server.
#[derive(Clone, Debug)]
pub struct PromClient {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ApiEnvelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType", default)]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

#[derive(Deserialize, Default)]
struct PromConfig {
    #[serde(default)]
    global: Option<GlobalConfig>,
}

#[derive(Deserialize, Default)]
struct GlobalConfig {
    #[serde(default)]
    external_labels: Option<BTreeMap<String, String>>,
}

/// Either form of a remote-read answer.
pub enum ReadStream {
    /// `STREAMED_XOR_CHUNKS`: frames are read as they arrive.
    Chunked(ChunkedStream),
    /// `SAMPLES` (a Prometheus without streaming): the whole decoded answer.
    Sampled(ReadResponse),
}

pub struct ChunkedStream {
    url: String,
    resp: reqwest::Response,
    decoder: FrameDecoder,
    done: bool,
}

impl ChunkedStream {
    /// The next `ChunkedReadResponse`, `None` at the end of the stream.
    pub async fn next(&mut self) -> Result<Option<ChunkedReadResponse>, PromError> {
        loop {
            let frame = self.decoder.next_frame().map_err(|source| PromError::Frame {
                url: self.url.clone(),
                source,
            })?;
            if frame.is_some() {
                return Ok(frame);
            }
            if self.done {
                self.decoder.finish().map_err(|source| PromError::Frame {
                    url: self.url.clone(),
                    source,
                })?;
                return Ok(None);
            }
            match self.resp.chunk().await {
                Ok(Some(piece)) => self.decoder.push(&piece),
                Ok(None) => self.done = true,
                Err(source) => {
                    return Err(PromError::Unreachable {
                        url: self.url.clone(),
                        source,
                    });
                }
            }
        }
    }
}

impl PromClient {
    pub fn new(url: &str) -> Result<Self, PromError> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() <= "http://".len() {
            return Err(PromError::InvalidUrl {
                url: url.to_string(),
                message: "want http://host:port".into(),
            });
        }
        if base.starts_with("https://") {
            return Err(PromError::InvalidUrl {
                url: url.to_string(),
                message: "https is not supported yet; use http://".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| PromError::InvalidUrl {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        Ok(PromClient { base, http })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, source: reqwest::Error) -> PromError {
        PromError::Unreachable {
            url: self.base.clone(),
            source,
        }
    }

    async fn check_status(&self, resp: reqwest::Response) -> Result<reqwest::Response, PromError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)])
            .trim()
            .to_string();
        // The API envelope's error is the clearest message when there is one.
        if let Ok(env) = serde_json::from_slice::<ApiEnvelope<serde_json::Value>>(&body)
            && env.status == "error"
        {
            return Err(PromError::Api {
                url: self.base.clone(),
                error_type: env.error_type,
                error: env.error,
            });
        }
        Err(PromError::Status {
            url: self.base.clone(),
            status: status.as_u16(),
            body: text,
        })
    }

    async fn api_get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, PromError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .timeout(API_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let resp = self.check_status(resp).await?;
        let body = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        let env: ApiEnvelope<T> = serde_json::from_slice(&body).map_err(|e| PromError::BadResponse {
            url: self.base.clone(),
            message: format!("{path}: {e}"),
        })?;
        if env.status != "success" {
            return Err(PromError::Api {
                url: self.base.clone(),
                error_type: env.error_type,
                error: env.error,
            });
        }
        env.data.ok_or_else(|| PromError::BadResponse {
            url: self.base.clone(),
            message: format!("{path}: no data"),
        })
    }

    /// `global.external_labels` of the running configuration (`/api/v1/status/config`).
    pub async fn external_labels(&self) -> Result<Labels, PromError> {
        let data: ConfigData = self.api_get("/api/v1/status/config", &[]).await?;
        parse_external_labels(&data.yaml).map_err(|message| PromError::BadResponse {
            url: self.base.clone(),
            message: format!("parsing the configuration from /api/v1/status/config: {message}"),
        })
    }

    /// Command-line flags (`/api/v1/status/flags`), names without the leading `--`.
    pub async fn flags(&self) -> Result<BTreeMap<String, String>, PromError> {
        self.api_get("/api/v1/status/flags", &[]).await
    }

    /// The lowest timestamp in Prometheus's TSDB (ms) from its own `/metrics`, as Thanos reads
    /// it; `None` while the TSDB is empty.
    pub async fn lowest_timestamp_ms(&self) -> Result<Option<i64>, PromError> {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .timeout(API_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let text = self
            .check_status(resp)
            .await?
            .text()
            .await
            .map_err(|e| self.unreachable(e))?;
        parse_lowest_timestamp(&text).ok_or_else(|| PromError::BadResponse {
            url: self.base.clone(),
            message: "/metrics has no prometheus_tsdb_lowest_timestamp gauge".into(),
        })
    }

    /// `/api/v1/labels`, with `match[]` when there are matchers.
    pub async fn label_names(&self, start: i64, end: i64, matchers: &[Matcher]) -> Result<Vec<String>, PromError> {
        let q = label_query(start, end, matchers);
        self.api_get("/api/v1/labels", &q).await
    }

    /// `/api/v1/series` for one selector: the label sets of the series with data in
    /// `[start, end]`.
    pub async fn series(
        &self,
        start: i64,
        end: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<BTreeMap<String, String>>, PromError> {
        let q = label_query(start, end, matchers);
        self.api_get("/api/v1/series", &q).await
    }

    /// `/api/v1/label/<name>/values`, with `match[]` when there are matchers.
    pub async fn label_values(
        &self,
        name: &str,
        start: i64,
        end: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, PromError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(PromError::BadResponse {
                url: self.base.clone(),
                message: format!("label name {name:?} is not a valid Prometheus label name"),
            });
        }
        let q = label_query(start, end, matchers);
        self.api_get(&format!("/api/v1/label/{name}/values"), &q).await
    }

    /// `POST /api/v1/read` with one query, asking for streamed XOR chunks.
    pub async fn remote_read(&self, query: prompb::Query) -> Result<ReadStream, PromError> {
        let req = ReadRequest {
            queries: vec![query],
            accepted_response_types: vec![
                prompb::ResponseType::StreamedXorChunks as i32,
                prompb::ResponseType::Samples as i32,
            ],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .map_err(|e| PromError::BadResponse {
                url: self.base.clone(),
                message: format!("snappy-compressing the read request: {e}"),
            })?;
        let resp = self
            .http
            .post(format!("{}/api/v1/read", self.base))
            .header("Content-Encoding", "snappy")
            .header("Accept-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let resp = self.check_status(resp).await?;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if content_type.starts_with("application/x-streamed-protobuf") {
            if !content_type.contains("proto=prometheus.ChunkedReadResponse") {
                return Err(PromError::BadResponse {
                    url: self.base.clone(),
                    message: format!("remote read answered with unknown streamed type {content_type:?}"),
                });
            }
            return Ok(ReadStream::Chunked(ChunkedStream {
                url: self.base.clone(),
                resp,
                decoder: FrameDecoder::new(crate::frames::DEFAULT_MAX_FRAME_BYTES),
                done: false,
            }));
        }
        if content_type.starts_with(SAMPLED_CONTENT_TYPE) {
            let body = resp.bytes().await.map_err(|e| self.unreachable(e))?;
            return self.decode_sampled(&body).map(ReadStream::Sampled);
        }
        Err(PromError::BadResponse {
            url: self.base.clone(),
            message: format!("remote read answered with content type {content_type:?}, want {STREAMED_CONTENT_TYPE:?}"),
        })
    }

    fn decode_sampled(&self, body: &Bytes) -> Result<ReadResponse, PromError> {
        let bad = |message: String| PromError::BadResponse {
            url: self.base.clone(),
            message,
        };
        let len = snap::raw::decompress_len(body).map_err(|e| bad(format!("sampled remote read: snappy: {e}")))?;
        // The server's own limit on the decoded answer is far below this; refuse absurd claims.
        if len > 1 << 30 {
            return Err(bad(format!("sampled remote read claims {len} bytes uncompressed")));
        }
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| bad(format!("sampled remote read: snappy: {e}")))?;
        ReadResponse::decode(raw.as_slice()).map_err(|e| bad(format!("sampled remote read: {e}")))
    }

    /// `POST /-/reload` (needs Prometheus's `--web.enable-lifecycle`).
    pub async fn reload(&self) -> Result<(), PromError> {
        let resp = self
            .http
            .post(format!("{}/-/reload", self.base))
            .timeout(API_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.check_status(resp).await.map(|_| ())
    }
}

/// `global.external_labels` from a Prometheus configuration in YAML.
pub fn parse_external_labels(yaml: &str) -> Result<Labels, String> {
    let cfg: PromConfig = if yaml.trim().is_empty() {
        PromConfig::default()
    } else {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?
    };
    let labels = cfg.global.and_then(|g| g.external_labels).unwrap_or_default();
    Ok(Labels::from_pairs(labels.into_iter().filter(|(_, v)| !v.is_empty())))
}

/// The value of `prometheus_tsdb_lowest_timestamp` (ms; falls back to the `_seconds` gauge),
/// `Some(None)` when it says the TSDB is empty (Go's MaxInt64), `None` when absent.
pub fn parse_lowest_timestamp(metrics: &str) -> Option<Option<i64>> {
    let value = |name: &str| {
        metrics.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = rest.strip_prefix(' ')?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
    };
    let ms = value("prometheus_tsdb_lowest_timestamp")
        .or_else(|| value("prometheus_tsdb_lowest_timestamp_seconds").map(|s| s * 1000.0))?;
    // An empty TSDB reports MaxInt64 (ms), i.e. ~9.22e18.
    if !ms.is_finite() || ms >= 9.0e18 || ms <= -9.0e18 {
        return Some(None);
    }
    Some(Some(ms as i64))
}

/// Prometheus accepts RFC 3339 or Unix seconds between year 0 and 9999; requests arrive with
/// the full int64 range, so they are clamped to what it parses.
const PROM_MIN_MS: i64 = -62_135_596_800_000;
const PROM_MAX_MS: i64 = 253_402_300_799_000;

fn format_seconds(ms: i64) -> String {
    let ms = ms.clamp(PROM_MIN_MS, PROM_MAX_MS);
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

fn label_query(start: i64, end: i64, matchers: &[Matcher]) -> Vec<(&'static str, String)> {
    let mut q = vec![("start", format_seconds(start)), ("end", format_seconds(end))];
    if !matchers.is_empty() {
        q.push(("match[]", selector(matchers)));
    }
    q
}

/// A PromQL series selector `{a="b",c=~"d"}` for matchers.
pub fn selector(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers
        .iter()
        .map(|m| {
            let op = match m.op {
                MatchOp::Equal => "=",
                MatchOp::NotEqual => "!=",
                MatchOp::RegexMatch => "=~",
                MatchOp::RegexNoMatch => "!~",
            };
            format!("{}{op}{}", m.name, quote(&m.value))
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// A PromQL double-quoted string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_labels_from_prometheus_yaml() {
        let yaml = "global:\n  scrape_interval: 1s\n  external_labels:\n    cluster: c1\n    replica: \"0\"\nscrape_configs:\n- job_name: prom\n";
        let ls = parse_external_labels(yaml).unwrap();
        assert_eq!(ls, Labels::from_pairs([("cluster", "c1"), ("replica", "0")]));
        assert!(
            parse_external_labels("global:\n  scrape_interval: 1s\n")
                .unwrap()
                .is_empty()
        );
        assert!(parse_external_labels("").unwrap().is_empty());
        assert!(parse_external_labels("global: [unclosed").is_err());
    }

    #[test]
    fn lowest_timestamp() {
        let m = "# TYPE prometheus_tsdb_lowest_timestamp gauge\nprometheus_tsdb_lowest_timestamp 1.7e+12\nprometheus_tsdb_lowest_timestamp_seconds 1.7e+09\n";
        assert_eq!(parse_lowest_timestamp(m), Some(Some(1_700_000_000_000)));
        let empty = "prometheus_tsdb_lowest_timestamp 9.223372036854776e+18\n";
        assert_eq!(parse_lowest_timestamp(empty), Some(None));
        let secs = "prometheus_tsdb_lowest_timestamp_seconds 1.7e+09\n";
        assert_eq!(parse_lowest_timestamp(secs), Some(Some(1_700_000_000_000)));
        assert_eq!(parse_lowest_timestamp("up 1\n"), None);
    }

    #[test]
    fn selector_quotes_like_promql() {
        let ms = vec![
            Matcher::equal("job", "a\"b\\c"),
            Matcher::new(MatchOp::RegexMatch, "x", "a|b\n").unwrap(),
        ];
        assert_eq!(selector(&ms), r#"{job="a\"b\\c",x=~"a|b\n"}"#);
    }

    #[test]
    fn seconds_formatting_and_clamping() {
        assert_eq!(format_seconds(1_700_000_000_123), "1700000000.123");
        assert_eq!(format_seconds(-1_500), "-1.500");
        assert_eq!(format_seconds(i64::MIN), "-62135596800.000");
        assert_eq!(format_seconds(i64::MAX), "253402300799.000");
    }

    #[test]
    fn bad_urls() {
        assert!(PromClient::new("localhost:9090").is_err());
        assert!(PromClient::new("http://").is_err());
        assert!(PromClient::new("http://localhost:9090/").is_ok());
    }

    #[test]
    fn a_starting_prometheus_counts_as_unreachable() {
        let status = |status| PromError::Status {
            url: "http://p".into(),
            status,
            body: String::new(),
        };
        assert!(status(503).is_unreachable());
        assert!(!status(500).is_unreachable());
        assert!(!status(400).is_unreachable());
    }
}
