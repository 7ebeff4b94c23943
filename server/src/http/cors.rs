//! CORS for the HTTP API (`SWITCHBOARD_CORS_ORIGINS`): which web pages other than this server's
//! own may call `/api/...` from a browser and read the answers.
//!
//! Only the API: the WebSocket has its own Origin check (`SWITCHBOARD_ALLOWED_ORIGINS`), and the
//! probes and the demo are not meant to be called from other origins. The layer wraps everything
//! that can refuse a request (routing and its 404 / 405, authentication and rate limits in the
//! handlers, the request timeout, the panic catcher), so a preflight is answered before any of
//! them sees it, and their error answers carry `Access-Control-Allow-Origin`: a page can read
//! the JSON error instead of seeing an opaque network failure.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{HeaderName, ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_TYPE};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsOrigins;

/// How long a browser may reuse a preflight's answer: long enough that a page does not
/// preflight every call, short enough that a changed setting reaches open pages soon.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// The CORS rules for `origins`, `None` when no origin is allowed (no CORS headers at all).
///
/// Never `Access-Control-Allow-Credentials`: tokens travel in the `Authorization` header, which
/// a page sets itself, never in cookies, so a cross-origin page gets nothing the user's browser
/// holds for this server. That is also what makes `*` safe to offer.
pub(crate) fn layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow_origin = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
            ])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

/// Middleware: `/api/` requests go through `cors`, the rest straight on. An `OPTIONS` that is
/// not a preflight (no `Access-Control-Request-Method`) also goes straight on, to the usual 405:
/// tower-http would answer every `OPTIONS` itself.
pub(crate) async fn api_only(State(cors): State<CorsLayer>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let plain_options = req.method() == Method::OPTIONS
        && !req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if !api || plain_options {
        return next.run(req).await;
    }
    let Ok(response) = cors.layer(next).oneshot(req).await;
    response
}
