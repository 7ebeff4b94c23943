//! The bounds on a `data` payload, checked wherever one enters: WebSocket and HTTP publishes,
//! posts and replies. Past the checks a payload is JSON text that every consumer can handle:
//! small enough for one frame, shallow enough for every client parser.

use serde_json::value::RawValue;
use switchboard_protocol::data::{check_depth, TooDeep, MAX_DEPTH};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PayloadError {
    #[error("data is too large ({len} bytes, limit {limit})")]
    TooLarge { len: usize, limit: usize },
    #[error(transparent)]
    TooDeep(#[from] TooDeep),
}

impl PayloadError {
    /// The wire code of this error (see `switchboard_protocol::ErrorCode`): over WebSocket a
    /// too-deep payload is `bad_request` ([`ErrorCode::on_websocket`]), over HTTP 422.
    ///
    /// [`ErrorCode::on_websocket`]: switchboard_protocol::ErrorCode::on_websocket
    pub(crate) fn code(&self) -> switchboard_protocol::ErrorCode {
        match self {
            PayloadError::TooLarge { .. } => switchboard_protocol::ErrorCode::TooLarge,
            PayloadError::TooDeep(_) => switchboard_protocol::ErrorCode::Unprocessable,
        }
    }
}

/// Checks `data` against the frame size limit (`SWITCHBOARD_MAX_FRAME_BYTES`) and the nesting
/// bound ([`MAX_DEPTH`]).
pub(crate) fn check(data: &RawValue, max_bytes: usize) -> Result<(), PayloadError> {
    let len = data.get().len();
    if len > max_bytes {
        return Err(PayloadError::TooLarge {
            len,
            limit: max_bytes,
        });
    }
    check_depth(data.get(), MAX_DEPTH)?;
    Ok(())
}
