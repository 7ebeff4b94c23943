//! A short `switchboard-loadtest fanout` run against a real server: the tool's own correctness
//! checks must find zero loss, duplicates and reordering, and count what it expected.

use std::time::Duration;

use switchboard_loadtest::{run, FanoutParams, RunOptions, Scenario};
use switchboard_tests::{Backend, TestApp, SECRET};

on_both_backends!(a_short_fanout_run_loses_nothing);

async fn a_short_fanout_run_loses_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let opts = RunOptions {
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(2),
        drain: Duration::from_secs(3),
        ..RunOptions::new(
            app.ws_url(),
            SECRET,
            Scenario::Fanout(FanoutParams {
                subscribers: 40,
                rate: 50.0,
                publishers: Some(2),
            }),
        )
    };
    let report = run(opts).await.unwrap();
    assert_eq!(report.connections.failed, 0, "{:?}", report.failures);
    assert!(
        report.published >= 50,
        "published only {}",
        report.published
    );
    assert_eq!(
        (report.lost, report.duplicates, report.out_of_order),
        (0, 0, 0)
    );
    assert_eq!(report.delivered, report.expected);
    assert_eq!(
        report.expected,
        report.published * 40,
        "every subscriber expects every message"
    );
    assert_eq!(report.exit_code(), 0, "verdict {:?}", report.verdict);
    app.stop().await.unwrap();
}
