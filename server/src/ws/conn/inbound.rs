//! The read side of a connection's socket, as tungstenite sees it.
//!
//! tungstenite parses client frames (masking, fragmentation, size limits) from here. Everything
//! the server sends goes through the connection's handle, one ordered path into the socket, so
//! what tungstenite would write on its own (its automatic pong and close replies) is dropped:
//! the session answers pings and closes itself, through its handle.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::SharedIo;

pub(crate) struct Inbound(pub SharedIo);

impl AsyncRead for Inbound {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.lock().as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Inbound {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
