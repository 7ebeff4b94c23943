//! `GET /metrics` exposes the documented series in Prometheus text format.

use serde_json::json;
use switchboard_tests::{Backend, Encoding, TestApp};

#[tokio::test]
async fn metrics_expose_connections_messages_latency_storage_and_process() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    ws.subscribe("room:metrics", None).await.unwrap();
    let mut got = Vec::new();
    ws.publish("room:metrics", json!("counted"), &mut got)
        .await
        .unwrap();
    if got.is_empty() {
        got = ws.messages(1).await;
    }
    assert_eq!(got[0].offset, 1);

    // Only the admin listener serves metrics (F22); the public one answers 404.
    let public = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status().as_u16(), 404);
    for probe in ["/healthz", "/readyz"] {
        let resp = app.http.get(app.admin_url(probe)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{probe} on the admin listener");
    }
    let resp = app
        .http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for series in [
        "switchboard_connections",
        "switchboard_subscriptions",
        "switchboard_messages_in_total",
        "switchboard_messages_out_total",
        "switchboard_publish_ack_seconds_bucket",
        "switchboard_publish_deliver_seconds_bucket",
        "switchboard_store_batch_size_bucket",
        "switchboard_store_commit_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(series)),
            "missing {series} in:\n{text}"
        );
    }
    app.stop().await.unwrap();
}
