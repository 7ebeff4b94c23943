//! The Redis bus: cross-node fan-out over Redis pub/sub.
//!
//! - Publishing: every committed batch is pipelined to Redis (one PUBLISH per message on `<prefix>ch:<channel>`, one round trip per batch) by a
//!   publisher task that retries through Redis outages, so other nodes get every message.
//! - Receiving: one pub/sub connection subscribes to exactly the channels this node has local
//!   subscribers for, as the hub's interest changes. Redis pub/sub is at-most-once, so nothing
//!   here tries to be reliable: the hub's sequencer orders by offset and fills gaps from storage,
//!   and after a reconnect every channel is resynchronised from storage.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backlog;
use super::backoff::Backoff;
use super::envelope;
use super::receiver::{channel_key, control_key, Receiver};
use super::seal::Seal;
use crate::hub::{Hub, Interest};
use crate::metrics;
use crate::node::NodeId;
use crate::store::StoredMessage;

/// Interval of the liveness check on the pub/sub connection: a half-open TCP connection never
/// ends the message stream, so without it a node could stay deaf indefinitely.
const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// How long a PING (or a reconnect attempt) may take before the connection counts as lost.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The bus of a cluster: what this node sends over Redis. Receiving runs in the tasks that
/// [`start`] returns.
pub(crate) struct RedisBus {
    node: NodeId,
    prefix: String,
    seal: Arc<Seal>,
    to_redis: backlog::Sender,
}

impl super::Bus for RedisBus {
    fn publish(&self, batch: &[StoredMessage]) {
        let envelopes = batch
            .iter()
            .map(|msg| {
                (
                    channel_key(&self.prefix, &msg.channel),
                    self.seal.seal(envelope::encode(&self.node, msg)),
                )
            })
            .collect();
        self.to_redis.messages(envelopes);
    }

    fn control(&self, event: envelope::ControlEvent) {
        let bytes = self.seal.seal(envelope::encode_control(&self.node, &event));
        self.to_redis
            .control(vec![(control_key(&self.prefix), bytes)]);
    }
}

/// How to reach Redis and what to send over it.
pub(crate) struct Options {
    pub url: String,
    /// Prefix of every key and channel.
    pub prefix: String,
    /// A Redis Cluster, with sharded pub/sub.
    pub sharded: bool,
    /// Bound on what waits to be published ([`backlog`]).
    pub backlog_bytes: usize,
    pub seal: Arc<Seal>,
}

/// Connects to Redis and starts the publisher and subscriber tasks. `interest` is the receiving
/// end of the hub's interest changes; what arrives goes into `hub`, and control events to
/// `on_control`.
pub(crate) async fn start(
    options: Options,
    node: NodeId,
    hub: Arc<Hub>,
    interest: mpsc::UnboundedReceiver<Interest>,
    on_control: super::OnControl,
) -> anyhow::Result<(RedisBus, Vec<JoinHandle<()>>)> {
    let Options {
        url,
        prefix,
        sharded,
        backlog_bytes,
        seal,
    } = options;
    let url = url.as_str();
    let sharded = sharded.then(|| super::sharded::Topology::new(url));
    tracing::info!(%node, "joined the Redis bus");

    // Committer → publisher task: encoded envelopes of one batch, in commit order. The committer
    // never blocks; the backlog is bounded in bytes instead (see `backlog`).
    let (to_redis, outgoing) = backlog::channel(backlog_bytes);
    let bus = RedisBus {
        node: node.clone(),
        prefix: prefix.clone(),
        seal: seal.clone(),
        to_redis,
    };
    let receiver = Receiver {
        prefix,
        node,
        hub,
        on_control,
        seal,
    };
    let tasks = match sharded {
        Some(topology) => topology.start(receiver, outgoing, interest).await?,
        None => {
            let client = redis::Client::open(url)?;
            let publisher = ConnectionManager::new(client.clone()).await?;
            vec![
                tokio::spawn(publish_loop(publisher, outgoing)),
                tokio::spawn(subscribe_loop(client, receiver, interest)),
            ]
        }
    };
    Ok((bus, tasks))
}

/// Bytes gathered into one pipeline: after an outage the backlog goes out in several, none of
/// them near Redis' query-buffer limit.
const MAX_PIPELINE_BYTES: usize = 4 * 1024 * 1024;

async fn publish_loop(mut conn: ConnectionManager, mut outgoing: backlog::Receiver) {
    while let Some(first) = outgoing.recv().await {
        let mut pipe = redis::pipe();
        let mut bytes = 0;
        let mut add = |batch: Vec<(String, Vec<u8>)>| {
            for (key, payload) in batch {
                bytes += key.len() + payload.len();
                pipe.publish(key, payload).ignore();
            }
            bytes
        };
        let mut gathered = add(first);
        while gathered < MAX_PIPELINE_BYTES {
            let Some(more) = outgoing.try_recv() else {
                break;
            };
            gathered = add(more);
        }
        // Retry until Redis takes it: other nodes must see every message eventually (late is
        // fine: their sequencers repair gaps from storage and drop duplicates).
        let mut backoff = Backoff::from(Duration::from_millis(20));
        while let Err(e) = pipe.exec_async(&mut conn).await {
            tracing::warn!(error = ?e, "publishing to Redis failed; retrying");
            metrics::BUS_ERRORS.increment(1);
            backoff.wait().await;
        }
    }
}

async fn subscribe_loop(
    client: redis::Client,
    rx: Receiver,
    mut interest: mpsc::UnboundedReceiver<Interest>,
) {
    let mut first_connection = true;
    'reconnect: loop {
        let (mut sink, mut stream) = connect(&client).await;
        // (Re)subscribe the control channel and everything the hub has interest in.
        if sink.subscribe(control_key(&rx.prefix)).await.is_err() {
            continue 'reconnect;
        }
        for channel in rx.hub.channels() {
            if sink
                .subscribe(channel_key(&rx.prefix, &channel))
                .await
                .is_err()
            {
                continue 'reconnect;
            }
        }
        if !first_connection {
            metrics::BUS_RECONNECTS.increment(1);
            tracing::warn!("Redis bus reconnected; resynchronising channels from storage");
            for channel in rx.hub.channels() {
                rx.hub.resync(channel);
            }
        }
        first_connection = false;
        let mut health = tokio::time::interval(HEALTH_EVERY);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        health.tick().await;
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => rx.handle(msg),
                    None => continue 'reconnect,
                },
                change = interest.recv() => match change {
                    None => return, // the hub is gone: shutting down
                    Some(change) => if !apply(&mut sink, &rx.prefix, &rx.hub, change).await {
                        continue 'reconnect;
                    },
                },
                _ = health.tick() => {
                    let pong = tokio::time::timeout(HEALTH_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        continue 'reconnect;
                    }
                }
            }
        }
    }
}

/// Applies one interest change; false when the connection failed.
async fn apply(sink: &mut PubSubSink, prefix: &str, hub: &Hub, change: Interest) -> bool {
    match change {
        Interest::Subscribe(channel, confirmed) => {
            match sink.subscribe(channel_key(prefix, &channel)).await {
                Ok(()) => {
                    let _ = confirmed.send(());
                    true
                }
                // The subscriber gets `unavailable` (its confirmation is dropped) and may retry.
                Err(_) => false,
            }
        }
        Interest::Unsubscribe(channel) => {
            // Interest may have come back while this change waited in the queue.
            if hub.has_channel(&channel) {
                return true;
            }
            sink.unsubscribe(channel_key(prefix, &channel))
                .await
                .is_ok()
        }
    }
}

async fn connect(client: &redis::Client) -> (PubSubSink, redis::aio::PubSubStream) {
    let mut backoff = Backoff::from(Duration::from_millis(50));
    loop {
        match tokio::time::timeout(HEALTH_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => return pubsub.split(),
            Ok(Err(e)) => tracing::warn!(error = ?e, "connecting to Redis failed"),
            Err(_) => tracing::warn!("connecting to Redis timed out"),
        }
        metrics::BUS_ERRORS.increment(1);
        backoff.wait().await;
    }
}
