//! One accepted TCP socket as the server uses it: it holds the socket's places in the connection
//! caps (given back when the socket is dropped, whether it served HTTP or was upgraded to a
//! WebSocket), and it fails a write that makes no progress for the write timeout, so a client
//! that stops reading cannot pin a response, or a WebSocket's queue, for ever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Whatever must live exactly as long as the socket (its cap slots).
pub(crate) type Held = Box<dyn std::any::Any + Send + Sync>;

pub(crate) struct Socket {
    tcp: TcpStream,
    write_timeout: Duration,
    /// Armed when a write finds the socket full; reset by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
    _held: Held,
}

impl Socket {
    pub(crate) fn new(tcp: TcpStream, write_timeout: Duration, held: Held) -> Socket {
        Socket {
            tcp,
            write_timeout,
            stalled: None,
            _held: held,
        }
    }

    /// Called when a write could not proceed: starts the stall clock (once) and fails the write
    /// when it has run out. The sleep is polled so the task is woken when it does.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.write_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading (SWITCHBOARD_WRITE_TIMEOUT_SECS)",
        )))
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.tcp).poll_write(cx, buf) {
            Poll::Pending => this.poll_stall(cx),
            done => {
                this.stalled = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_stall(cx),
            done => {
                this.stalled = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_write_the_peer_does_not_read_fails_after_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let mut socket = Socket::new(tcp, Duration::from_millis(300), Box::new(()));
        let chunk = vec![0u8; 1 << 20];
        let started = std::time::Instant::now();
        let error = loop {
            if let Err(e) = socket.write_all(&chunk).await {
                break e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "never timed out"
            );
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }
}
