//! WebSocket frames as raw JSON values, for tests that state exactly what is on the wire
//! (the attack and abuse tests): what came off a socket, and a request with its reply.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::{Encoding, WsClient, PATIENCE};

/// What came off a WebSocket: a frame as JSON, its close (with the code), or nothing in time.
#[derive(Debug, PartialEq)]
pub enum Got {
    Frame(Value),
    Closed(Option<u16>),
    Quiet,
}

/// The frame, or a panic naming what came instead.
#[track_caller]
pub fn frame(got: Got) -> Value {
    match got {
        Got::Frame(v) => v,
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// The next frame (pings and pongs skipped), the close, or `Quiet` after `within`.
pub async fn next(ws: &mut WsClient, within: Duration) -> Got {
    loop {
        let msg = match tokio::time::timeout(within, ws.ws.next()).await {
            Err(_) => return Got::Quiet,
            Ok(None | Some(Err(_))) => return Got::Closed(None),
            Ok(Some(Ok(msg))) => msg,
        };
        return match msg {
            Message::Text(t) => Got::Frame(serde_json::from_str(t.as_str()).unwrap()),
            Message::Binary(b) => Got::Frame(rmp_serde::from_slice(&b).unwrap()),
            Message::Close(c) => Got::Closed(c.map(|c| c.code.into())),
            _ => continue,
        };
    }
}

/// Sends `frame` (as JSON, or MessagePack on a MessagePack socket) and returns the reply with its
/// id, collecting channel messages that arrive meanwhile.
pub async fn request(ws: &mut WsClient, mut frame: Value, messages: &mut Vec<Value>) -> Value {
    let id = ws.id();
    frame["id"] = id.into();
    let msg = match ws.encoding {
        Encoding::Json => Message::Text(frame.to_string().into()),
        Encoding::MsgPack => Message::Binary(rmp_serde::to_vec_named(&frame).unwrap().into()),
    };
    ws.ws.send(msg).await.unwrap();
    loop {
        let got = self::frame(next(ws, PATIENCE).await);
        if got["id"] == id && (got["type"] == "ack" || got["type"] == "error") {
            return got;
        }
        if got["type"] == "message" {
            messages.push(got);
        }
    }
}
