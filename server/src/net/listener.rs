//! The accept loop: HTTP/1.1 (and WebSocket upgrades) with the limits axum's `serve` does not
//! set: a header-read timeout that is also the keep-alive idle timeout, a write timeout
//! ([`super::io::Socket`]), a cap on the node's open sockets and on those of one untrusted peer
//! address. A socket over a cap gets a `503` JSON answer and is closed before any request is read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::io::Socket;
use super::slots::{Gauge, Slots};
use super::{client_key, Cidr};

/// Back-off after an accept error (out of descriptors, mostly): the loop would otherwise spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) struct Limits {
    /// Every open socket of the node (HTTP and WebSocket alike): the descriptor budget.
    pub sockets: Arc<Gauge>,
    /// Open sockets per peer address (IPv6 by /64). Trusted proxies are not counted here: many
    /// clients share their address, and those clients are counted where they are known.
    pub per_peer: Arc<Slots<IpAddr>>,
    pub trusted: Vec<Cidr>,
    pub header_timeout: Duration,
    pub write_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown`, then stops accepting, lets every HTTP connection
/// finish its request in flight, and returns once they have (upgraded WebSockets are not waited
/// for here: they belong to the hub's drain).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    crate::metrics::ACCEPT_ERRORS.increment(1);
                    tracing::warn!(error = ?e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Nagle's algorithm would hold a small message back until the previous one is acked:
        // wrong for a real-time push server, so every accepted socket sends immediately.
        let _ = tcp.set_nodelay(true);
        let Some(socket) = admit(tcp, peer, &limits) else {
            continue;
        };
        let service = app
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(axum::body::Body::new)
            });
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = builder
                .serve_connection(TokioIo::new(socket), TowerToHyperService::new(service))
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => log_end(result),
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    log_end(conn.await);
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        if e.is_timeout() {
            crate::metrics::HTTP_TIMEOUTS.increment(1);
        }
        tracing::debug!(error = ?e, "connection ended");
    }
}

/// Takes the socket's places in the caps, or refuses it.
fn admit(tcp: TcpStream, peer: SocketAddr, limits: &Limits) -> Option<Socket> {
    let Some(total) = limits.sockets.take() else {
        refuse(
            &tcp,
            "connections",
            "the server is at its connection limit (SWITCHBOARD_MAX_CONNECTIONS)",
        );
        return None;
    };
    let peer_slot = if limits.trusted.iter().any(|c| c.contains(peer.ip())) {
        None
    } else {
        match limits.per_peer.take(client_key(peer.ip())) {
            Some(slot) => Some(slot),
            None => {
                refuse(
                    &tcp,
                    "connections_per_ip",
                    "too many connections from this address (SWITCHBOARD_MAX_CONNECTIONS_PER_IP)",
                );
                return None;
            }
        }
    };
    Some(Socket::new(
        tcp,
        limits.write_timeout,
        Box::new((total, peer_slot)),
    ))
}

/// Best effort, never waits: a `503` with the JSON error body and `Connection: close`. The socket
/// is new, so its send buffer takes the whole answer.
fn refuse(tcp: &TcpStream, limit: &'static str, message: &str) {
    crate::metrics::refused(limit);
    let body =
        serde_json::json!({ "error": { "code": "unavailable", "message": message } }).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.try_write(answer.as_bytes());
}
