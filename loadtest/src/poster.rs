//! Publishing over HTTP for a [`crate::scenarios::Via::Post`] publisher: each
//! `POST /api/v1/posts` runs in its own task, and its outcome comes back on a channel that the
//! connection task selects on alongside its socket, as it would an ack frame.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

/// A post not answered by then counts as failed (its outcome unknown), like a connect attempt.
pub const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for posts (one per engine).
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .tcp_nodelay(true)
        .build()?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 201: stored (its fan-out follows in the background).
    Created,
    /// Any other HTTP status: not stored.
    Refused(u16),
    /// No answer (connection failure or timeout): the outcome is unknown. The value is the error
    /// count key.
    Failed(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The request id given to [`Poster::send`].
    pub id: i64,
    pub outcome: Outcome,
}

pub struct Poster {
    http: reqwest::Client,
    url: String,
    tx: UnboundedSender<Reply>,
    rx: UnboundedReceiver<Reply>,
}

impl Poster {
    /// Posts to `<base>/api/v1/posts` (`base` as `http://host:port`).
    pub fn new(http: reqwest::Client, base: &str) -> Poster {
        let (tx, rx) = mpsc::unbounded_channel();
        Poster {
            http,
            url: format!("{base}/api/v1/posts"),
            tx,
            rx,
        }
    }

    /// Starts posting `data` with the bearer `token`; the reply comes out of [`Poster::next`].
    pub fn send(&self, id: i64, token: &str, data: Value) {
        let request = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .json(&json!({ "data": data }));
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    // Read the (small) body so the connection goes back to the pool.
                    let _ = response.bytes().await;
                    match status {
                        StatusCode::CREATED => Outcome::Created,
                        other => Outcome::Refused(other.as_u16()),
                    }
                }
                Err(e) if e.is_timeout() => Outcome::Failed("post_timeout"),
                Err(_) => Outcome::Failed("post_failed"),
            };
            // The connection task may be gone (the run ended): nobody is waiting then.
            let _ = tx.send(Reply { id, outcome });
        });
    }

    /// The next answer to a post. Cancel-safe (used inside `select!`).
    pub async fn next(&mut self) -> Reply {
        match self.rx.recv().await {
            Some(reply) => reply,
            // Never: this poster holds a sender itself.
            None => std::future::pending().await,
        }
    }
}
