//! `feed`: followers receiving posts through their `feed:<user id>` channels. The server has no
//! posts API yet, so this scenario checks for `POST /api/v1/posts` and refuses to run rather
//! than measure something else under the feed's name.

use serde_json::json;

use crate::options::RunOptions;
use crate::server::ServerWatch;
use crate::tokens::Minter;

pub async fn check(opts: &RunOptions, run_id: &str) -> anyhow::Result<()> {
    let server = ServerWatch::new(&opts.urls[0], None)?;
    let token = Minter::new(&opts.secret, run_id).token(0)?;
    let url = format!("{}/api/v1/posts", server.base());
    let status = server
        .http()
        .post(&url)
        .bearer_auth(token)
        .json(&json!({"text": format!("load test {run_id}: feed support probe")}))
        .send()
        .await?
        .status();
    match status.as_u16() {
        404 | 405 => anyhow::bail!("server does not support feeds yet (needs POST /api/v1/posts)"),
        _ => anyhow::bail!(
            "the server answered {status} to POST /api/v1/posts, but this load tester does not \
             drive the feed scenario yet"
        ),
    }
}
