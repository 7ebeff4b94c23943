//! Serving: the public listener (API and WebSockets) and the admin listener (metrics, probes)
//! until shutdown is asked for, then the ordered stop of [`crate::shutdown`].

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::startup::App;
use crate::{http, net, shutdown, ws};

/// Open sockets the admin listener takes at once.
const ADMIN_SOCKETS: usize = 64;

impl App {
    /// Serves on `public` (and `admin`, unless `None`) until the app's shutdown token is
    /// cancelled, then stops in order ([`shutdown::stop`]) and returns.
    pub(crate) async fn serve(
        self,
        public: TcpListener,
        admin: Option<TcpListener>,
    ) -> anyhow::Result<()> {
        let App { state, background } = self;
        let config = &state.config;
        if config.serves_demo() {
            let addr = public
                .local_addr()
                .context("the public listener's address")?;
            tracing::info!("demo web app served at http://{addr}/ (SWITCHBOARD_DEMO)");
        } else {
            tracing::info!("demo web app not served (SWITCHBOARD_DEMO)");
        }
        let limits = Arc::new(net::listener::Limits {
            sockets: net::Gauge::new(config.connection_cap()),
            per_peer: net::Slots::new(config.max_connections_per_ip),
            trusted: config.trusted_proxies.clone(),
            header_timeout: config.http_header_timeout,
            write_timeout: config.write_timeout,
        });
        let admin_server = admin.map(|admin| {
            // The admin side is for probes and scrapers on a private address: a few sockets.
            let limits = Arc::new(net::listener::Limits {
                sockets: net::Gauge::new(ADMIN_SOCKETS),
                per_peer: net::Slots::new(ADMIN_SOCKETS),
                trusted: Vec::new(),
                header_timeout: limits.header_timeout,
                write_timeout: limits.write_timeout,
            });
            tokio::spawn(net::listener::serve(
                admin,
                http::admin_router(state.clone()),
                limits,
                state.shutdown.clone(),
            ))
        });
        let public_server = tokio::spawn(net::listener::serve(
            public,
            http::router(state.clone(), ws::router()),
            limits,
            state.shutdown.clone(),
        ));

        state.shutdown.cancelled().await;
        shutdown::drain_connections(&state).await;
        public_server.await.context("server task")?;
        if let Some(admin) = admin_server {
            let _ = admin.await;
        }
        drop(state);
        shutdown::stop(background).await;
        Ok(())
    }
}
