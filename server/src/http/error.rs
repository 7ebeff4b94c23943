//! The one HTTP error type: every failure becomes a status and a JSON body
//! `{"error":{"code":"...","message":"..."}}`. Internal causes are logged, never sent.
//!
//! Codes and statuses come from the one table, `switchboard_protocol::ErrorCode`. Each domain
//! error says its own code once (`AuthError::code`, `AccessError::code`, `publish::Error::code`,
//! ...), and both transports derive from that: this type for HTTP, the `error` frame for
//! WebSocket.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_protocol::ErrorCode;

use crate::auth::AuthError;
use crate::authz::AccessError;
use crate::chat::lifecycle::LifecycleError;
use crate::chat::reads::ReadError;
use crate::payload::PayloadError;
use crate::publish;
use crate::store::members::Refusal;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is refused: the client is told `code` and `message`.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// A server fault: logged with its cause chain, answered `500 internal` without it.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::Refused {
            code,
            message: message.into(),
        }
    }

    /// A domain error as HTTP: its code and message, or (for a server fault) the cause kept for
    /// the log.
    fn domain<E>(code: ErrorCode, e: E) -> ApiError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        match code {
            ErrorCode::Internal => ApiError::Internal(e.into()),
            code => ApiError::new(code, e.to_string()),
        }
    }

    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            ApiError::Refused { code, .. } => *code,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: ErrorCode,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let code = self.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = self.to_string();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: &message,
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Internal(e) => ApiError::Internal(e),
            e => ApiError::new(e.code(), e.to_string()),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        if let AccessError::Storage(cause) = &e {
            tracing::warn!(error = ?cause, "an access check could not read storage");
        }
        ApiError::domain(e.code(), e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::domain(e.code(), e)
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Access(a) => a.into(),
            ReadError::Store(s) => s.into(),
            e => ApiError::domain(e.code(), e),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Publish(p) => p.into(),
            LifecycleError::Store(s) => s.into(),
            e => ApiError::domain(e.code(), e),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(e: Refusal) -> Self {
        ApiError::domain(e.code(), e)
    }
}

impl From<publish::Error> for ApiError {
    fn from(e: publish::Error) -> Self {
        match e {
            publish::Error::Access(a) => a.into(),
            e => ApiError::domain(e.code(), e),
        }
    }
}

impl From<PayloadError> for ApiError {
    fn from(e: PayloadError) -> Self {
        ApiError::domain(e.code(), e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            // Well-formed JSON of the wrong shape: 422, as for failed validation.
            JsonRejection::JsonDataError(e) => {
                ApiError::new(ErrorCode::Unprocessable, e.body_text())
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(ErrorCode::TooLarge, "request body too large")
            }
            other => ApiError::new(ErrorCode::BadRequest, other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}
