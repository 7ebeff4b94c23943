//! The Redis bus on a Redis Cluster, with sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis 7+):
//! a channel's traffic goes to the one shard that owns its slot instead of being broadcast to
//! every cluster node, so the bus scales with the number of primaries.
//!
//! Same contract as the single-Redis bus (`redis.rs`), with two cluster specifics: one
//! `SSUBSCRIBE` per channel (channels in different slots cannot share a call), and after any
//! shard connection drops, every channel is subscribed again one by one — the client's own
//! automatic resubscription sends them together and fails across slots — then resynchronised
//! from storage.

use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, PushInfo, PushKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::receiver::{channel_key, control_key, Receiver};
use crate::hub::Interest;
use crate::metrics;

/// Pause between attempts to resubscribe after a shard connection dropped.
const RETRY: Duration = Duration::from_millis(200);

pub(super) struct Topology {
    nodes: Vec<String>,
}

impl Topology {
    /// `REDIS_URL` for a cluster: one or more node URLs, comma-separated.
    pub(super) fn new(url: &str) -> Topology {
        Topology {
            nodes: crate::config::cluster_nodes(url)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    pub(super) async fn start(
        self,
        rx: Receiver,
        outgoing: super::backlog::Receiver,
        interest: mpsc::UnboundedReceiver<Interest>,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let publisher = redis::cluster::ClusterClient::new(self.nodes.clone())?
            .get_async_connection()
            .await?;
        let (push_tx, pushes) = mpsc::unbounded_channel::<PushInfo>();
        let subscriber = ClusterClientBuilder::new(self.nodes)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push_tx)
            .build()?
            .get_async_connection()
            .await?;
        Ok(vec![
            tokio::spawn(publish_loop(publisher, outgoing)),
            tokio::spawn(subscribe_loop(subscriber, rx, pushes, interest)),
        ])
    }
}

/// `SPUBLISH` each message to its channel's shard. Messages of one channel stay in commit order
/// (one channel is one slot, and commands to one shard go down one connection in order);
/// different channels go out concurrently.
async fn publish_loop(conn: ClusterConnection, mut outgoing: super::backlog::Receiver) {
    while let Some(mut batch) = outgoing.recv().await {
        while let Some(more) = outgoing.try_recv() {
            batch.extend(more);
        }
        let sends = batch.into_iter().map(|(key, bytes)| {
            let mut conn = conn.clone();
            async move {
                let mut backoff = Backoff::from(Duration::from_millis(20));
                while let Err(e) = conn.spublish::<_, _, ()>(&key, &bytes).await {
                    tracing::warn!(error = ?e, "publishing to the Redis cluster failed; retrying");
                    metrics::BUS_ERRORS.increment(1);
                    backoff.wait().await;
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}

async fn subscribe_loop(
    mut conn: ClusterConnection,
    rx: Receiver,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    mut interest: mpsc::UnboundedReceiver<Interest>,
) {
    resubscribe(&mut conn, &rx).await;
    loop {
        tokio::select! {
            push = pushes.recv() => match push {
                None => return,
                Some(push) => match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let Some(msg) = redis::Msg::from_push_info(push) {
                            rx.handle(msg);
                        }
                    }
                    PushKind::Disconnection => {
                        metrics::BUS_RECONNECTS.increment(1);
                        tracing::warn!("a Redis cluster connection dropped; resubscribing and resynchronising");
                        resubscribe(&mut conn, &rx).await;
                        for channel in rx.hub.channels() {
                            rx.hub.resync(channel);
                        }
                    }
                    _ => {}
                },
            },
            change = interest.recv() => match change {
                None => return,
                Some(Interest::Subscribe(channel, confirmed)) => {
                    // On failure the confirmation is dropped: the subscriber gets `unavailable`.
                    if conn.ssubscribe(channel_key(&rx.prefix, &channel)).await.is_ok() {
                        let _ = confirmed.send(());
                    }
                }
                Some(Interest::Unsubscribe(channel)) => {
                    if !rx.hub.has_channel(&channel) {
                        let _ = conn.sunsubscribe(channel_key(&rx.prefix, &channel)).await;
                    }
                }
            },
        }
    }
}

/// Subscribes the control channel and every channel with local interest, one call each,
/// retrying each until its shard answers.
async fn resubscribe(conn: &mut ClusterConnection, rx: &Receiver) {
    let channels = rx.hub.channels();
    let keys = std::iter::once(control_key(&rx.prefix))
        .chain(channels.iter().map(|c| channel_key(&rx.prefix, c)));
    for key in keys {
        while let Err(e) = conn.ssubscribe(&key).await {
            tracing::warn!(error = ?e, "sharded subscribe failed; retrying");
            metrics::BUS_ERRORS.increment(1);
            tokio::time::sleep(RETRY).await;
        }
    }
}
