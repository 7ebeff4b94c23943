//! Home feeds: a post is stored once, then written into the `feed:<id>` channel of its author
//! and of every follower, so feeds get the same offsets, live delivery and `since` recovery as
//! chat. The writing ([`fanout`]) runs in the background, a chunk of followers per transaction,
//! so a post by an account with 100k followers never holds up the publish path. docs/FEEDS.md
//! has the design and its limits.

pub(crate) mod fanout;

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::auth::Principal;
use crate::node::NodeId;
use crate::store::{now_ms, Fanout, FanoutLease, Post, Result, Store};

/// How long a node's claim on a post's fan-out lasts without progress before another node may
/// take it over. Renewed with every chunk, which takes milliseconds.
pub(crate) const LEASE: Duration = Duration::from_secs(30);
/// Posts handed to the local worker ahead of it; more wait in storage (see `Feed::post`).
pub(crate) const INBOX: usize = 256;

pub(crate) struct Feed {
    store: Store,
    /// This node's identity as a lease owner.
    node: NodeId,
    /// The local fan-out worker.
    work: mpsc::Sender<Fanout>,
}

impl Feed {
    pub(crate) fn new(store: Store, node: NodeId, work: mpsc::Sender<Fanout>) -> Feed {
        Feed { store, node, work }
    }

    /// Stores a post by `author` and starts its fan-out on this node.
    pub(crate) async fn post(&self, author: &Principal, data: Box<RawValue>) -> Result<Post> {
        let post = new_post(author, data, None);
        let lease = FanoutLease {
            owner: &self.node,
            until: now_ms() + LEASE.as_millis() as i64,
        };
        self.store.create_post(&post, Some(lease)).await?;
        // If the worker is gone (shutting down) or has a backlog, the post waits in storage
        // until its lease runs out and the abandoned-fan-out scan of some node resumes it.
        let _ = self.work.try_send(Fanout {
            post: post.clone(),
            after: 0,
        });
        Ok(post)
    }

    /// Stores a reply to `parent`. Replies are not fanned out to feeds.
    pub(crate) async fn reply(
        &self,
        author: &Principal,
        parent: &Post,
        data: Box<RawValue>,
    ) -> Result<Post> {
        let post = new_post(author, data, Some(parent.id.clone()));
        self.store.create_post(&post, None).await?;
        Ok(post)
    }
}

fn new_post(author: &Principal, data: Box<RawValue>, reply_to: Option<String>) -> Post {
    Post {
        id: uuid::Uuid::now_v7().to_string(),
        author: author.user_id.to_string(),
        author_name: author.username.to_string(),
        reply_to,
        data,
        ts: now_ms(),
    }
}

/// Who wrote a post, as clients see it.
#[derive(Debug, Serialize)]
pub(crate) struct AuthorView<'a> {
    pub id: &'a str,
    pub username: &'a str,
}

/// A post as clients see it (HTTP bodies, feed items, reply notifications). The payload is the
/// stored JSON text, spliced in as it is: nothing here can fail to serialise.
#[derive(Debug, Serialize)]
pub(crate) struct PostView<'a> {
    pub id: &'a str,
    pub author: AuthorView<'a>,
    pub data: &'a RawValue,
    pub ts: i64,
    pub reply_to: Option<&'a str>,
}

impl<'a> From<&'a Post> for PostView<'a> {
    fn from(post: &'a Post) -> PostView<'a> {
        PostView {
            id: &post.id,
            author: AuthorView {
                id: &post.author,
                username: &post.author_name,
            },
            data: &post.data,
            ts: post.ts,
            reply_to: post.reply_to.as_deref(),
        }
    }
}

/// The `data` of a post's message on `feed:<id>`: `{"kind":"post","post":{...}}`.
pub(crate) fn feed_item(post: &Post) -> serde_json::Result<Box<RawValue>> {
    #[derive(Serialize)]
    struct Item<'a> {
        kind: &'static str,
        post: PostView<'a>,
    }
    serde_json::value::to_raw_value(&Item {
        kind: "post",
        post: PostView::from(post),
    })
}
