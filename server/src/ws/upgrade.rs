//! The HTTP/1.1 WebSocket handshake (RFC 6455 §4.2), done here rather than by axum's
//! `WebSocketUpgrade` because the connection needs the upgraded socket itself: the hub writes
//! pre-framed messages straight into it ([`super::conn`]), which axum's wrapper (a
//! tungstenite stream owning the socket) does not allow.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::upgrade::OnUpgrade;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use switchboard_protocol::ErrorCode;

use crate::http::ApiError;

/// A valid WebSocket upgrade request, not yet answered.
pub(super) struct Handshake {
    key: HeaderValue,
    offered: Vec<String>,
    pub on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        if parts.method != Method::GET {
            return Err(refuse("the method must be GET"));
        }
        if !header_has_token(&parts.headers, CONNECTION, "upgrade") {
            return Err(refuse("Connection must include \"upgrade\""));
        }
        if !header_has_token(&parts.headers, UPGRADE, "websocket") {
            return Err(refuse("Upgrade must be \"websocket\""));
        }
        if parts
            .headers
            .get(SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes())
            != Some(b"13")
        {
            return Err(refuse("Sec-WebSocket-Version must be 13"));
        }
        let Some(key) = parts.headers.get(SEC_WEBSOCKET_KEY).cloned() else {
            return Err(refuse("Sec-WebSocket-Key is missing"));
        };
        // The key is 16 random bytes in base64 (RFC 6455 §4.1).
        if STANDARD.decode(key.as_bytes()).map(|k| k.len()) != Ok(16) {
            return Err(refuse("Sec-WebSocket-Key must be 16 bytes in base64"));
        }
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(refuse("this connection cannot be upgraded"));
        };
        let offered = parts
            .headers
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        Ok(Handshake {
            key,
            offered,
            on_upgrade,
        })
    }
}

impl Handshake {
    /// The first of `supported` that the client offered, in the server's order of preference.
    pub(super) fn select(&self, supported: &[&'static str]) -> Option<&'static str> {
        supported
            .iter()
            .find(|s| self.offered.iter().any(|o| o == *s))
            .copied()
    }

    /// The `101 Switching Protocols` answer; the socket is handed over once it has been sent.
    pub(super) fn accept(&self, protocol: Option<&'static str>) -> Response {
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_ACCEPT, derive_accept_key(self.key.as_bytes()));
        if let Some(protocol) = protocol {
            response = response.header(SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response.body(Body::empty()).unwrap_or_default()
    }
}

/// A refused handshake: 400 with the JSON error body, naming the WebSocket version the server
/// speaks (RFC 6455 §4.4).
fn refuse(what: &str) -> Response {
    let error = ApiError::new(
        ErrorCode::BadRequest,
        format!("not a WebSocket upgrade: {what}"),
    );
    ([(SEC_WEBSOCKET_VERSION, "13")], error).into_response()
}

/// Whether a comma-separated header lists `token` (case-insensitive), e.g. `Connection:
/// keep-alive, Upgrade`.
fn header_has_token(headers: &HeaderMap, name: axum::http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
