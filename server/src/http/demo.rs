//! The demo web app (`clients/demo`), served at `/` when `SWITCHBOARD_DEMO` is on.
//!
//! Its three built files are embedded in the binary, not read from disk, so that `cargo run`
//! alone gives a working page: there is no asset directory to locate at run time, and the page
//! always matches the server that serves it. They are small (one page, one script, one sheet).

use std::sync::LazyLock;

use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::AppState;

/// The page may load only its own script, sheet and images (and `data:` images), talk only to
/// this origin over HTTP and WebSocket, and not be framed, re-based or used to post forms: an
/// injected string in a message cannot pull in script or send data elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// Sent with every demo response, 304s included. `no-cache` (store, but revalidate every time)
/// because the files change with each build of the binary while their URLs stay the same; the
/// ETag makes the revalidation a 304 without a body.
const HEADERS: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-cache"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// One embedded file, with its ETag computed once.
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(bytes: &'static [u8], content_type: &'static str) -> Asset {
        // The first 128 bits of the SHA-256 of the bytes: the tag changes exactly when they do.
        let digest = Sha256::digest(bytes);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{hex}\""))
            .expect("a quoted hex string is a valid header value");
        Asset {
            bytes,
            content_type,
            etag,
        }
    }

    /// The file, or 304 when `If-None-Match` names its current tag.
    fn serve(&self, request: &HeaderMap) -> Response {
        let mut headers = HeaderMap::new();
        for (name, value) in HEADERS {
            headers.insert(name, HeaderValue::from_static(value));
        }
        headers.insert(header::ETAG, self.etag.clone());
        if self.matches(request) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        (headers, Bytes::from_static(self.bytes)).into_response()
    }

    /// `If-None-Match` lists this tag (compared weakly, as RFC 9110 asks for this header), or
    /// is `*`.
    fn matches(&self, request: &HeaderMap) -> bool {
        let ours = self.etag.as_bytes();
        request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == ours)
    }
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../clients/demo/dist/index.html"
        )),
        "text/html; charset=utf-8",
    )
});

static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../clients/demo/dist/app.js"
        )),
        "text/javascript; charset=utf-8",
    )
});

static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../clients/demo/dist/app.css"
        )),
        "text/css; charset=utf-8",
    )
});

/// `GET` (and so `HEAD`) of the three files; other methods get the router's JSON 405.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { INDEX.serve(&h) }))
        .route(
            "/demo/app.js",
            get(|h: HeaderMap| async move { SCRIPT.serve(&h) }),
        )
        .route(
            "/demo/app.css",
            get(|h: HeaderMap| async move { STYLE.serve(&h) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(tags: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for tag in tags {
            headers.append(header::IF_NONE_MATCH, HeaderValue::from_str(tag).unwrap());
        }
        headers
    }

    #[test]
    fn if_none_match_is_compared_weakly_in_any_list() {
        let asset = Asset::new(b"body { }", "text/css; charset=utf-8");
        let ours = asset.etag.to_str().unwrap().to_owned();
        assert_eq!(ours.len(), 34, "{ours}");
        assert!(!asset.matches(&asking(&[])));
        assert!(asset.matches(&asking(&[&ours])));
        assert!(asset.matches(&asking(&[&format!("W/{ours}")])));
        assert!(asset.matches(&asking(&[&format!("\"old\", {ours}")])));
        assert!(asset.matches(&asking(&["\"old\"", &ours])));
        assert!(asset.matches(&asking(&["*"])));
        assert!(!asset.matches(&asking(&["\"old\""])));
        let other = Asset::new(b"body { color: red }", "text/css; charset=utf-8");
        assert_ne!(other.etag, asset.etag);
    }
}
