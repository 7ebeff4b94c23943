//! Server → client WebSocket frames, built once as the exact bytes that go on the wire.
//!
//! Server frames are unmasked, so a message encoded once can be written to every subscriber's
//! socket as is: the hub shares one `Bytes` per message and encoding instead of handing each
//! connection a payload to frame (and copy) again. Framing itself is tungstenite's.

use bytes::Bytes;
use switchboard_protocol::Encoding;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};

use super::CloseReason;

/// A complete data frame carrying an encoded payload: text for JSON, binary for MessagePack.
pub(crate) fn data(encoding: Encoding, payload: &[u8]) -> Bytes {
    let opcode = if encoding.is_binary() {
        Data::Binary
    } else {
        Data::Text
    };
    let header = FrameHeader {
        opcode: OpCode::Data(opcode),
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = Vec::with_capacity(header.len(len) + payload.len());
    // Writing into a Vec cannot fail.
    let _ = header.format(len, &mut out);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// The close frame of `reason`.
pub(crate) fn close(reason: CloseReason) -> Bytes {
    control(Frame::close(Some(CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: reason.reason().into(),
    })))
}

/// An empty ping: keeps idle connections (and the proxies between) alive and detects dead peers.
pub(crate) fn ping() -> Bytes {
    control(Frame::ping(Bytes::new()))
}

/// The answer to a client's ping, echoing its payload.
pub(crate) fn pong(payload: Bytes) -> Bytes {
    control(Frame::pong(payload))
}

fn control(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    let _ = frame.format(&mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let mut cursor = Cursor::new(bytes);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        let start = cursor.position() as usize;
        assert_eq!(bytes.len() - start, len as usize, "frame length");
        (header, bytes[start..].to_vec())
    }

    /// Every length class of the header (7-bit, 16-bit, 64-bit) round-trips through
    /// tungstenite's parser, unmasked, with the opcode of the encoding.
    #[test]
    fn data_frames_parse_back_at_every_length_class() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 70_000] {
            let payload = vec![b'x'; len];
            let (header, body) = parse(&data(Encoding::Json, &payload));
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            assert!(header.is_final && header.mask.is_none());
            assert_eq!(body, payload);
            let (header, _) = parse(&data(Encoding::MsgPack, &payload));
            assert_eq!(header.opcode, OpCode::Data(Data::Binary));
        }
    }

    #[test]
    fn close_frame_carries_code_and_reason() {
        let (_, body) = parse(&close(CloseReason::SlowConsumer));
        assert_eq!(u16::from_be_bytes([body[0], body[1]]), 4008);
        assert_eq!(&body[2..], b"slow consumer");
    }
}
