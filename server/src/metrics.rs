//! Prometheus metrics (`GET /metrics`): the names this server exports and the recorder.
//!
//! Hot paths hold metric handles in statics, so recording is an atomic add, not a registry
//! lookup; fan-out counts deliveries once per message (adding the subscriber count), never once
//! per recipient.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// How often histogram samples are folded into buckets even when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Latency buckets (seconds): 50 µs to 10 s, dense in the 0.1–10 ms range where delivery lives.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Frames a socket could not take at once, so its connection's writer task took over: a
/// steady rise means clients (or the network) read slower than the server sends.
pub(crate) static SOCKET_BLOCKED: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_socket_blocked_total"));
/// Publishes per storage transaction.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// Open WebSocket connections (authenticated).
pub(crate) static CONNECTIONS: LazyLock<Gauge> =
    LazyLock::new(|| gauge!("switchboard_connections"));
/// Channel subscriptions held by connections of this node.
pub(crate) static SUBSCRIPTIONS: LazyLock<Gauge> =
    LazyLock::new(|| gauge!("switchboard_subscriptions"));
/// Messages durably stored by this node (acked publishes).
pub(crate) static MESSAGES_IN: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_messages_in_total"));
/// Message frames queued to local subscribers (live fan-out and `since` replay).
pub(crate) static MESSAGES_OUT: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_messages_out_total"));
/// Publish received → acked (stored), seconds.
pub(crate) static PUBLISH_ACK: LazyLock<Histogram> =
    LazyLock::new(|| histogram!("switchboard_publish_ack_seconds"));
/// Publish received (on the publishing node) → queued to local subscribers, seconds.
pub(crate) static PUBLISH_DELIVER: LazyLock<Histogram> =
    LazyLock::new(|| histogram!("switchboard_publish_deliver_seconds"));
/// Connections closed because their outbound queue overflowed (close 4008).
pub(crate) static SLOW_CONSUMERS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_slow_consumer_disconnects_total"));
/// Publishes per storage transaction.
pub(crate) static STORE_BATCH: LazyLock<Histogram> =
    LazyLock::new(|| histogram!("switchboard_store_batch_size"));
/// Storage transaction time for a publish batch, seconds.
pub(crate) static STORE_COMMIT: LazyLock<Histogram> =
    LazyLock::new(|| histogram!("switchboard_store_commit_seconds"));
/// Publish batches whose transaction failed (their publishers got `unavailable`).
pub(crate) static STORE_FAILURES: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_store_failures_total"));
/// Storage timestamp → received from Redis on another node, seconds (cross-node bus lag).
pub(crate) static BUS_LAG: LazyLock<Histogram> =
    LazyLock::new(|| histogram!("switchboard_bus_lag_seconds"));
/// Reconnects of the Redis pub/sub connection (each followed by a resync from storage).
pub(crate) static BUS_RECONNECTS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_bus_reconnects_total"));
/// Failed Redis operations (connects, publishes), each retried.
pub(crate) static BUS_ERRORS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_bus_errors_total"));
/// Committed messages not handed to Redis because the outgoing backlog was full (an outage
/// longer than `SWITCHBOARD_BUS_BACKLOG_BYTES` lasts); other nodes read them from storage.
pub(crate) static BUS_DROPPED: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_bus_dropped_total"));
/// Bus envelopes dropped because their MAC was missing or wrong (something other than a node
/// of this cluster published on its Redis channels).
pub(crate) static BUS_FORGED: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_bus_forged_total"));
/// Gaps the sequencer had to fill from storage (messages the bus lost or reordered too long).
pub(crate) static GAP_REPAIRS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_gap_repairs_total"));
/// Feed messages written by post fan-out (one per follower feed, plus the author's own).
pub(crate) static FEED_FANOUT_MESSAGES: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_feed_fanout_messages_total"));
/// Post created → its fan-out reached the last follower, seconds.
pub(crate) static FEED_FANOUT_DURATION: LazyLock<Histogram> =
    LazyLock::new(|| histogram!("switchboard_feed_fanout_seconds"));
/// Post fan-outs waiting or in progress on this node.
pub(crate) static FEED_FANOUT_ACTIVE: LazyLock<Gauge> =
    LazyLock::new(|| gauge!("switchboard_feed_fanouts_active"));
/// Notifications stored, by this node.
pub(crate) static NOTIFICATIONS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_notifications_total"));
/// Chat messages whose mentions were not processed because the mention queue was full.
pub(crate) static MENTIONS_DROPPED: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_mentions_dropped_total"));
/// Stored messages that could not be encoded for a subscriber (the payload is not JSON: storage
/// corruption). Should stay 0: any stored JSON is deliverable in both encodings.
pub(crate) static UNDELIVERABLE: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_undeliverable_messages_total"));
/// Subscriptions ended because a room's access rules changed and no longer admit the user.
pub(crate) static EVICTIONS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_subscriptions_evicted_total"));
/// Items a background worker could not process and skipped (logged), by worker.
pub(crate) fn worker_skipped(worker: &'static str) {
    counter!("switchboard_worker_skipped_total", "worker" => worker).increment(1);
}
/// Background workers that ended unexpectedly (a panic) and were restarted, by worker.
pub(crate) fn worker_restarted(worker: &'static str) {
    counter!("switchboard_worker_restarts_total", "worker" => worker).increment(1);
}
/// Requests, connections and frames refused because they hit a bound, by bound (`limit`: the
/// setting's short name, e.g. `connections`, `connections_per_user`, `register`, `hashing`).
pub(crate) fn refused(limit: &'static str) {
    counter!("switchboard_refused_total", "limit" => limit).increment(1);
}
/// Failed `accept` calls (mostly: out of descriptors).
pub(crate) static ACCEPT_ERRORS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_accept_errors_total"));
/// HTTP connections closed because the client was too slow to send a request's headers (or
/// idle past that time between requests).
pub(crate) static HTTP_TIMEOUTS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_http_header_timeouts_total"));
/// HTTP handlers that panicked (answered 500).
pub(crate) static HTTP_PANICS: LazyLock<Counter> =
    LazyLock::new(|| counter!("switchboard_http_panics_total"));

struct Recorder {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

static RECORDER: OnceLock<Option<Recorder>> = OnceLock::new();

/// Installs the process-wide recorder (once; several in-process servers in tests share it).
pub(crate) fn install() {
    RECORDER.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full("switchboard_store_batch_size".into()), BATCH_BUCKETS));
        let handle = match builder.and_then(|b| b.install_recorder()) {
            Ok(handle) => handle,
            Err(e) => {
                tracing::warn!(error = ?e, "metrics recorder not installed; /metrics will be empty");
                return None;
            }
        };
        let process = metrics_process::Collector::default();
        process.describe();
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            })
            .ok();
        Some(Recorder { handle, process })
    });
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

async fn render(State(_): State<AppState>) -> impl IntoResponse {
    let body = match RECORDER.get().and_then(Option::as_ref) {
        Some(r) => {
            // Process RSS and CPU are sampled at scrape time.
            r.process.collect();
            r.handle.render()
        }
        None => String::new(),
    };
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
