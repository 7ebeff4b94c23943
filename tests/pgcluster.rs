//! A PostgreSQL server of a test's own, which the test may stop and start again (the shared one
//! on 5432 serves every other test). Made with Debian's `initdb` as the `postgres` user (PostgreSQL
//! refuses to run as root) in a temporary directory; trust auth for `root` on loopback.

use std::path::PathBuf;
use std::process::Command;

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    /// Creates and starts the server (about a second).
    pub fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL under /usr/lib/postgresql (scripts/services installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let pg = PrivatePostgres { dir, bin, port };
        pg.as_postgres(&[
            pg.bin.join("initdb").to_str().unwrap(),
            "-D",
            pg.data().to_str().unwrap(),
            "-U",
            "root",
            "--auth=trust",
            "--no-sync",
        ]);
        pg.resume();
        pg
    }

    /// `postgres://root@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (`-m immediate`: connections are cut, like a crash).
    pub fn stop(&self) {
        let data = self.data();
        self.as_postgres(&[
            self.bin.join("pg_ctl").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("log");
        self.as_postgres(&[
            self.bin.join("pg_ctl").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "-w",
            "start",
        ]);
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, args: &[&str]) {
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args));
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

#[track_caller]
fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
