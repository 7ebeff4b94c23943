//! The token-signing secret, and the files that hold private data. Every node of a cluster
//! shares one secret (`SWITCHBOARD_SECRET`); a single node generates one once into
//! `<data dir>/secret`. Whoever knows it can sign tokens for any user, so it is never weak, never
//! readable by other local users, and never half-written.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::Rng;

/// Shortest secret accepted, in bytes: 256 bits for HS256.
pub(crate) const MIN_LEN: usize = 32;

/// The token-signing secret: `SWITCHBOARD_SECRET`, or the one in the data dir (generated there
/// on first start). Refuses a secret shorter than [`MIN_LEN`] from either place.
pub(crate) fn load(from_env: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = from_env {
        anyhow::ensure!(
            secret.len() >= MIN_LEN,
            "SWITCHBOARD_SECRET must be at least {MIN_LEN} characters"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("secret");
    match std::fs::read_to_string(&path) {
        Ok(stored) => return stored_secret(&path, &stored),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    private_dir(data_dir)?;
    let secret: String = (0..64)
        .map(|_| format!("{:x}", rand::thread_rng().gen_range(0..16u8)))
        .collect();
    if !create_atomically(&path, secret.as_bytes())? {
        // Another process created it first: use that one.
        let stored = std::fs::read_to_string(&path)?;
        return stored_secret(&path, &stored);
    }
    tracing::info!(path = %path.display(), "generated a token-signing secret");
    Ok(secret.into_bytes())
}

fn stored_secret(path: &Path, stored: &str) -> anyhow::Result<Vec<u8>> {
    let secret = stored.trim();
    anyhow::ensure!(
        secret.len() >= MIN_LEN,
        "the secret in {} is {} bytes long; at least {MIN_LEN} are needed. Remove the file to have \
         a new one generated (every token signed with the old one stops working), or set \
         SWITCHBOARD_SECRET",
        path.display(),
        secret.len()
    );
    restrict(path)?;
    Ok(secret.as_bytes().to_vec())
}

/// Writes `contents` to `path` only if nothing is there, all or nothing: a temporary file in the
/// same directory (mode 0600), flushed to disk, then linked into place, so a crash or a full disk
/// never leaves an empty or partial file behind. Returns false when `path` already existed.
pub(crate) fn create_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp: PathBuf = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| -> std::io::Result<()> {
        let mut file = private_options().open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            // The new directory entry itself must survive a crash too.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `dir` if needed and makes it owner-only (0700): it holds the secret, and with SQLite
/// every message and password hash.
pub(crate) fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    set_mode(dir, 0o700)
}

/// Makes an existing file owner-only (0600).
pub(crate) fn restrict(path: &Path) -> anyhow::Result<()> {
    set_mode(path, 0o600)
}

/// Creates `path` empty and owner-only unless it exists (so that SQLite, which gives its WAL and
/// shared-memory files the database file's mode, creates those owner-only too).
pub(crate) fn private_file(path: &Path) -> anyhow::Result<()> {
    match private_options().open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict(path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("making {} private (mode {mode:o})", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}
