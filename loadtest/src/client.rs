//! One client connection: TCP (optionally from a chosen source address) → WebSocket upgrade
//! offering the encoding's subprotocol with a minted bearer token → protocol frames, encoded and
//! decoded only through the `switchboard-protocol` codec.
//!
//! Failures are classified so that a run stopped by *this machine* (out of file descriptors,
//! source ports or addresses) is never mistaken for the server refusing connections.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures::{SinkExt, StreamExt};
use switchboard_protocol::{ClientFrame, Encoding, ServerFrame};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::tokens::{Account, Minter};

/// Per-connection read buffer. Idle connections dominate memory at 100k sockets, and load-test
/// frames are small; tungstenite grows the buffer for a larger frame when one comes.
const READ_BUFFER: usize = 4 * 1024;

/// Linux errno values meaning "this machine ran out of something", not "the server refused".
mod errno {
    pub(super) const ENOMEM: i32 = 12;
    pub(super) const ENFILE: i32 = 23;
    pub(super) const EMFILE: i32 = 24;
    pub(super) const EADDRINUSE: i32 = 98;
    pub(super) const EADDRNOTAVAIL: i32 = 99;
    pub(super) const ENOBUFS: i32 = 105;
    pub(super) const ECONNRESET: i32 = 104;
    pub(super) const ECONNREFUSED: i32 = 111;
}

/// Why a connection could not be opened.
#[derive(Debug, Clone)]
pub struct DialError {
    /// Short reason used as an error-count key (`emfile`, `refused`, `http_401`, ...).
    pub reason: String,
    /// The local machine, not the server, stopped it (fd limit, port or address exhaustion).
    pub local_limit: bool,
    pub detail: String,
}

impl DialError {
    fn io(step: &str, e: &io::Error) -> DialError {
        let (reason, local_limit) = match e.raw_os_error() {
            Some(errno::EMFILE) => ("emfile", true),
            Some(errno::ENFILE) => ("enfile", true),
            Some(errno::EADDRNOTAVAIL) => ("eaddrnotavail", true),
            Some(errno::EADDRINUSE) => ("eaddrinuse", true),
            Some(errno::ENOBUFS) => ("enobufs", true),
            Some(errno::ENOMEM) => ("enomem", true),
            Some(errno::ECONNREFUSED) => ("refused", false),
            Some(errno::ECONNRESET) => ("reset", false),
            _ => ("io", false),
        };
        DialError {
            reason: reason.to_owned(),
            local_limit,
            detail: format!("{step}: {e}"),
        }
    }

    pub fn other(reason: &str, detail: impl Into<String>) -> DialError {
        DialError {
            reason: reason.to_owned(),
            local_limit: false,
            detail: detail.into(),
        }
    }
}

struct Target {
    url: String,
    addr: SocketAddr,
}

/// Opens connections for one run: knows the targets, source addresses, encoding and how to mint
/// tokens.
pub struct Dialer {
    targets: Vec<Target>,
    sources: Vec<Ipv4Addr>,
    encoding: Encoding,
    minter: Minter,
    config: WebSocketConfig,
}

impl Dialer {
    /// Resolves every URL's address once, up front, so 100k connects do not each resolve.
    pub async fn new(
        urls: &[String],
        source_ips: usize,
        encoding: Encoding,
        minter: Minter,
    ) -> anyhow::Result<Dialer> {
        let mut targets = Vec::new();
        for url in urls {
            let request = url.as_str().into_client_request()?;
            let uri = request.uri();
            let host = uri
                .host()
                .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?;
            let port = uri.port_u16().unwrap_or(80);
            let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
                .await?
                .find(SocketAddr::is_ipv4)
                .ok_or_else(|| anyhow::anyhow!("{url}: no IPv4 address"))?;
            targets.push(Target {
                url: url.clone(),
                addr,
            });
        }
        let sources = (0..source_ips)
            .map(|k| Ipv4Addr::new(127, 0, 0, 2 + k as u8))
            .collect();
        Ok(Dialer {
            targets,
            sources,
            encoding,
            minter,
            // Write buffer 0: every frame goes straight to the socket, so a publish is timed
            // from when it left, and no connection holds an output buffer while idle.
            config: WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER)
                .write_buffer_size(0),
        })
    }

    /// The minter of this run's tokens.
    pub fn minter(&self) -> &Minter {
        &self.minter
    }

    /// Opens and authenticates connection `index` (URL and source address round-robin).
    pub async fn dial(&self, index: u64) -> Result<Conn, DialError> {
        self.dial_as(index, None).await
    }

    /// [`Dialer::dial`], as `account` instead of the connection's minted user when given.
    pub async fn dial_as(&self, index: u64, account: Option<&Account>) -> Result<Conn, DialError> {
        let target = &self.targets[index as usize % self.targets.len()];
        let socket = TcpSocket::new_v4().map_err(|e| DialError::io("socket", &e))?;
        if !self.sources.is_empty() {
            let source = self.sources[index as usize % self.sources.len()];
            socket
                .bind(SocketAddr::new(IpAddr::V4(source), 0))
                .map_err(|e| DialError::io("bind", &e))?;
        }
        let stream = socket
            .connect(target.addr)
            .await
            .map_err(|e| DialError::io("connect", &e))?;
        // Latency is the point of the exercise: no Nagle delay on small frames.
        let _ = stream.set_nodelay(true);

        let token = match account {
            Some(account) => self.minter.token_for(account),
            None => self.minter.token(index),
        }
        .map_err(|e| DialError::other("token", e.to_string()))?;
        let mut request = target
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| DialError::other("url", e.to_string()))?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(self.encoding.subprotocol()),
        );
        // The token on the upgrade authenticates before the socket opens (one round trip less
        // than an `auth` frame); a refused token comes back as HTTP 401.
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| DialError::other("token", e.to_string()))?;
        headers.insert("Authorization", bearer);

        let (ws, response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(self.config))
                .await
                .map_err(|e| match e {
                    tungstenite::Error::Http(r) => DialError::other(
                        &format!("http_{}", r.status().as_u16()),
                        format!("upgrade refused: {}", r.status()),
                    ),
                    tungstenite::Error::Io(e) => DialError::io("handshake", &e),
                    e => DialError::other("handshake", e.to_string()),
                })?;
        let chosen = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if chosen != Some(self.encoding.subprotocol()) {
            return Err(DialError::other(
                "subprotocol",
                format!("server chose subprotocol {chosen:?}"),
            ));
        }
        Ok(Conn {
            ws,
            encoding: self.encoding,
            next_id: 0,
        })
    }
}

/// What reading a connection produced.
#[derive(Debug)]
pub enum Event {
    Frame(ServerFrame),
    /// The connection ended: the close code when the server sent one, `None` when the socket
    /// just broke.
    Closed(Option<u16>),
    /// A frame the protocol crate could not decode.
    Undecodable(String),
}

pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    encoding: Encoding,
    next_id: i64,
}

impl Conn {
    /// A new request id (the server echoes it in the ack or error).
    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> anyhow::Result<()> {
        let bytes = self.encoding.encode(frame)?;
        let message = if self.encoding.is_binary() {
            Message::Binary(bytes.into())
        } else {
            Message::Text(String::from_utf8(bytes)?.into())
        };
        self.ws.send(message).await?;
        Ok(())
    }

    /// The next protocol frame. Cancel-safe (used inside `select!`): WebSocket pings are
    /// answered by tungstenite while reading, so an idle connection stays alive while polled.
    pub async fn next(&mut self) -> Event {
        loop {
            let message = match self.ws.next().await {
                None | Some(Err(_)) => return Event::Closed(None),
                Some(Ok(m)) => m,
            };
            // The server may answer in either encoding; decode by frame type.
            let decoded = match message {
                Message::Text(t) => Encoding::Json.decode_server(t.as_bytes()),
                Message::Binary(b) => Encoding::MsgPack.decode_server(&b),
                Message::Close(frame) => return Event::Closed(frame.map(|f| f.code.into())),
                _ => continue,
            };
            return match decoded {
                Ok(frame) => Event::Frame(frame),
                Err(e) => Event::Undecodable(e.reason),
            };
        }
    }

    /// Closes politely but without waiting long: at the end of a run with 100k connections a
    /// slow close handshake must not hold the run open.
    pub async fn close(mut self) {
        let polite = async {
            let _ = self.ws.close(None).await;
        };
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), polite).await;
    }
}
