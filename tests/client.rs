//! A WebSocket client speaking protocol v1 through the `protocol` crate.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_protocol::{Ack, ClientFrame, Encoding, ErrorFrame, MessageFrame, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::PATIENCE;

pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub encoding: Encoding,
    next_id: i64,
}

/// What the server did instead of sending a frame.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(Option<u16>),
    TimedOut,
}

impl WsClient {
    /// Opens `/ws` offering `encoding`'s subprotocol, optionally with `Authorization: Bearer`.
    pub async fn connect(
        url: &str,
        encoding: Encoding,
        bearer: Option<&str>,
    ) -> anyhow::Result<WsClient> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(encoding.subprotocol()),
        );
        if let Some(token) = bearer {
            request.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {token}"))?,
            );
        }
        let (ws, response) = tokio_tungstenite::connect_async(request).await?;
        let chosen = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        anyhow::ensure!(
            chosen == Some(encoding.subprotocol()),
            "server chose subprotocol {chosen:?}"
        );
        Ok(WsClient {
            ws,
            encoding,
            next_id: 100,
        })
    }

    pub fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        let bytes = self.encoding.encode(frame).unwrap();
        let msg = if self.encoding.is_binary() {
            Message::Binary(bytes.into())
        } else {
            Message::Text(String::from_utf8(bytes).unwrap().into())
        };
        self.ws.send(msg).await.unwrap();
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    /// The next protocol frame, or how the connection ended instead.
    pub async fn next(&mut self, within: Duration) -> Result<ServerFrame, Ended> {
        loop {
            let msg = match tokio::time::timeout(within, self.ws.next()).await {
                Err(_) => return Err(Ended::TimedOut),
                Ok(None) => return Err(Ended::Closed(None)),
                Ok(Some(Err(_))) => return Err(Ended::Closed(None)),
                Ok(Some(Ok(msg))) => msg,
            };
            match msg {
                Message::Text(t) => {
                    assert_eq!(
                        self.encoding,
                        Encoding::Json,
                        "text frame on a {:?} connection",
                        self.encoding
                    );
                    return Ok(Encoding::Json
                        .decode_server(t.as_bytes())
                        .expect("server frame decodes"));
                }
                Message::Binary(b) => {
                    assert_eq!(
                        self.encoding,
                        Encoding::MsgPack,
                        "binary frame on a JSON connection"
                    );
                    return Ok(Encoding::MsgPack
                        .decode_server(&b)
                        .expect("server frame decodes"));
                }
                Message::Close(frame) => {
                    return Err(Ended::Closed(frame.map(|f: CloseFrame| f.code.into())))
                }
                _ => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> ServerFrame {
        match self.next(PATIENCE).await {
            Ok(f) => f,
            Err(e) => panic!("expected a frame, got {e:?}"),
        }
    }

    /// Waits for the connection to close; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next(PATIENCE).await {
                Ok(_) => continue,
                Err(Ended::Closed(code)) => return code,
                Err(Ended::TimedOut) => panic!("connection did not close"),
            }
        }
    }

    /// Sends `frame` and returns the reply with its id (ack or error), keeping channel messages
    /// that arrive meanwhile in `messages`.
    pub async fn request(
        &mut self,
        frame: ClientFrame,
        messages: &mut Vec<MessageFrame>,
    ) -> Result<Ack, ErrorFrame> {
        let id = frame.id().expect("a request with an id");
        self.send(&frame).await;
        loop {
            match self.recv().await {
                ServerFrame::Ack(a) if a.id == id => return Ok(a),
                ServerFrame::Error(e) if e.id == Some(id) => return Err(e),
                ServerFrame::Message(m) => messages.push(m),
                _ => {}
            }
        }
    }

    pub async fn auth(&mut self, token: &str) -> Ack {
        let id = self.id();
        self.request(
            ClientFrame::Auth {
                id,
                token: token.into(),
            },
            &mut Vec::new(),
        )
        .await
        .expect("auth accepted")
    }

    /// Subscribes; returns the ack (messages replayed before it are none: the ack comes first).
    pub async fn subscribe(
        &mut self,
        channel: &str,
        since: Option<u64>,
    ) -> Result<Ack, ErrorFrame> {
        let id = self.id();
        let mut early = Vec::new();
        let r = self
            .request(
                ClientFrame::Subscribe {
                    id,
                    channel: channel.into(),
                    since,
                },
                &mut early,
            )
            .await;
        assert!(
            early.is_empty(),
            "messages arrived before the subscribe ack"
        );
        r
    }

    pub async fn publish(
        &mut self,
        channel: &str,
        data: Value,
        messages: &mut Vec<MessageFrame>,
    ) -> Result<u64, ErrorFrame> {
        let id = self.id();
        self.request(
            ClientFrame::Publish {
                id,
                channel: channel.into(),
                data,
                idempotency_key: None,
            },
            messages,
        )
        .await
        .map(|a| a.offset.expect("publish ack carries offset"))
    }

    /// Collects `n` channel messages (ignoring other frames).
    pub async fn messages(&mut self, n: usize) -> Vec<MessageFrame> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if let ServerFrame::Message(m) = self.recv().await {
                out.push(m);
            }
        }
        out
    }

    /// Asserts that no channel message arrives within `quiet`.
    pub async fn assert_no_message(&mut self, quiet: Duration) {
        loop {
            match self.next(quiet).await {
                Ok(ServerFrame::Message(m)) => panic!("unexpected message {m:?}"),
                Ok(_) => continue,
                Err(_) => return,
            }
        }
    }
}
