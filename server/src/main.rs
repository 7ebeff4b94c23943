//! `switchboard`: parse configuration, start telemetry, bind, serve until SIGTERM/SIGINT.

use clap::Parser;
use switchboard_server::config::Config;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn")),
        )
        .init();

    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let storage = if config.database_url.is_some() {
        "database from DATABASE_URL".to_owned()
    } else {
        format!("SQLite in {}", config.data_dir.display())
    };
    println!("switchboard listening on http://{addr} (ws://{addr}/ws), storage: {storage}");

    let shutdown = CancellationToken::new();
    tokio::spawn(signal_on_terminate(shutdown.clone()));
    switchboard_server::run(listener, config, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn signal_on_terminate(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    shutdown.cancel();
}
