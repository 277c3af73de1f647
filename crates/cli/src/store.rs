//! Opening the store and naming things in it: the glue every command
//! shares, with errors worded for the command line.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use kvgit::{Branch, CommitId, Db, Snapshot};

/// The read-only `Db` opened before the command ran, to read the stored
/// current branch (`kvgit switch`), kept for the command's own read-only
/// open of the same store: a read-only command opens the store once, not
/// twice (on a 1M-key sled store each open costs about 50 ms).
static OPENED_READ_ONLY: std::sync::Mutex<Option<(PathBuf, Db)>> = std::sync::Mutex::new(None);

/// Keeps `db`, opened read-only at `path`, for [`Ctx::open_read_only`].
pub fn keep_read_only(path: &Path, db: Db) {
    if let Ok(mut kept) = OPENED_READ_ONLY.lock() {
        *kept = Some((path.to_path_buf(), db));
    }
}

/// Closes the kept read-only `Db`, if any: before anything else opens
/// the store (a sled store is open in one place at a time), and when the
/// command is done.
pub fn release_read_only() {
    let kept = OPENED_READ_ONLY.lock().ok().and_then(|mut k| k.take());
    drop(kept);
}

/// The kept read-only `Db` of `path`, taken (any other is closed).
fn take_read_only(path: &Path) -> Option<Db> {
    let kept = OPENED_READ_ONLY.lock().ok()?.take()?;
    match kept {
        (p, db) if p == path => Some(db),
        _ => None,
    }
}

/// What every command knows from the global options.
#[derive(Debug)]
pub struct Ctx {
    /// `--store`.
    pub store: PathBuf,
    /// `--branch`.
    pub branch: String,
    /// `--remote-kvgit` (`KVGIT_REMOTE_BIN`).
    pub remote_kvgit: Option<String>,
}

/// True if `path` holds a store (a sled directory, or a PostgreSQL
/// database with kvgit's tables).
pub fn is_store(path: &Path) -> bool {
    if is_url(path) {
        return Db::open_existing(path).is_ok();
    }
    kvgit::advanced::SledBackend::exists(path)
}

/// True if `path` is a PostgreSQL URL rather than a directory.
pub fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(kvgit::advanced::is_postgres_url)
}

/// How to name the store in messages: the path, or the URL without its
/// password.
pub fn display(path: &Path) -> String {
    match path.to_str() {
        Some(url) if kvgit::advanced::is_postgres_url(url) => kvgit::advanced::redact_url(url),
        _ => path.display().to_string(),
    }
}

impl Ctx {
    /// Opens the existing store for reading and writing; never creates
    /// one.
    pub fn open(&self) -> Result<Db> {
        release_read_only();
        if !is_url(&self.store) {
            // Says why there is no store (an interrupted init, someone
            // else's files, no permission) before anything is opened.
            if let Err(e) = kvgit::advanced::SledBackend::check_exists(&self.store) {
                return reword_open_error(&self.store, Err(e.into()));
            }
        }
        match Db::open_existing(&self.store) {
            Err(kvgit::Error::NoStore(_)) => {
                bail!("no store at {} (run kvgit init)", display(&self.store))
            }
            result => reword_open_error(&self.store, result),
        }
    }

    /// Opens the existing store for reading only: the commands that only
    /// read use this, so they create and change nothing, and work on a
    /// read-only mount, without write permission and on a full disk.
    pub fn open_read_only(&self) -> Result<Db> {
        if let Some(db) = take_read_only(&self.store) {
            return Ok(db);
        }
        reword_open_error(&self.store, Db::open_read_only(&self.store))
    }

    /// [`Ctx::open_read_only`], waiting up to `wait` for another process
    /// that holds the store (`None`: not at all).
    pub fn open_read_only_waiting(&self, wait: Option<std::time::Duration>) -> Result<Db> {
        if let Some(db) = take_read_only(&self.store) {
            return Ok(db);
        }
        let deadline = wait.map(|w| std::time::Instant::now() + w);
        loop {
            match Db::open_read_only(&self.store) {
                Err(kvgit::Error::Locked { .. })
                    if deadline.is_some_and(|d| std::time::Instant::now() < d) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                result => return reword_open_error(&self.store, result),
            }
        }
    }

    /// The `--branch` branch, which must exist.
    pub fn branch(&self, db: &Db) -> Result<Branch> {
        existing_branch(db, &self.branch)
    }

    /// A snapshot of `at` if given, else of the `--branch` head.
    pub fn snapshot_at(&self, db: &Db, at: Option<&str>) -> Result<Snapshot> {
        let id = match at {
            Some(rev) => resolve(db, rev)?,
            None => self.branch(db)?.head()?,
        };
        Ok(db.checkout(&id)?)
    }
}

/// Opens (creating if missing) the store at `path`, with the lock error
/// reworded.
pub fn open_db(path: &Path) -> Result<Db> {
    reword_open_error(path, Db::open(path))
}

/// The result of opening the store at `path`, with errors worded for the
/// command line.
fn reword_open_error<T>(path: &Path, result: kvgit::Result<T>) -> Result<T> {
    match result {
        Ok(db) => Ok(db),
        Err(kvgit::Error::Locked { .. }) => Err(anyhow!(
            "store at {} is locked by another process ({}); `kvgit ls --wait` waits for it",
            path.display(),
            lock_holder(path).unwrap_or_else(|| {
                "another kvgit command or a program using the store has it open".to_string()
            })
        )),
        Err(kvgit::Error::NotAStore { detail, .. }) => {
            Err(anyhow!("no store at {}: {detail}", display(path)))
        }
        // These already name the store (without a password) or the file,
        // the cause, and what to do.
        Err(
            e @ (kvgit::Error::Unavailable { .. }
            | kvgit::Error::NoSpace { .. }
            | kvgit::Error::ReadOnly { .. }
            | kvgit::Error::IoAt { .. }
            | kvgit::Error::RolledBack { .. }
            | kvgit::Error::StoreExists { .. }),
        ) => Err(anyhow!("{e}")),
        Err(e) => Err(anyhow!("cannot open store at {}: {e}", display(path))),
    }
}

/// The branch `name`, which must exist.
pub fn existing_branch(db: &Db, name: &str) -> Result<Branch> {
    match db.get_branch(name)? {
        Some(branch) => Ok(branch),
        None => bail!("no branch named {name}"),
    }
}

/// Resolves a revision: branch, tag, `HEAD`, remote-tracking branch
/// (`remotes/origin/main` or `origin/main`), or commit id (a unique prefix
/// of at least 4 hex digits), with git's `~N` and `^N` steps (see `rev`).
pub fn resolve(db: &Db, rev: &str) -> Result<CommitId> {
    crate::rev::resolve(db, rev, resolve_name)
}

/// Resolves a branch, tag, remote-tracking branch or commit id
/// ([`Db::resolve`]), with the command line's messages.
fn resolve_name(db: &Db, rev: &str) -> Result<CommitId> {
    let result = db.resolve(rev);
    match result {
        Ok(id) => Ok(id),
        Err(kvgit::Error::UnknownRevision(_)) => Err(anyhow!(
            "unknown revision {rev:?}: not a branch, tag, remote branch or commit id \
             (commit ids take at least 4 hex digits)"
        )),
        Err(kvgit::Error::AmbiguousId { candidates, .. }) => Err(anyhow!(
            "ambiguous commit id prefix {rev}: {candidates} commits match; give more digits"
        )),
        Err(e) => Err(e.into()),
    }
}

/// Which process holds the store's lock, as `process 1234 (kvgit put a
/// b)`, if the system says (Linux's /proc/locks); `None` if unknown.
fn lock_holder(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(path.join("kvgit.lock")).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let me = std::process::id();
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (pid, file) = (fields.get(4)?, fields.get(5)?);
        let pid: u32 = pid.parse().ok()?;
        let ino: u64 = file.rsplit(':').next()?.parse().ok()?;
        (ino == inode && pid != me).then_some(pid)
    })?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(match args.is_empty() {
        true => format!("process {pid}"),
        false => format!("process {pid}: {}", args.join(" ")),
    })
}
