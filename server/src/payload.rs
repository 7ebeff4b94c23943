//! The bounds on a `data` payload, checked wherever one enters: WebSocket and HTTP publishes,
//! posts and replies. Past the checks a payload is JSON text that every consumer can handle:
//! small enough for one frame, shallow enough for every client parser.

use serde_json::value::RawValue;
use switchboard_protocol::data::{check_depth, TooDeep, MAX_DEPTH};

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("data is too large ({len} bytes, limit {limit})")]
    TooLarge { len: usize, limit: usize },
    #[error(transparent)]
    TooDeep(#[from] TooDeep),
}

/// Checks `data` against the frame size limit (`SWITCHBOARD_MAX_FRAME_BYTES`) and the nesting
/// bound ([`MAX_DEPTH`]).
pub fn check(data: &RawValue, max_bytes: usize) -> Result<(), PayloadError> {
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
