//! A fresh database per test: a temporary directory for SQLite, or a uniquely named PostgreSQL
//! database (dropped again when the test ends, even if it failed).

use std::path::PathBuf;

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Server URL of the PostgreSQL the tests use (`SWITCHBOARD_TEST_PG`, default the local one).
pub fn pg_server() -> String {
    std::env::var("SWITCHBOARD_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432".into())
}

pub struct TestDb {
    pub backend: Backend,
    dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let pg_name = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_server()))
                    .await
                    .expect("PostgreSQL must be running for the tests (see README)");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                Some(name)
            }
        };
        TestDb {
            backend,
            dir,
            pg_name,
        }
    }

    /// `DATABASE_URL` for the server (`None` = SQLite in the data dir).
    pub fn url(&self) -> Option<String> {
        self.pg_name
            .as_ref()
            .map(|name| format!("{}/{name}", pg_server()))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A direct connection pool to the server's database (after a server created its schema),
    /// for setting up bulk data and for checking what was stored.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = self.url().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.dir.path().join("switchboard.db").display()
            )
        });
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("connecting to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async context guarantees: use a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) =
                    sqlx::PgConnection::connect(&format!("{}/postgres", pg_server())).await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}
