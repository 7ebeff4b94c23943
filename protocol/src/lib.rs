//! Switchboard wire protocol v1: the frames clients and servers exchange over `/ws`, and the two
//! encodings they travel in (JSON text frames, MessagePack binary frames).
//!
//! This crate has no runtime dependencies so the server, the load tester and the tests all speak
//! through exactly the same types. `docs/PROTOCOL.md` is the normative description.
//!
//! # Layout
//! - [`channel`]: channel names (`room:<name>`, `user:<id>`, `feed:<id>`) and their validation.
//! - [`client`]: frames a client sends.
//! - [`server`]: frames the server sends, error codes and close codes.
//! - [`codec`]: JSON / MessagePack encoding and decoding, selected by WebSocket subprotocol.
//! - [`data`]: message payloads: their depth bound, and JSON text to MessagePack.
//! - [`notification`]: the data of `user:` channel messages (notifications, `read` changes).
//! - [`token`]: the claims of an access token.

pub mod channel;
pub mod client;
pub mod codec;
pub mod data;
pub mod notification;
pub mod server;
pub mod token;

pub use channel::{Channel, ChannelError, Kind as ChannelKind};
pub use client::ClientFrame;
pub use codec::{DecodeError, Encoding};
pub use notification::{Event, Mentioned, NotificationKind, UserEvent};
pub use server::{
    close, Ack, ErrorCode, ErrorFrame, MessageFrame, MessageRef, PresencePage, ReactionCount,
    ServerFrame, UserInfo,
};
pub use token::AccessClaims;
