//! The HTTP surface: one router per domain, merged here, with JSON errors throughout.

pub(crate) mod auth;
pub(crate) mod bodies;
pub(crate) mod channels;
pub(crate) mod cors;
pub(crate) mod demo;
pub(crate) mod dms;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod feed;
pub(crate) mod health;
pub(crate) mod lifecycle;
pub(crate) mod members;
pub(crate) mod mutes;
pub(crate) mod notifications;
pub(crate) mod posts;
pub(crate) mod reads;
pub(crate) mod rooms;
pub(crate) mod throttle;
pub(crate) mod users;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use switchboard_protocol::ErrorCode;

use crate::AppState;
pub(crate) use error::ApiError;

/// Body limit for HTTP requests beyond the publish payload limit: room member lists and JSON
/// overhead.
const BODY_OVERHEAD: usize = 64 * 1024;

/// The public routes: the API, `sockets` (the WebSocket route, which lives with the rest of
/// the WebSocket code in `ws`) and, when `SWITCHBOARD_DEMO` is on, the demo app, under one body
/// limit, request timeout and panic catcher; around all of them, CORS for the API when
/// `SWITCHBOARD_CORS_ORIGINS` allows any origin ([`cors`]), and the request trace.
pub(crate) fn router(state: AppState, sockets: Router<AppState>) -> Router {
    let body_limit = state.config.max_frame_bytes + BODY_OVERHEAD;
    let request_timeout = state.config.http_request_timeout;
    let cors = cors::layer(&state.config.cors_origins);
    let mut routes = Router::new();
    if state.config.serves_demo() {
        routes = routes.merge(demo::router());
    }
    let mut app = routes
        .merge(auth::router())
        .merge(rooms::router())
        .merge(members::router())
        .merge(reads::router())
        .merge(lifecycle::router())
        .merge(dms::router())
        .merge(channels::router())
        .merge(users::router())
        .merge(posts::router())
        .merge(feed::router())
        .merge(notifications::router())
        .merge(mutes::router())
        .merge(health::router())
        .merge(sockets)
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(move |req, next| {
            within(request_timeout, req, next)
        }))
        .layer(catch_panics())
        .with_state(state);
    if let Some(cors) = cors {
        // Around the whole routed app, outside the timeout and the panic catcher so that their
        // answers carry CORS headers too. Not with `Router::layer`, which wraps each route on
        // its own: a preflight would then be answered from inside the route's 405 handling.
        app = Router::new()
            .fallback_service(app)
            .layer(axum::middleware::from_fn_with_state(cors, cors::api_only));
    }
    app.layer(TraceLayer::new_for_http())
}

/// The admin listener's routes (`SWITCHBOARD_ADMIN_BIND`): metrics, which the public listener
/// does not serve (they help an attacker time an attack), and the probes.
pub(crate) fn admin_router(state: AppState) -> Router {
    Router::new()
        .merge(crate::metrics::router())
        .merge(health::router())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .layer(catch_panics())
        .with_state(state)
}

/// A JSON body serialised from a typed response that borrows from the handler's locals (stored
/// payloads, `RawValue`s, are spliced in as they are: no value tree is built).
pub(crate) type RawJson = extract::Json<Box<serde_json::value::RawValue>>;

pub(crate) fn respond<T: serde::Serialize>(body: &T) -> Result<RawJson, ApiError> {
    serde_json::value::to_raw_value(body)
        .map(extract::Json)
        .map_err(|e| ApiError::Internal(e.into()))
}

/// A request that takes longer than `SWITCHBOARD_HTTP_REQUEST_TIMEOUT_SECS` (a body trickling
/// in, storage stuck) is answered 503 and its handler dropped. A WebSocket upgrade answers at
/// once; the connection it opens lives on outside the request.
async fn within(
    timeout: std::time::Duration,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            crate::metrics::refused("request_timeout");
            ApiError::new(
                ErrorCode::Unavailable,
                format!(
                "the request did not complete within {} s (SWITCHBOARD_HTTP_REQUEST_TIMEOUT_SECS)",
                timeout.as_secs()
            ),
            )
            .into_response()
        }
    }
}

/// A handler that panics answers 500 with the usual JSON error instead of dropping the
/// connection (and the panic is logged and counted).
fn catch_panics() -> CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> axum::response::Response>
{
    CatchPanicLayer::custom(|panic| {
        crate::metrics::HTTP_PANICS.increment(1);
        let message = crate::workers::panic_message(&*panic);
        ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
    })
}

/// Page size when a request gives no `limit`.
pub(crate) const DEFAULT_PAGE: u32 = 50;

/// A request's `limit`, defaulted and capped by `SWITCHBOARD_HISTORY_MAX`.
pub(crate) fn page_limit(state: &AppState, limit: Option<u32>) -> u32 {
    limit
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, state.config.history_max)
}

/// The cursor for the page after `page`: read from its last item when the page is full (a
/// shorter page is the last one).
pub(crate) fn next_cursor<T, C>(page: &[T], limit: u32, cursor: impl FnOnce(&T) -> C) -> Option<C> {
    if page.len() == limit as usize {
        page.last().map(cursor)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_a_json_error() {
        let app: Router = Router::new()
            .route("/boom", get(|| async { panic!("a bad request") as &str }))
            .layer(catch_panics());
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(
            body["error"]["message"], "internal error",
            "causes are never sent"
        );
    }
}
