//! A PostgreSQL server of a run's own, which it may stop and start again (the shared one on 5432
//! serves everything else). Made with Debian's `initdb` as the `postgres` user (PostgreSQL refuses
//! to run as root) in a temporary directory; trust auth for `root` on loopback.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    /// Creates and starts the server (about a second).
    pub fn start() -> anyhow::Result<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context(
                "Debian's PostgreSQL under /usr/lib/postgresql (scripts/services installs it)",
            )?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .context("no initdb under /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::tempdir()?;
        run(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pg = PrivatePostgres { dir, bin, port };
        let (initdb, data) = (pg.bin.join("initdb"), pg.data());
        pg.as_postgres(&[
            path(&initdb)?,
            "-D",
            path(&data)?,
            "-U",
            "root",
            "--auth=trust",
            "--no-sync",
        ])?;
        pg.resume()?;
        Ok(pg)
    }

    /// `postgres://root@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (`-m immediate`: connections are cut, like a crash).
    pub fn stop(&self) -> anyhow::Result<()> {
        let (pg_ctl, data) = (self.bin.join("pg_ctl"), self.data());
        self.as_postgres(&[
            path(&pg_ctl)?,
            "-D",
            path(&data)?,
            "-m",
            "immediate",
            "-w",
            "stop",
        ])
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn resume(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.dir.path().display()
        );
        let (pg_ctl, data, log) = (
            self.bin.join("pg_ctl"),
            self.data(),
            self.dir.path().join("log"),
        );
        self.as_postgres(&[
            path(&pg_ctl)?,
            "-D",
            path(&data)?,
            "-l",
            path(&log)?,
            "-o",
            &options,
            "-w",
            "start",
        ])
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, args: &[&str]) -> anyhow::Result<()> {
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn path(p: &std::path::Path) -> anyhow::Result<&str> {
    p.to_str().context("a non-UTF-8 temporary path")
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
