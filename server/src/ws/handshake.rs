//! Before a connection is served: the `auth` frame (unless the upgrade carried a token), the
//! per-user cap, and attaching the connection to the hub. Nothing is attached yet while this
//! runs, so its answers are written to the socket directly.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use switchboard_protocol::{ClientFrame, Encoding, ErrorCode, ErrorFrame, ServerFrame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::conn::inbound::Inbound;
use super::conn::{frame, wire, CloseReason, ConnHandle, Io, SharedIo};
use super::connection::{linger, Connection, Ending, Frames, Handler};
use crate::auth::Principal;
use crate::ws::caps::Places;
use crate::AppState;

/// How long the refusal of an unauthenticated connection may take to go out.
const REFUSAL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Sets the connection up: reads the `auth` frame unless the upgrade carried a token, attaches
/// the connection to the hub. `None` if the client never authenticated.
pub(super) async fn open(
    socket: Upgraded,
    config: WebSocketConfig,
    state: AppState,
    encoding: Encoding,
    principal: Option<Principal>,
    mut places: Places,
    peer: SocketAddr,
) -> Option<Connection> {
    let io: Pin<Box<dyn Io>> = Box::pin(TokioIo::new(socket));
    let io: SharedIo = Arc::new(Mutex::new(io));
    // Boxed: it moves into the session, which its task keeps inline, once per await point.
    let mut stream = Box::new(
        WebSocketStream::from_raw_socket(Inbound(io.clone()), Role::Server, Some(config)).await,
    );
    let (principal, auth_id) = match principal {
        Some(p) => (p, None),
        None => match authenticate(&state, encoding, &io, &mut stream).await {
            Some((p, id)) => (p, Some(id)),
            None => return None,
        },
    };
    if places.user.is_none() {
        match state.caps.user(&principal.user_id) {
            Ok(slot) => places.user = Some(slot),
            Err(e) => {
                refuse(encoding, &io, &mut stream, auth_id, &e.to_string()).await;
                return None;
            }
        }
    }
    let conn_id = state.hub.next_conn_id();
    let span = tracing::info_span!("conn", id = conn_id, user = %principal.user_id, %peer);
    let conn = ConnHandle::new(
        conn_id,
        encoding,
        principal,
        state.config.outbound_queue_bytes,
        io,
    );
    state.hub.attach(&conn);
    // After attaching, so a block made meanwhile reaches it either way (the event, or this read).
    if let Err(e) = state.hub.load_block_list(&conn).await {
        tracing::warn!(error = ?e, "reading a user's blocks failed; nothing hidden");
    }
    if state.shutdown.is_cancelled() {
        // Upgraded just as the drain started (after it told every attached connection to go):
        // send this one away too rather than serve it while storage closes.
        conn.go_away(state.config.drain_window);
    }
    let handler = Handler::new(state, conn, places);
    if let Some(id) = auth_id {
        handler.ack_auth(id);
    }
    Some(Connection {
        handler,
        stream,
        span,
    })
}

/// Waits for the first frame, which must be `auth` with a valid token. Answers with an error
/// frame and closes with 1008 otherwise, or after the authentication timeout. No conn exists
/// yet, so answers are written to the socket directly.
async fn authenticate(
    state: &AppState,
    encoding: Encoding,
    io: &SharedIo,
    stream: &mut Frames,
) -> Option<(Principal, i64)> {
    let deadline = tokio::time::Instant::now() + state.config.auth_timeout;
    let refusal = loop {
        let frame = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                break (
                    None,
                    ErrorCode::Unauthorized,
                    "authentication timeout".to_owned(),
                )
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                if let Some(reason) = CloseReason::for_read_error(&e) {
                    if send_before(io, frame::close(reason), deadline)
                        .await
                        .is_ok()
                    {
                        Box::pin(linger(stream, Ending::BadInput, None)).await;
                    }
                }
                return None;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let decoded = match frame {
            Message::Text(t) => Encoding::Json.decode_client(t.as_bytes()),
            Message::Binary(b) => Encoding::MsgPack.decode_client(&b),
            Message::Close(_) => {
                let _ = send_before(io, frame::close(CloseReason::Normal), deadline).await;
                return None;
            }
            Message::Ping(payload) => {
                send_before(io, frame::pong(payload), deadline).await.ok()?;
                continue;
            }
            Message::Pong(_) | Message::Frame(_) => continue,
        };
        break match decoded {
            Ok(ClientFrame::Auth { id, token }) => match state.auth.authenticate(&token) {
                Ok(principal) => return Some((principal, id)),
                Err(e) => (Some(id), ErrorCode::Unauthorized, e.to_string()),
            },
            Ok(other) => (
                other.id(),
                ErrorCode::Unauthorized,
                "the first frame must be auth".to_owned(),
            ),
            Err(e) => (
                e.id,
                ErrorCode::Unauthorized,
                "the first frame must be auth".to_owned(),
            ),
        };
    };
    let (id, code, message) = refusal;
    // A client that does not read its refusal is not waited for beyond a short grace.
    let deadline = tokio::time::Instant::now() + REFUSAL_GRACE;
    if let Some(frame) = wire::encode(
        encoding,
        &ServerFrame::Error(ErrorFrame::new(id, code, message)),
    ) {
        let _ = send_before(io, frame, deadline).await;
    }
    let close = frame::close(CloseReason::AuthRequired);
    if send_before(io, close, deadline).await.is_ok() {
        Box::pin(linger(stream, Ending::ServerClosing, None)).await;
    }
    None
}

/// Refuses an authenticated connection over its user's cap: the `rate_limited` error, then close
/// 1013 (try again later). Nothing is attached yet, so it is written directly.
async fn refuse(
    encoding: Encoding,
    io: &SharedIo,
    stream: &mut Frames,
    id: Option<i64>,
    message: &str,
) {
    let deadline = tokio::time::Instant::now() + REFUSAL_GRACE;
    let error = ErrorFrame::new(id, ErrorCode::RateLimited, message.to_owned());
    if let Some(frame) = wire::encode(encoding, &ServerFrame::Error(error)) {
        let _ = send_before(io, frame, deadline).await;
    }
    let close = frame::close(CloseReason::TooManyConnections);
    if send_before(io, close, deadline).await.is_ok() {
        Box::pin(linger(stream, Ending::ServerClosing, None)).await;
    }
}

/// Writes a whole frame to a socket nothing else writes to yet, giving up at `deadline`: an
/// unauthenticated client that sends (pings) without reading must not hold its task past it.
async fn send_before(
    io: &SharedIo,
    mut frame: Bytes,
    deadline: tokio::time::Instant,
) -> std::io::Result<()> {
    use bytes::Buf;
    let write_all = async {
        while !frame.is_empty() {
            let n = std::future::poll_fn(|cx| io.lock().as_mut().poll_write(cx, &frame)).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            frame.advance(n);
        }
        Ok(())
    };
    tokio::time::timeout_at(deadline, write_all)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}
