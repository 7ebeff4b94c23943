//! Why a connection ends, and what the client is told: every close the server sends is one of
//! these, so each code of docs/PROTOCOL.md's close table is spelt in one place.

use switchboard_protocol::close;
use tokio_tungstenite::tungstenite;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The session ended it (the client closed, or the server is done with the connection).
    Normal,
    /// The socket is gone or the writer has finished: nothing more can be sent.
    Ended,
    /// The server is shutting down; the client reconnects elsewhere (after `reconnect`).
    GoingAway,
    /// The client sent something that is not WebSocket.
    Protocol,
    /// A text frame that is not UTF-8.
    InvalidUtf8,
    /// No valid `auth` frame in time.
    AuthRequired,
    /// A frame over the size limit.
    TooBig,
    /// The user is at their connection cap: try again later.
    TooManyConnections,
    /// The connection's login session was revoked (logout, refresh-token reuse).
    SessionRevoked,
    /// The connection's access token expired and was not renewed.
    TokenExpired,
    /// The client reads too slowly to keep up: it resumes with `since`.
    SlowConsumer,
    /// Nothing (not even a pong) came from the client for the idle timeout.
    IdleTimeout,
}

impl CloseReason {
    /// The close code on the wire.
    pub(crate) fn code(self) -> u16 {
        match self {
            CloseReason::Normal | CloseReason::Ended => close::NORMAL,
            CloseReason::GoingAway => close::GOING_AWAY,
            CloseReason::Protocol => close::PROTOCOL_ERROR,
            CloseReason::InvalidUtf8 => close::INVALID_DATA,
            CloseReason::AuthRequired => close::POLICY,
            CloseReason::TooBig => close::TOO_BIG,
            CloseReason::TooManyConnections => close::TRY_AGAIN_LATER,
            CloseReason::SessionRevoked => close::SESSION_REVOKED,
            CloseReason::TokenExpired => close::TOKEN_EXPIRED,
            CloseReason::SlowConsumer => close::SLOW_CONSUMER,
            CloseReason::IdleTimeout => close::IDLE_TIMEOUT,
        }
    }

    /// The close frame's reason text.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            CloseReason::Normal | CloseReason::Ended => "",
            CloseReason::GoingAway => "server shutting down",
            CloseReason::Protocol => "protocol error",
            CloseReason::InvalidUtf8 => "invalid UTF-8",
            CloseReason::AuthRequired => "authentication required",
            CloseReason::TooBig => "frame too large",
            CloseReason::TooManyConnections => "too many connections",
            CloseReason::SessionRevoked => "session revoked",
            CloseReason::TokenExpired => "access token expired",
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::IdleTimeout => "idle timeout",
        }
    }

    /// Whether what is queued is dropped and the connection closed at once, instead of flushed
    /// first: a slow consumer's queue is what it cannot take, and after unparseable input (or a
    /// dead socket) nothing more is worth sending.
    pub(crate) fn immediate(self) -> bool {
        matches!(
            self,
            CloseReason::Ended
                | CloseReason::SlowConsumer
                | CloseReason::Protocol
                | CloseReason::InvalidUtf8
                | CloseReason::TooBig
        )
    }

    /// The close for input tungstenite refused; `None` when the socket itself failed (nothing
    /// can be sent).
    pub(crate) fn for_read_error(e: &tungstenite::Error) -> Option<CloseReason> {
        match e {
            tungstenite::Error::Capacity(_) => Some(CloseReason::TooBig),
            tungstenite::Error::Protocol(_) => Some(CloseReason::Protocol),
            tungstenite::Error::Utf8(_) => Some(CloseReason::InvalidUtf8),
            _ => None,
        }
    }
}
