//! Feeds: the follow graph, posts fanned out live into followers' `feed:<id>` channels, feed
//! pages, `since` recovery, privacy, big fan-outs, and fan-outs that survive a restart.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;
use switchboard_loadtest::tokens::Minter;
use switchboard_protocol::{ClientFrame, ErrorCode, MessageFrame};
use switchboard_tests::{Backend, Encoding, TestApp, TestDb, User, WsClient, PATIENCE, SECRET};

async fn follow(app: &TestApp, who: &User, whom: &User) -> u16 {
    let path = format!("/api/v1/users/{}/follow", whom.id);
    app.post(&path, Some(&who.access_token), json!(null))
        .await
        .0
}

async fn post(app: &TestApp, author: &User, data: Value) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/posts",
            Some(&author.access_token),
            json!({ "data": data }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["post"].clone()
}

async fn subscribed(app: &TestApp, user: &User, channel: &str, since: Option<u64>) -> WsClient {
    let mut ws = app.ws(user, Encoding::Json).await;
    ws.subscribe(channel, since).await.expect("subscribe");
    ws
}

fn ids<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect()
}

on_both_backends!(follow_graph_pages_and_refuses_bad_requests);

async fn follow_graph_pages_and_refuses_bad_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    assert_eq!(follow(&app, &bob, &alice).await, 201);
    assert_eq!(follow(&app, &carol, &alice).await, 201);
    assert_eq!(
        follow(&app, &bob, &alice).await,
        200,
        "following twice is a no-op"
    );
    assert_eq!(follow(&app, &alice, &alice).await, 422);
    let (status, body) = app
        .post(
            "/api/v1/users/nobody/follow",
            Some(&alice.access_token),
            json!(null),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/users/{}/follow", alice.id),
            None,
            json!(null),
        )
        .await;
    assert_eq!(status, 401);

    // Newest follower first, one per page, until next_before is null.
    let token = Some(alice.access_token.as_str());
    let base = format!("/api/v1/users/{}/followers?limit=1", alice.id);
    let (_, first) = app.get(&base, token).await;
    assert_eq!(ids(&first, "users"), [carol.id.as_str()]);
    assert_eq!(first["users"][0]["username"], carol.username.as_str());
    let next = first["next_before"].as_i64().unwrap();
    let (_, second) = app.get(&format!("{base}&before={next}"), token).await;
    assert_eq!(ids(&second, "users"), [bob.id.as_str()]);
    let next = second["next_before"].as_i64().unwrap();
    let (_, end) = app.get(&format!("{base}&before={next}"), token).await;
    assert!(ids(&end, "users").is_empty() && end["next_before"].is_null());

    let (_, following) = app
        .get(&format!("/api/v1/users/{}/following", bob.id), token)
        .await;
    assert_eq!(ids(&following, "users"), [alice.id.as_str()]);
    let (_, profile) = app.get(&format!("/api/v1/users/{}", alice.id), token).await;
    assert_eq!(
        (
            profile["user"]["followers"].as_i64(),
            profile["user"]["following"].as_i64()
        ),
        (Some(2), Some(0))
    );
    let (_, found) = app
        .get(&format!("/api/v1/users?username={}", bob.username), token)
        .await;
    assert_eq!(found["user"]["id"], bob.id.as_str());

    let path = format!("/api/v1/users/{}/follow", alice.id);
    assert_eq!(
        app.delete(&path, Some(&bob.access_token), json!(null))
            .await
            .0,
        204
    );
    assert_eq!(
        app.delete(&path, Some(&bob.access_token), json!(null))
            .await
            .0,
        404
    );
    let (_, after) = app
        .get(&format!("/api/v1/users/{}/followers", alice.id), token)
        .await;
    assert_eq!(ids(&after, "users"), [carol.id.as_str()]);
}

on_both_backends!(posts_reach_followers_live_in_pages_and_after_reconnect);

async fn posts_reach_followers_live_in_pages_and_after_reconnect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    assert_eq!(follow(&app, &bob, &alice).await, 201);
    let mut bob_ws = subscribed(&app, &bob, &format!("feed:{}", bob.id), None).await;
    let mut carol_ws = subscribed(&app, &carol, &format!("feed:{}", carol.id), None).await;

    let mut posted = Vec::new();
    for i in 1..=3 {
        posted.push(post(&app, &alice, json!({ "text": format!("post {i}") })).await);
    }
    let live = bob_ws.messages(3).await;
    for (i, (m, p)) in live.iter().zip(&posted).enumerate() {
        assert_eq!(m.channel, format!("feed:{}", bob.id));
        assert_eq!(m.offset, i as u64 + 1, "feed offsets are gapless from 1");
        assert_eq!(m.from, alice.id);
        assert_eq!(m.data["kind"], "post");
        assert_eq!(m.data["post"]["id"], p["id"]);
        assert_eq!(
            m.data["post"]["author"]["username"],
            alice.username.as_str()
        );
        assert_eq!(
            m.data["post"]["data"],
            json!({ "text": format!("post {}", i + 1) })
        );
    }
    carol_ws.assert_no_message(Duration::from_millis(300)).await;

    // The feed page: newest first, continued by next_before.
    let token = Some(bob.access_token.as_str());
    let (status, page) = app.get("/api/v1/feed?limit=2", token).await;
    assert_eq!(status, 200);
    let offsets = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["offset"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(offsets(&page), [3, 2]);
    assert_eq!(page["items"][0]["post"]["id"], posted[2]["id"]);
    let next = page["next_before"].as_u64().unwrap();
    let (_, rest) = app
        .get(&format!("/api/v1/feed?limit=2&before={next}"), token)
        .await;
    assert_eq!(offsets(&rest), [1]);
    assert!(rest["next_before"].is_null());
    // The author's own feed has the posts too; a non-follower's has none.
    let (_, own) = app.get("/api/v1/feed", Some(&alice.access_token)).await;
    assert_eq!(offsets(&own), [3, 2, 1]);
    let (_, none) = app.get("/api/v1/feed", Some(&carol.access_token)).await;
    assert_eq!(offsets(&none), Vec::<u64>::new());

    // Offline, then back with `since`: exactly what was missed.
    drop(bob_ws);
    for i in 4..=5 {
        posted.push(post(&app, &alice, json!({ "text": format!("post {i}") })).await);
    }
    let mut bob_ws = subscribed(&app, &bob, &format!("feed:{}", bob.id), Some(3)).await;
    let missed = bob_ws.messages(2).await;
    assert_eq!(missed.iter().map(|m| m.offset).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(missed[1].data["post"]["id"], posted[4]["id"]);
    bob_ws.assert_no_message(Duration::from_millis(300)).await;

    // A user's posts, newest first.
    let (_, by_alice) = app
        .get(&format!("/api/v1/users/{}/posts?limit=10", alice.id), token)
        .await;
    let expected: Vec<&str> = posted
        .iter()
        .rev()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids(&by_alice, "posts"), expected);
}

on_both_backends!(nobody_reads_another_users_feed_or_notifications);

async fn nobody_reads_another_users_feed_or_notifications(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (bob, mallory) = (app.user("bob").await, app.user("mallory").await);
    let mut ws = app.ws(&mallory, Encoding::Json).await;
    for kind in ["feed", "user"] {
        let channel = format!("{kind}:{}", bob.id);
        let refused = ws.subscribe(&channel, Some(0)).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::Forbidden, "{channel}");
        let path = format!("/api/v1/channels/{channel}/messages");
        let (status, body) = app.get(&path, Some(&mallory.access_token)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{channel}"
        );
        // Only the server writes there, even to one's own.
        for target in [channel.clone(), format!("{kind}:{}", mallory.id)] {
            let refused = ws
                .publish(&target, json!({"fake": true}), &mut Vec::new())
                .await
                .unwrap_err();
            assert_eq!(refused.code, ErrorCode::Forbidden, "{target}");
            let path = format!("/api/v1/channels/{target}/messages");
            let body = json!({"data": {"fake": true}});
            let (status, _) = app.post(&path, Some(&mallory.access_token), body).await;
            assert_eq!(status, 403, "{target}");
        }
    }
    for path in [
        "/api/v1/feed",
        "/api/v1/notifications",
        "/api/v1/notifications/unread_count",
    ] {
        assert_eq!(app.get(path, None).await.0, 401, "{path}");
    }
}

/// Follows `author` as `n` token-only users, straight into the database (10k follow requests
/// would each notify the author, which is not what this test is about).
async fn bulk_followers(db: &TestDb, author: &User, minter: &Minter, n: u64) {
    let pool = db.pool().await;
    let mut tx = pool.begin().await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut sql = String::from(
            "INSERT INTO follows (follower, follower_name, followee, followee_name, created_at) VALUES ",
        );
        for (k, _) in chunk.iter().enumerate() {
            let b = k * 5;
            if k > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
        }
        let mut q = sqlx::query(&sql);
        for &i in chunk {
            q = q
                .bind(minter.user(i))
                .bind(minter.user(i))
                .bind(author.id.clone())
                .bind(author.username.clone())
                .bind(0i64);
        }
        q.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Feed messages of `post_id` per feed channel, straight from storage.
async fn feed_copies(db: &TestDb, post_id: &str) -> HashMap<String, i64> {
    let pool = db.pool().await;
    sqlx::query("SELECT channel, COUNT(*) FROM messages WHERE id = $1 AND channel LIKE 'feed:%' GROUP BY channel")
        .bind(post_id)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

on_both_backends!(a_post_to_ten_thousand_followers_reaches_every_connected_one);

/// 10k followers, 500 of them connected: each connected one gets the post live exactly once, all
/// 10k feeds (and the author's) store it exactly once, and chat published meanwhile is acked and
/// delivered in full and in order.
async fn a_post_to_ten_thousand_followers_reaches_every_connected_one(backend: Backend) {
    const FOLLOWERS: u64 = 10_000;
    const CONNECTED: u64 = 500;
    let app = TestApp::spawn(backend).await;
    let author = app.user("celebrity").await;
    let chatter = app.user("chatter").await;
    let minter = Minter::new(SECRET, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    bulk_followers(app.db.as_ref().unwrap(), &author, &minter, FOLLOWERS).await;

    let mut followers = Vec::new();
    for i in (0..FOLLOWERS).step_by((FOLLOWERS / CONNECTED) as usize) {
        let mut ws = WsClient::connect(&app.ws_url(), Encoding::MsgPack, None)
            .await
            .unwrap();
        ws.auth(&minter.token(i).unwrap()).await;
        ws.subscribe(&format!("feed:{}", minter.user(i)), None)
            .await
            .unwrap();
        followers.push(ws);
    }
    let mut listener = subscribed(&app, &chatter, "room:meanwhile", None).await;
    let mut talker = app.ws(&chatter, Encoding::Json).await;

    let the_post = post(&app, &author, json!({ "text": "hello everyone" })).await;
    let post_id = the_post["id"].as_str().unwrap().to_owned();
    for n in 1..=50u64 {
        let offset = talker
            .publish("room:meanwhile", json!({ "n": n }), &mut Vec::new())
            .await
            .expect("chat publishes are acked during a big fan-out");
        assert_eq!(offset, n);
    }
    let chat = listener.messages(50).await;
    assert_eq!(
        chat.iter()
            .map(|m| m.data["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (1..=50).collect::<Vec<_>>()
    );

    for ws in &mut followers {
        let got: Vec<MessageFrame> = ws.messages(1).await;
        assert_eq!(got[0].data["post"]["id"], post_id.as_str());
        assert_eq!(got[0].offset, 1);
        ws.assert_no_message(Duration::from_millis(20)).await;
    }
    let copies = feed_copies(app.db.as_ref().unwrap(), &post_id).await;
    assert_eq!(
        copies.len() as u64,
        FOLLOWERS + 1,
        "every follower's feed and the author's"
    );
    assert!(
        copies.values().all(|&n| n == 1),
        "no feed has the post twice"
    );
}

on_both_backends!(a_fan_out_interrupted_by_shutdown_completes_after_restart_exactly_once);

async fn a_fan_out_interrupted_by_shutdown_completes_after_restart_exactly_once(backend: Backend) {
    const FOLLOWERS: u64 = 3_000;
    // Tiny chunks: the fan-out is still going when the server stops.
    let app = TestApp::spawn_with(backend, |c| c.feed_chunk = 5).await;
    let author = app.user("author").await;
    let minter = Minter::new(SECRET, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    bulk_followers(app.db.as_ref().unwrap(), &author, &minter, FOLLOWERS).await;
    let the_post = post(&app, &author, json!({ "text": "survive" })).await;
    let post_id = the_post["id"].as_str().unwrap().to_owned();
    // Stop once some feeds have it: the restarted server must resume, not start over.
    while feed_copies(app.db.as_ref().unwrap(), &post_id)
        .await
        .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let db = app.stop().await.unwrap();
    let partial = feed_copies(&db, &post_id).await.len() as u64;
    assert!(
        partial > 0 && partial < FOLLOWERS + 1,
        "the stop did not interrupt the fan-out ({partial} feeds); the test proves nothing"
    );

    let app = TestApp::spawn_on(db, |c| c.feed_chunk = 200).await;
    let db = app.db.as_ref().unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    loop {
        let copies = feed_copies(db, &post_id).await;
        assert!(
            copies.values().all(|&n| n == 1),
            "a feed got the post twice"
        );
        if copies.len() as u64 == FOLLOWERS + 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fan-out did not resume: {} of {} feeds",
            copies.len(),
            FOLLOWERS + 1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A follower connecting now finds it with `since`.
    let mut ws = WsClient::connect(&app.ws_url(), Encoding::Json, None)
        .await
        .unwrap();
    ws.auth(&minter.token(FOLLOWERS - 1).unwrap()).await;
    ws.send(&ClientFrame::Subscribe {
        id: 99,
        channel: format!("feed:{}", minter.user(FOLLOWERS - 1)),
        since: Some(0),
    })
    .await;
    let got = ws.messages(1).await;
    assert_eq!(got[0].data["post"]["id"], post_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_and_notifications_cross_nodes() {
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = a.user("alice").await;
    let bob = a.user("bob").await;
    // Bob is connected to node B only; everything happens on node A.
    let mut feed = subscribed(b, &bob, &format!("feed:{}", bob.id), None).await;
    let mut inbox = subscribed(b, &bob, &format!("user:{}", bob.id), None).await;
    assert_eq!(follow(a, &bob, &alice).await, 201);
    let the_post = post(a, &alice, json!({ "text": "across" })).await;
    assert_eq!(feed.messages(1).await[0].data["post"]["id"], the_post["id"]);
    let mut ws = a.ws(&alice, Encoding::Json).await;
    ws.publish(
        "room:x",
        json!({ "text": format!("hey @{}", bob.username) }),
        &mut Vec::new(),
    )
    .await
    .unwrap();
    let note = inbox.messages(1).await;
    assert_eq!(note[0].data["kind"], "mention");
    assert_eq!(note[0].data["from"]["id"], alice.id.as_str());
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

/// A node killed with `kill -9` in the middle of a fan-out leaves its progress committed (the
/// cursor moves with every chunk, in the chunk's transaction) and its lease behind. Once the lease
/// is out (here: set to the past instead of waiting 30 s), another node resumes from the cursor,
/// and every feed ends with the post exactly once.
#[test]
fn a_fan_out_cut_by_kill_9_resumes_on_another_node_exactly_once() {
    const FOLLOWERS: u64 = 3_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::new(Backend::Postgres));
    let url = db.url().unwrap();
    let env = |chunk: &str| {
        vec![
            ("DATABASE_URL", url.clone()),
            ("SWITCHBOARD_SECRET", SECRET.to_owned()),
            ("SWITCHBOARD_FEED_CHUNK", chunk.to_owned()),
        ]
    };
    // Tiny chunks: the fan-out is still going when the node dies.
    let mut first = switchboard_tests::process::ServerProcess::spawn(&env("5"));
    let base = format!("http://{}", first.addr);
    let name = format!("author_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let token = rt.block_on(switchboard_tests::register_and_login(&base, &name));
    let http = reqwest::Client::new();
    let me: Value = rt.block_on(async {
        let r = http
            .get(format!("{base}/api/v1/users?username={name}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    });
    let author = User {
        id: me["user"]["id"].as_str().unwrap().to_owned(),
        username: name.clone(),
        password: String::new(),
        access_token: token.clone(),
        refresh_token: String::new(),
    };
    let minter = Minter::new(SECRET, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    rt.block_on(bulk_followers(&db, &author, &minter, FOLLOWERS));
    let post: Value = rt.block_on(async {
        let r = http
            .post(format!("{base}/api/v1/posts"))
            .bearer_auth(&token)
            .json(&json!({ "data": { "text": "survive a kill" } }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        r.json().await.unwrap()
    });
    let post_id = post["post"]["id"].as_str().unwrap().to_owned();
    while rt.block_on(feed_copies(&db, &post_id)).is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    let partial = rt.block_on(feed_copies(&db, &post_id)).len() as u64;
    assert!(
        partial > 0 && partial < FOLLOWERS + 1,
        "the kill did not interrupt the fan-out ({partial} feeds); the test proves nothing"
    );
    rt.block_on(async {
        let pool = db.pool().await;
        sqlx::query("UPDATE posts SET fanout_lease = 0 WHERE id = $1")
            .bind(&post_id)
            .execute(&pool)
            .await
            .unwrap();
    });

    let _second = switchboard_tests::process::ServerProcess::spawn(&env("200"));
    let deadline = std::time::Instant::now() + PATIENCE * 3;
    loop {
        let copies = rt.block_on(feed_copies(&db, &post_id));
        assert!(
            copies.values().all(|&n| n == 1),
            "a feed got the post twice"
        );
        if copies.len() as u64 == FOLLOWERS + 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fan-out did not resume on the other node: {} of {} feeds",
            copies.len(),
            FOLLOWERS + 1
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "kill -9 after {partial} of {} feeds; the other node finished the rest",
        FOLLOWERS + 1
    );
}
