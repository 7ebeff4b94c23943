//! `GET /ws`: the WebSocket endpoint. Checks the Origin and an optional bearer token before the
//! upgrade, negotiates the encoding by subprotocol, then runs the connection ([`session`]).

pub(crate) mod caps;
pub(crate) mod conn;
mod connection;
mod handshake;
mod requests;
mod upgrade;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use switchboard_protocol::codec::{SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK};
use switchboard_protocol::{Encoding, ErrorCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::http::extract::bearer;
use crate::http::ApiError;
use crate::AppState;

/// Every timer of a connection (ping interval, idle timeout, token expiry, a flush's deadline)
/// is capped at the longest timeout, so deadlines cannot overflow.
pub(crate) const MAX_TIMER: std::time::Duration = crate::config::MAX_TIMEOUT;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

/// Bytes tungstenite reads at a time into a connection's input buffer, which it allocates up
/// front: small, because idle connections dominate memory (tungstenite's default is 128 KiB per
/// connection). Client frames are mostly requests of a few hundred bytes; a larger frame grows the
/// buffer on demand, up to the frame limit.
const READ_BUFFER: usize = 512;
async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    handshake: upgrade::Handshake,
) -> Result<Response, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "server is shutting down",
        ));
    }
    check_origin(&state, &headers)?;
    // A token on the upgrade authenticates before the socket opens; a bad one is refused here
    // with 401 rather than after the handshake.
    let principal = match bearer(&headers) {
        Some(token) => Some(state.auth.authenticate(token)?),
        None => None,
    };
    let mut places = crate::ws::caps::Places::default();
    // A direct client's sockets were counted at accept; one behind a proxy is counted here,
    // where its address is known.
    if state
        .config
        .trusted_proxies
        .iter()
        .any(|c| c.contains(peer.ip()))
    {
        let client = crate::net::client::client_ip(
            peer.ip(),
            &headers,
            &state.config.trusted_proxies,
            state.config.client_ip_header,
        );
        places.client = Some(state.caps.client(client)?);
    }
    if let Some(p) = &principal {
        places.user = Some(state.caps.user(&p.user_id)?);
    }
    let protocol = handshake.select(&[SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK]);
    let encoding = Encoding::from_subprotocol(protocol).unwrap_or(Encoding::Json);
    let response = handshake.accept(protocol);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(state.config.max_frame_bytes))
        .max_frame_size(Some(state.config.max_frame_bytes));
    let on_upgrade = handshake.on_upgrade;
    // Tracked so shutdown can wait for every connection to flush and close.
    let tasks = state.tasks.clone();
    tokio::spawn(tasks.clone().track_future(async move {
        // Fails only if the client went away before the 101 reached it.
        let Ok(socket) = on_upgrade.await else {
            return;
        };
        let opened = handshake::open(socket, config, state, encoding, principal, places, peer);
        if let Some(session) = opened.await {
            tasks.spawn(session.run());
        }
    }));
    Ok(response)
}

/// Browsers send Origin; a page from an origin not on the allowlist must not open a socket with
/// the user's credentials. Non-browser clients send no Origin and pass. An Origin that is not
/// visible ASCII, or several of them, is refused rather than taken for none (a browser never
/// sends such); `null` (sandboxed frames, `file:` pages) passes only when listed by name.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let mut all = headers.get_all(ORIGIN).iter();
    let Some(origin) = all.next() else {
        return Ok(());
    };
    let refuse = |why: &str| {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("{why} (see SWITCHBOARD_ALLOWED_ORIGINS)"),
        ))
    };
    if all.next().is_some() {
        return refuse("more than one Origin header");
    }
    let Ok(origin) = origin.to_str() else {
        return refuse("malformed Origin header");
    };
    let origin = origin.trim_end_matches('/');
    let allowed = &state.config.allowed_origins;
    let ok = if allowed.is_empty() {
        // Same-origin only: the page's scheme and host[:port] must be those the request came to.
        // The scheme is https behind a TLS-terminating proxy that says so (X-Forwarded-Proto);
        // a browser cannot set that header, and a non-browser client needs no Origin at all.
        let Some((scheme, host)) = origin.split_once("://") else {
            return refuse("malformed Origin header");
        };
        let served = headers
            .get("x-forwarded-proto")
            .and_then(|p| p.to_str().ok())
            .and_then(|p| p.split(',').next())
            .map_or("http", str::trim);
        let expected_host = headers.get(HOST).and_then(|h| h.to_str().ok());
        scheme.eq_ignore_ascii_case(served) && Some(host) == expected_host
    } else {
        allowed.iter().any(|a| {
            let a = a.trim_end_matches('/');
            a == origin || (a == "*" && origin != "null")
        })
    };
    if ok {
        Ok(())
    } else {
        refuse(&format!("origin {origin} is not allowed"))
    }
}
