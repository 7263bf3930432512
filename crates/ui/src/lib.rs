//! The querier's web UI, embedded in the binary.
//!
//! The page (a PromQL editor with completion, table and graph views, Thanos's dedup / partial
//! response / max source resolution toggles, and a stores page) is a small TypeScript app in `/ui`,
//! built by vite into `crates/ui/assets/`. That build output is committed, and `build.rs` embeds
//! every file in it, so `cargo build` alone produces a binary with the UI inside.
//!
//! [`router`] serves the page at `/`, `/graph` and `/stores`, and the bundle under `/static/`. The
//! page calls the Prometheus HTTP API (`/api/v1/...`) and Thanos's `/api/v1/stores` relative to its
//! own URL, so the querier merges this router next to its API routes (or nests both under a prefix).

pub mod testing;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file of the built UI.
#[derive(Debug)]
pub struct Asset {
    /// Path relative to `assets/`, e.g. `index.html`, `static/index-abc123.js`.
    pub path: &'static str,
    pub bytes: &'static [u8],
    /// The same bytes gzip-compressed at build time, when the file is text.
    pub gzip: Option<&'static [u8]>,
    pub content_type: &'static str,
    /// A quoted strong ETag of `bytes`.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The HTML page every UI route answers with; the script picks the view from the path.
pub const INDEX: &str = "index.html";

/// Hashed bundle files never change under the same name: caches may keep them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page itself names the current bundle, so browsers must revalidate it (cheap, with the ETag).
const REVALIDATE: &str = "no-cache";

/// All embedded files.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// The embedded file at `path` (relative to `assets/`), if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Routes `/`, `/graph`, `/stores` (the page) and `/static/{file}` (its bundle); GET and HEAD.
pub fn router() -> Router {
    Router::new()
        .route("/", get(page))
        .route("/graph", get(page))
        .route("/stores", get(page))
        .route("/static/{*file}", get(static_file))
}

async fn page(headers: HeaderMap) -> Response {
    match asset(INDEX) {
        Some(a) => serve(a, &headers, REVALIDATE),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "the UI was built without index.html").into_response(),
    }
}

async fn static_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match asset(&format!("static/{file}")) {
        Some(a) => serve(a, &headers, IMMUTABLE),
        None => (StatusCode::NOT_FOUND, format!("no UI asset static/{file}\n")).into_response(),
    }
}

fn serve(asset: &'static Asset, request: &HeaderMap, cache_control: &'static str) -> Response {
    let mut response = if etag_matches(request, asset.etag) {
        Response::builder().status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        let gzip = asset.gzip.filter(|_| accepts_gzip(request));
        let mut builder = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, asset.content_type);
        if gzip.is_some() {
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
        }
        builder.body(Body::from(gzip.unwrap_or(asset.bytes)))
    }
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if asset.gzip.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    response
}

/// `If-None-Match` lists our ETag (or `*`).
fn etag_matches(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// `Accept-Encoding` names gzip (or `*`) without `q=0`.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn fetch(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    async fn body(resp: Response) -> Vec<u8> {
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    fn bundle(ext: &str) -> &'static Asset {
        assets()
            .iter()
            .find(|a| a.path.starts_with("static/") && a.path.ends_with(ext))
            .unwrap_or_else(|| panic!("no static/*{ext} embedded"))
    }

    #[tokio::test]
    async fn every_page_route_serves_the_same_html() {
        for path in ["/", "/graph", "/stores"] {
            let resp = fetch(path, &[]).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
            let html = String::from_utf8(body(resp).await).unwrap();
            assert!(html.contains("<main id=\"app\">"), "{path}: {html}");
        }
    }

    #[tokio::test]
    async fn the_page_names_embedded_bundles_by_relative_url() {
        let html = String::from_utf8(asset(INDEX).unwrap().bytes.to_vec()).unwrap();
        let js = bundle(".js");
        let css = bundle(".css");
        // Relative, so the page works behind a route prefix too.
        assert!(html.contains(&format!("\"./{}\"", js.path)), "{html}");
        assert!(html.contains(&format!("\"./{}\"", css.path)), "{html}");
    }

    #[tokio::test]
    async fn static_files_have_types_and_long_caching() {
        for (ext, ty) in [
            (".js", "text/javascript; charset=utf-8"),
            (".css", "text/css; charset=utf-8"),
        ] {
            let a = bundle(ext);
            let resp = fetch(&format!("/{}", a.path), &[]).await;
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()[header::CONTENT_TYPE], ty);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], IMMUTABLE);
            assert_eq!(resp.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
            assert_eq!(body(resp).await, a.bytes);
        }
    }

    #[tokio::test]
    async fn gzip_twin_is_served_to_browsers_that_accept_it() {
        let a = bundle(".js");
        let resp = fetch(&format!("/{}", a.path), &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(resp.headers()[header::VARY], "Accept-Encoding");
        let gz = body(resp).await;
        assert_eq!(gz, a.gzip.unwrap());
        assert!(gz.len() < a.bytes.len() / 2, "{} vs {}", gz.len(), a.bytes.len());

        let refused = fetch(&format!("/{}", a.path), &[("accept-encoding", "gzip;q=0, identity")]).await;
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[tokio::test]
    async fn etag_revalidation_answers_not_modified() {
        let etag = asset(INDEX).unwrap().etag;
        let resp = fetch("/graph", &[("if-none-match", etag)]).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert!(body(resp).await.is_empty());
        let other = fetch("/graph", &[("if-none-match", "\"0000000000000000\"")]).await;
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_static_file_is_404_and_head_works() {
        assert_eq!(fetch("/static/nope.js", &[]).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            fetch("/static/../index.html", &[]).await.status(),
            StatusCode::NOT_FOUND
        );
        let head = router()
            .oneshot(Request::head("/stores").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert!(body(head).await.is_empty());
    }

    #[test]
    fn accept_encoding_parsing() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&m)
        };
        assert!(h("gzip"));
        assert!(h("br, GZIP;q=0.5"));
        assert!(h("*"));
        assert!(!h("br"));
        assert!(!h("gzip;q=0"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
