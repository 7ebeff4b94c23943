//! A TCP proxy the nemesis can cut: one per node in front of PostgreSQL and of Redis, so that a
//! network partition of one node from its storage and bus can be injected without network
//! namespaces. A partition here is the harsh kind, a black hole: nothing passes either way and
//! nothing is reset, so the node learns of it only through its own timeouts (the pool's wait,
//! the commit deadline, PostgreSQL's idle-in-transaction timeout, the bus's health checks). At the
//! heal the held connections are reset and new ones pass again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    holed: Arc<AtomicBool>,
    /// Bumped at each partition and heal: carried connections watch it.
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let holed = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let task = tokio::spawn(accept(
            listener,
            upstream,
            holed.clone(),
            generation.clone(),
        ));
        Ok(Proxy {
            port,
            holed,
            generation,
            task,
        })
    }

    /// The partition starts: what is carried stops flowing, new connections hang.
    pub fn partition(&self) {
        self.holed.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// The partition ends: the held connections are reset, new ones pass.
    pub fn heal(&self) {
        self.holed.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn accept(
    listener: TcpListener,
    upstream: u16,
    holed: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let mut changes = generation.subscribe();
        if holed.load(Ordering::SeqCst) {
            // Accepted, then silence until the heal.
            tokio::spawn(async move {
                let _ = changes.changed().await;
                reset(&client);
            });
            continue;
        }
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                return;
            };
            let (mut client, mut server) = (client, server);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                _ = changes.changed() => {}
            }
            // Partitioned: hold both ends, silent, until the heal.
            let _ = changes.changed().await;
            reset(&client);
            reset(&server);
        });
    }
}

/// Closes with a reset (SO_LINGER 0) rather than a FIN, as a path that died would look.
// Deprecated because a non-zero linger blocks the thread on drop; a zero one never does.
#[allow(deprecated)]
fn reset(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}
