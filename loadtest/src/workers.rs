//! Multi-process runs. One process holds at most ~20,000 sockets (the hard file-descriptor
//! limit), so bigger runs re-execute this binary as `switchboard-loadtest worker`, once per
//! [`crate::options::CONNECTIONS_PER_WORKER`] connections. Each worker reads its
//! [`EngineSpec`] and then coordinator messages as JSON lines on stdin, and writes engine
//! messages (progress, its partial tally) as JSON lines on stdout; stderr is inherited.

use std::path::Path;
use std::process::Stdio;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::link::{EngineSpec, Links, ToCoord, ToEngine};

/// Starts one worker process per spec.
pub fn spawn(program: &Path, specs: Vec<EngineSpec>) -> anyhow::Result<Links> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut senders = Vec::new();
    let mut children = Vec::new();
    for (k, spec) in specs.into_iter().enumerate() {
        let mut child = Command::new(program)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting worker {k} ({})", program.display()))?;
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, mut rx) = mpsc::unbounded_channel::<ToEngine>();
        let first = serde_json::to_string(&spec)?;
        tokio::spawn(async move {
            let mut line = first;
            loop {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
                let Some(msg) = rx.recv().await else { return };
                line = serde_json::to_string(&msg).expect("messages serialise");
            }
        });
        let events_tx = events_tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut finished = false;
            while let Ok(Some(line)) = lines.next_line().await {
                let msg = serde_json::from_str::<ToCoord>(&line)
                    .unwrap_or_else(|e| ToCoord::Failed(format!("bad worker output: {e}")));
                finished |= matches!(msg, ToCoord::Done(_) | ToCoord::Failed(_));
                if events_tx.send((k, msg)).is_err() {
                    return;
                }
            }
            if !finished {
                let _ = events_tx.send((k, ToCoord::Failed("worker exited early".into())));
            }
        });
        senders.push(tx);
        children.push(child);
    }
    Ok(Links::new(senders, events, children))
}

/// The `worker` subcommand: runs one engine, speaking JSON lines on stdin/stdout.
pub async fn serve_stdio() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines
        .next_line()
        .await?
        .context("no engine spec on stdin")?;
    let spec: EngineSpec = serde_json::from_str(&first).context("engine spec")?;
    let (to_engine, engine_rx) = mpsc::unbounded_channel();
    let (engine_tx, mut from_engine) = mpsc::unbounded_channel();
    tokio::spawn(crate::engine::run(spec, engine_tx, engine_rx));
    // stdin closing (the coordinator died) drops `to_engine`, which stops the engine.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(msg) = serde_json::from_str::<ToEngine>(&line) else {
                return;
            };
            if to_engine.send(msg).is_err() {
                return;
            }
        }
    });
    let mut stdout = tokio::io::stdout();
    while let Some(msg) = from_engine.recv().await {
        let last = matches!(msg, ToCoord::Done(_) | ToCoord::Failed(_));
        let mut line = serde_json::to_string(&msg)?;
        line.push('\n');
        stdout.write_all(line.as_bytes()).await?;
        stdout.flush().await?;
        if last {
            break;
        }
    }
    Ok(())
}
