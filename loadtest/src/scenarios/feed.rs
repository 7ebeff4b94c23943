//! `feed`: one author posts R posts/s over HTTP while N followers receive every post on their own
//! `feed:<user id>` channel, written there by the server's background fan-out.
//!
//! Setup ([`prepare`], before any connection opens, not measured): the author registers (only a
//! registered account can be followed; `lt-author-<run id>`), then every follower — the minted
//! user of its connection — follows it over HTTP, [`FOLLOWS_IN_FLIGHT`] requests at a time.
//!
//! The run ([`plan`]): connection 0 is the author, connected as its account and subscribed to its
//! own feed (which gets every post too); it posts the usual stamped payload as each post's `data`
//! through `POST /api/v1/posts`, one request in flight at a time so post order is send order, and
//! publish→ack latency is the time to the 201. Connections 1..=N are the followers, each
//! subscribed to its feed, reading the stamp back from `data.post.data`.
//!
//! Accounting: a 201 carries no offset, but every feed gets each post exactly once, in post
//! order, with gapless offsets; so a feed's final offset is its offset at subscribe plus the
//! posts acknowledged in the run (reported under [`POSTS`]), and the usual trackers check loss,
//! duplicates and order. Every feed subscriber (the N followers and the author) expects every
//! acknowledged post.
//!
//! `--chat-rate C` adds a chat publisher and one subscriber on `room:lt-feed-<run id>`, counted
//! in the probe lane and reported apart: ordinary publish latency while the posts fan out.

use std::time::Duration;

use anyhow::Context;
use futures::{stream, StreamExt};
use serde_json::{json, Value};

use super::{PeerPlan, PublishPlan, Via};
use crate::options::{FeedParams, RunOptions};
use crate::server::http_base;
use crate::stats::Lane;
use crate::tokens::{user_id, Account, Minter};

/// The key under which the number of posts acknowledged in the run travels with the final
/// offsets. Not a channel name: those always have a `kind:` prefix.
pub const POSTS: &str = "posts";
/// Follow requests in flight during setup.
pub const FOLLOWS_IN_FLIGHT: usize = 64;
/// The author's connection index.
const AUTHOR: u64 = 0;
/// Attempts per follow before setup gives up (throttled or unavailable servers get retried).
const FOLLOW_ATTEMPTS: u32 = 3;
const SETUP_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The author (connection 0), the followers (1..=N), then the optional chat probe's publisher
/// and subscriber.
pub fn plan(p: &FeedParams, run_id: &str, author: &Account) -> Vec<PeerPlan> {
    let mut plans = Vec::with_capacity(p.followers + 3);
    plans.push(PeerPlan {
        index: AUTHOR,
        user: Some(author.clone()),
        subscribe: vec![format!("feed:{}", author.id)],
        publish: Some(PublishPlan {
            channel: POSTS.to_owned(),
            publisher: 0,
            rate: p.rate,
            via: Via::Post,
        }),
        drops: false,
        lane: Lane::Main,
        mix: Default::default(),
    });
    plans.extend(followers(p).map(|index| PeerPlan {
        index,
        user: None,
        subscribe: vec![format!("feed:{}", user_id(index, run_id))],
        publish: None,
        drops: false,
        lane: Lane::Main,
        mix: Default::default(),
    }));
    if p.chat_rate > 0.0 {
        let channel = format!("room:lt-feed-{run_id}");
        let index = p.followers as u64 + 1;
        plans.push(PeerPlan {
            index,
            user: None,
            subscribe: Vec::new(),
            publish: Some(PublishPlan {
                channel: channel.clone(),
                publisher: 1,
                rate: p.chat_rate,
                via: Via::Socket,
            }),
            drops: false,
            lane: Lane::Probe,
            mix: Default::default(),
        });
        plans.push(PeerPlan {
            index: index + 1,
            user: None,
            subscribe: vec![channel],
            publish: None,
            drops: false,
            lane: Lane::Probe,
            mix: Default::default(),
        });
    }
    plans
}

/// The followers' connection indices.
fn followers(p: &FeedParams) -> impl Iterator<Item = u64> {
    1..=p.followers as u64
}

/// Registers the author and has every follower follow it. Fails unless every follow took.
pub async fn prepare(opts: &RunOptions, p: &FeedParams, run_id: &str) -> anyhow::Result<Account> {
    let base = http_base(&opts.urls[0])?;
    let http = reqwest::Client::builder()
        .timeout(SETUP_HTTP_TIMEOUT)
        .build()?;
    let minter = Minter::new(&opts.secret, run_id);
    let author = register_author(&http, &base, &minter, run_id).await?;
    if opts.progress {
        eprintln!(
            "feed setup: author {} ({}); {} followers following…",
            author.username, author.id, p.followers
        );
    }
    let url = format!("{base}/api/v1/users/{}/follow", author.id);
    let failures: Vec<(u64, anyhow::Error)> = stream::iter(followers(p))
        .map(|index| {
            let (http, url, minter) = (&http, &url, &minter);
            async move { (index, follow(http, url, minter, index).await) }
        })
        .buffer_unordered(FOLLOWS_IN_FLIGHT)
        .filter_map(|(index, result)| async move { result.err().map(|e| (index, e)) })
        .collect()
        .await;
    if let Some((index, first)) = failures.first() {
        anyhow::bail!(
            "feed setup: {} of {} followers could not follow the author (first, {}: {first:#})",
            failures.len(),
            p.followers,
            minter.user(*index)
        );
    }
    Ok(author)
}

/// `lt-author-<run id>`, registered; when taken (a reused `--run-id`), the existing account.
async fn register_author(
    http: &reqwest::Client,
    base: &str,
    minter: &Minter,
    run_id: &str,
) -> anyhow::Result<Account> {
    let username = format!("lt-author-{run_id}");
    // Never used to log in: the author's tokens are minted.
    let password = uuid::Uuid::new_v4().simple().to_string();
    let response = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .context("feed setup: registering the author")?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let user = match status {
        201 => body["user"].clone(),
        409 => {
            let token = minter.token(AUTHOR)?;
            let response = http
                .get(format!("{base}/api/v1/users?username={username}"))
                .bearer_auth(token)
                .send()
                .await
                .context("feed setup: looking the author up")?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            anyhow::ensure!(
                status == 200,
                "feed setup: {username} exists but looking it up got HTTP {status}: {body}"
            );
            body["user"].clone()
        }
        _ => anyhow::bail!("feed setup: registering {username} got HTTP {status}: {body}"),
    };
    let field = |name: &str| {
        user[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("feed setup: no user.{name} in {body}"))
    };
    Ok(Account {
        id: field("id")?,
        username: field("username")?,
    })
}

/// Follower `index` follows the author (`url`); 201 and 200 (already) both do.
async fn follow(
    http: &reqwest::Client,
    url: &str,
    minter: &Minter,
    index: u64,
) -> anyhow::Result<()> {
    let mut attempt = 1;
    loop {
        let sent = http
            .post(url)
            .bearer_auth(minter.token(index)?)
            .send()
            .await;
        let retry = match sent {
            Ok(r) if matches!(r.status().as_u16(), 200 | 201) => return Ok(()),
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                anyhow::anyhow!("HTTP {}", r.status())
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                anyhow::bail!("HTTP {status}: {body}");
            }
            Err(e) => anyhow::Error::new(e),
        };
        if attempt == FOLLOW_ATTEMPTS {
            return Err(retry.context(format!("after {attempt} attempts")));
        }
        tokio::time::sleep(Duration::from_millis(250) * attempt).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author() -> Account {
        Account {
            id: "0193-author".into(),
            username: "lt-author-r".into(),
        }
    }

    #[test]
    fn the_author_posts_and_every_follower_reads_its_own_feed() {
        let p = FeedParams {
            followers: 3,
            rate: 10.0,
            chat_rate: 0.0,
        };
        let plans = plan(&p, "r", &author());
        assert_eq!(plans.len(), 4);
        let indices: Vec<u64> = plans.iter().map(|p| p.index).collect();
        assert_eq!(indices, vec![0, 1, 2, 3]);
        let a = &plans[0];
        assert_eq!(a.user, Some(author()));
        assert_eq!(a.subscribe, vec!["feed:0193-author".to_owned()]);
        assert_eq!(
            a.publish,
            Some(PublishPlan {
                channel: POSTS.to_owned(),
                publisher: 0,
                rate: 10.0,
                via: Via::Post,
            })
        );
        for f in &plans[1..] {
            assert_eq!(f.user, None);
            assert_eq!(f.subscribe, vec![format!("feed:lt-{}-r", f.index)]);
            assert_eq!(
                (f.publish.as_ref(), f.drops, f.lane),
                (None, false, Lane::Main)
            );
        }
        // Posts are not subject to the per-connection publish limit.
        let fast = FeedParams { rate: 500.0, ..p };
        assert_eq!(
            super::super::over_rate_limit(&plan(&fast, "r", &author())),
            None
        );
    }

    #[test]
    fn the_chat_probe_is_its_own_lane() {
        let p = FeedParams {
            followers: 2,
            rate: 10.0,
            chat_rate: 5.0,
        };
        let plans = plan(&p, "r", &author());
        assert_eq!(plans.len(), 5);
        let (publisher, subscriber) = (&plans[3], &plans[4]);
        assert_eq!((publisher.index, subscriber.index), (3, 4));
        assert_eq!(
            (publisher.lane, subscriber.lane),
            (Lane::Probe, Lane::Probe)
        );
        assert_eq!(
            publisher.publish,
            Some(PublishPlan {
                channel: "room:lt-feed-r".into(),
                publisher: 1,
                rate: 5.0,
                via: Via::Socket,
            })
        );
        assert!(publisher.subscribe.is_empty());
        assert_eq!(subscriber.subscribe, vec!["room:lt-feed-r".to_owned()]);
        assert!(plans[..3].iter().all(|p| p.lane == Lane::Main));
    }
}
