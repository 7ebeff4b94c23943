//! Liveness and readiness probes.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use switchboard_protocol::ErrorCode;

use super::bodies::Status;
use super::error::ApiError;
use super::extract::Json;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up and serving HTTP.
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Storage answers, every background worker runs, and the node is not draining: a load balancer
/// may send traffic here.
async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::new(ErrorCode::Unavailable, "shutting down"));
    }
    if !state.store.ping().await {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "storage is unreachable",
        ));
    }
    let down = state.workers.down();
    if !down.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("background workers not running: {}", down.join(", ")),
        ));
    }
    Ok(Json(Status { status: "ready" }))
}
