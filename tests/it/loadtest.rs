//! Short `switchboard-loadtest` runs against a real server (`fanout`, `feed`, `chat` with edits,
//! deletes, reactions and typing): the tool's own correctness checks must find zero loss,
//! duplicates and reordering, and count what it expected.

use std::time::Duration;

use switchboard_loadtest::{run, ChatParams, FanoutParams, FeedParams, RunOptions, Scenario};
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

on_both_backends!(a_short_feed_run_loses_nothing);

/// The feed scenario end to end: setup (author registered, 40 follows), posts over HTTP fanned
/// out into 41 feeds (the followers' and the author's own), and the chat probe beside them.
async fn a_short_feed_run_loses_nothing(backend: Backend) {
    const FOLLOWERS: u64 = 40;
    let app = TestApp::spawn(backend).await;
    let opts = RunOptions {
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(2),
        drain: Duration::from_secs(3),
        ..RunOptions::new(
            app.ws_url(),
            SECRET,
            Scenario::Feed(FeedParams {
                followers: FOLLOWERS as usize,
                rate: 10.0,
                chat_rate: 5.0,
            }),
        )
    };
    let report = run(opts).await.unwrap();
    assert_eq!(report.scenario, "feed");
    assert_eq!(
        (report.connections.ok, report.connections.failed),
        (FOLLOWERS + 1 + 2, 0),
        "followers, the author and the chat probe's two: {:?}",
        report.failures
    );
    assert!(
        report.published >= 15,
        "published only {} posts",
        report.published
    );
    assert_eq!(
        (
            report.lost,
            report.duplicates,
            report.out_of_order,
            report.seq_regressions
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(report.delivered, report.expected);
    assert_eq!(
        report.expected,
        report.published * (FOLLOWERS + 1),
        "every follower's feed and the author's own expect every post"
    );
    assert!(report.latency_ms.count > 0 && report.ack_latency_ms.count > 0);
    let chat = report.chat.as_ref().expect("the chat probe's numbers");
    assert!(
        chat.published >= 5,
        "chat published only {}",
        chat.published
    );
    assert_eq!((chat.lost, chat.duplicates, chat.out_of_order), (0, 0, 0));
    assert_eq!(
        (chat.delivered, chat.expected),
        (chat.published, chat.published),
        "one subscriber gets every chat message"
    );
    assert!(chat.latency_ms.count > 0 && chat.ack_latency_ms.count > 0);
    assert_eq!(report.errors_total, 0, "{:?}", report.errors);
    assert_eq!(report.exit_code(), 0, "verdict {:?}", report.verdict);
    app.stop().await.unwrap();
}

on_both_backends!(a_short_chat_run_with_lifecycle_actions_and_typing_loses_nothing);

/// The chat mix end to end, at the server's default HTTP write throttle: every 2nd acked publish
/// of each member is edited, reacted to, unreacted and deleted over HTTP, and every member gets
/// every offset of its room, the changes' included, once and in order; typing signals reach
/// every member and are never messages.
async fn a_short_chat_run_with_lifecycle_actions_and_typing_loses_nothing(backend: Backend) {
    const MEMBERS: u64 = 3;
    let app = TestApp::spawn(backend).await;
    let opts = RunOptions {
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(2),
        drain: Duration::from_secs(3),
        ..RunOptions::new(
            app.ws_url(),
            SECRET,
            Scenario::Chat(ChatParams {
                rooms: 2,
                members: MEMBERS as usize,
                rate: 4.0,
                lifecycle_every: 2,
                typing: true,
            }),
        )
    };
    let report = run(opts).await.unwrap();
    assert_eq!(report.connections.failed, 0, "{:?}", report.failures);
    assert_eq!(
        (
            report.lost,
            report.duplicates,
            report.out_of_order,
            report.seq_regressions
        ),
        (0, 0, 0, 0)
    );
    let l = report.lifecycle.as_ref().expect("the lifecycle numbers");
    assert!(l.stored >= 8, "only {} changes stored: {l:?}", l.stored);
    assert_eq!(l.stored % 4, 0, "whole chains of four: {l:?}");
    assert!(
        l.refused.is_empty() && l.failed == 0 && l.unanswered == 0,
        "{l:?}"
    );
    assert_eq!(report.delivered, report.expected);
    assert_eq!(
        report.expected,
        (report.published + l.stored) * MEMBERS,
        "every member expects every publish and every change"
    );
    let received: u64 = l.delivered.values().sum();
    assert_eq!(received, l.stored * MEMBERS, "{:?}", l.delivered);
    assert_eq!(
        l.delivered.get("reaction"),
        l.delivered.get("edit").map(|n| n * 2).as_ref()
    );
    assert_eq!(
        l.verified, received,
        "one process made and saw every change"
    );
    assert_eq!((l.mismatched, l.malformed, l.unrecognised), (0, 0, 0));
    assert!(l.latency_ms.count > 0);
    let t = report.typing.as_ref().expect("the typing numbers");
    assert!(t.sent >= 2 * MEMBERS, "{t:?}");
    assert_eq!((t.acked, t.refused), (t.sent, 0), "{t:?}");
    assert_eq!(
        t.received,
        t.acked * MEMBERS,
        "every member, the typer too: {t:?}"
    );
    assert_eq!(report.errors_total, 0, "{:?}", report.errors);
    assert_eq!(report.exit_code(), 0, "verdict {:?}", report.verdict);
    app.stop().await.unwrap();
}

/// A short `abuse` run: beside bounded attackers, the honest fan-out still loses nothing, the
/// server stays up, and the attackers were refused by the bounds (one user's sockets past its
/// cap, slowloris clients closed, toggling rate-limited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abuse_run_leaves_the_honest_fanout_whole_and_refuses_the_attackers() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.http_header_timeout = std::time::Duration::from_secs(1);
        c.max_connections_per_user = 10;
    })
    .await;
    let opts = RunOptions {
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(3),
        drain: Duration::from_secs(2),
        ..RunOptions::new(
            app.ws_url(),
            SECRET,
            Scenario::Fanout(FanoutParams {
                subscribers: 20,
                rate: 20.0,
                publishers: Some(1),
            }),
        )
    };
    let attackers = switchboard_loadtest::abuse::Attackers {
        register: 2,
        login: 2,
        user_sockets: 30,
        slowloris: 5,
        history_readers: 2,
        big_messages: 5,
        mention_publishers: 1,
        toggle: true,
        head_start: Duration::from_millis(500),
    };
    let report = switchboard_loadtest::abuse::run(opts, attackers)
        .await
        .unwrap();
    for phase in [&report.baseline, &report.during] {
        assert_eq!(
            (phase.lost, phase.duplicates, phase.out_of_order),
            (0, 0, 0)
        );
        assert_eq!(phase.delivered, phase.expected);
        assert!(phase.expected > 0);
    }
    assert!(report.server_up_after);
    let tally = |attacker: &str, outcome: &str| {
        report
            .attackers
            .get(attacker)
            .and_then(|t| t.get(outcome))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        tally("sockets of one user", "opened"),
        10,
        "{:?}",
        report.attackers
    );
    assert_eq!(
        tally("sockets of one user", "429"),
        20,
        "{:?}",
        report.attackers
    );
    assert!(
        tally("slowloris", "closed by the server") >= 5,
        "{:?}",
        report.attackers
    );
    assert_eq!(report.exit_code(), 0);
    app.stop().await.unwrap();
}
