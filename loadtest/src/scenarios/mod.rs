//! Scenarios as *plans*: each turns its parameters into the list of connections to open, what
//! each subscribes to and what each publishes. The engine runs any plan the same way, so a
//! scenario is a few lines and worker processes split a plan by connection index.
//!
//! - [`connect`]: idle authenticated, subscribed connections (memory per connection).
//! - [`fanout`]: one channel, many subscribers.
//! - [`chat`]: rooms × members, everyone publishing to their room.
//! - [`reconnect`]: every subscriber drops mid-run and resumes with `since`.
//! - [`feed`]: one author posting over HTTP, followers receiving the posts on their feeds.
//!
//! A scenario may first [`prepare`] the server (the feed registers its author and has every
//! follower follow it); what that produced ([`Prepared`]) goes to every engine with the plan's
//! inputs.

pub mod chat;
pub mod connect;
pub mod fanout;
pub mod feed;
pub mod reconnect;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lifecycle::Mix;
use crate::options::{Ramp, RunOptions, Scenario};
use crate::stats::Lane;
use crate::tokens::Account;

/// One connection of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerPlan {
    /// Index within the run: picks the user (`lt-<index>-<run id>`), URL and source address.
    pub index: u64,
    /// Acts as this registered account instead of the minted `lt-<index>-<run id>` user.
    pub user: Option<Account>,
    /// Channels to subscribe to before the run starts.
    pub subscribe: Vec<String>,
    pub publish: Option<PublishPlan>,
    /// Drops its socket at the scenario's drop moment and resumes with `since`.
    pub drops: bool,
    /// Where its publishes and deliveries are counted.
    pub lane: Lane,
    /// What it mixes into its publishing (the chat scenario's lifecycle actions and typing).
    pub mix: Mix,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublishPlan {
    /// The channel published to; for [`Via::Post`], the key under which the number of posts
    /// acknowledged is reported ([`feed::POSTS`]).
    pub channel: String,
    /// Publisher index stamped into every payload (`p`), unique within the run.
    pub publisher: u32,
    /// Messages per second from this connection.
    pub rate: f64,
    pub via: Via,
}

/// How a publisher publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `publish` frames on its WebSocket, acked with the stored offset.
    Socket,
    /// `POST /api/v1/posts` as its account, acked by the 201, one request in flight at a time
    /// so that the posts' order is the order they were sent in.
    Post,
}

/// What a scenario set up on the server before any connection opened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    /// The feed scenario's author.
    pub author: Option<Account>,
}

/// Sets the server up for the scenario (before connections open, outside any measurement).
pub async fn prepare(opts: &RunOptions, run_id: &str) -> anyhow::Result<Prepared> {
    match &opts.scenario {
        Scenario::Feed(p) => Ok(Prepared {
            author: Some(feed::prepare(opts, p, run_id).await?),
        }),
        _ => Ok(Prepared::default()),
    }
}

/// Every connection of the run, in index order.
pub fn plan(opts: &RunOptions, run_id: &str, prepared: &Prepared) -> anyhow::Result<Vec<PeerPlan>> {
    Ok(match &opts.scenario {
        Scenario::Connect(p) => connect::plan(p, run_id),
        Scenario::Fanout(p) => fanout::plan(p, run_id),
        Scenario::Chat(p) => chat::plan(p, run_id),
        Scenario::Reconnect(p) => reconnect::plan(p, run_id),
        Scenario::Feed(p) => {
            let author = prepared
                .author
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("the feed scenario has no author: not prepared"))?;
            feed::plan(p, run_id, author)
        }
    })
}

/// How fast connections open: `connect` has its own `--rate`; the others use `--ramp`.
pub fn ramp(opts: &RunOptions) -> Ramp {
    match &opts.scenario {
        Scenario::Connect(p) => Ramp::PerSec(p.rate),
        _ => opts.ramp,
    }
}

/// Warm-up before measuring; `connect` publishes nothing, so its whole hold is measured.
pub fn warmup(opts: &RunOptions) -> Duration {
    match &opts.scenario {
        Scenario::Connect(_) => Duration::ZERO,
        _ => opts.warmup,
    }
}

/// When (after publishing starts) the dropping connections drop their sockets.
pub fn drop_after(opts: &RunOptions) -> Option<Duration> {
    match &opts.scenario {
        Scenario::Reconnect(_) => Some(opts.warmup + opts.duration / 2),
        _ => None,
    }
}

/// Publishing connections whose rate is above the server's default per-connection limit (which
/// applies to `publish` frames, not to posts).
pub fn over_rate_limit(plans: &[PeerPlan]) -> Option<f64> {
    /// The server's default sustained publish rate per connection (`SWITCHBOARD_PUBLISH_RATE`).
    const SERVER_PUBLISH_RATE: f64 = 200.0;
    plans
        .iter()
        .filter_map(|p| p.publish.as_ref())
        .filter(|p| p.via == Via::Socket)
        .map(|p| p.rate)
        .fold(None, |max: Option<f64>, r| {
            Some(max.map_or(r, |m| m.max(r)))
        })
        .filter(|&r| r > SERVER_PUBLISH_RATE)
}

/// `count` publishers sharing `rate` msg/s on `channel`, with indices from 0.
fn publishers(channel: &str, count: usize, rate: f64) -> impl Iterator<Item = PeerPlan> + '_ {
    (0..count).map(move |i| PeerPlan {
        index: i as u64,
        user: None,
        subscribe: Vec::new(),
        publish: Some(PublishPlan {
            channel: channel.to_owned(),
            publisher: i as u32,
            rate: rate / count as f64,
            via: Via::Socket,
        }),
        drops: false,
        lane: Lane::Main,
        mix: Mix::default(),
    })
}

/// `count` subscribers of `channel` with indices from `first`.
fn subscribers(
    channel: &str,
    first: usize,
    count: usize,
    drops: bool,
) -> impl Iterator<Item = PeerPlan> + '_ {
    (first..first + count).map(move |i| PeerPlan {
        index: i as u64,
        user: None,
        subscribe: vec![channel.to_owned()],
        publish: None,
        drops,
        lane: Lane::Main,
        mix: Mix::default(),
    })
}
