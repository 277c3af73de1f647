//! Remotes (feature `remote`): clone, fetch, pull and push between stores,
//! and serving a store to peers, over kvgit's own protocol
//! ([`kvgit_remote`]).
//!
//! The transfer itself is kvgit-remote's; this module is the policy: a
//! clone creates its branches, a pull merges with the store's merge
//! functions, and a push received by [`Db::serve`] moves the branch
//! through the facade's one branch move (validation hooks,
//! subscriptions, automatic GC), like any other commit.
//!
//! ```
//! # fn main() -> kvgit::Result<()> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let origin = kvgit::Db::open(dir.path().join("origin"))?;
//! origin.branch("main")?.put("greeting", "hello")?;
//! drop(origin);
//!
//! let url = dir.path().join("origin").to_string_lossy().into_owned();
//! let (copy, report) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
//! assert!(report.objects_received > 0);
//! let main = copy.branch("main")?;
//! assert_eq!(main.get("greeting")?, Some(b"hello".to_vec()));
//!
//! main.put("greeting", "hi")?;
//! main.push("origin", kvgit::remote::PushOptions::default())?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;

use kvgit_core::refs::{self, HEADS};
use kvgit_core::{CasOutcome, Repo};
pub use kvgit_remote::Error as TransferError;
/// How far a transfer is (what the progress callbacks of clone, fetch
/// and push receive).
pub use kvgit_remote::Progress as TransferProgress;
pub use kvgit_remote::{
    ConnectOptions, Phase, Proof, ProvenValue, PushUpdate, RefChange, RemoteUrl, Report,
};
use kvgit_remote::{Connection, ServeOptions as WireServeOptions};

use crate::branch::{Branch, MergeOutcome};
use crate::db::{CommitId, Db};
use crate::error::Result;
use crate::move_branch::{move_branch, Fence, MoveKind, Outcome, Request, Target};
use crate::snapshot::Snapshot;

/// Options of a clone or fetch.
#[derive(Default)]
pub struct FetchOptions<'a> {
    /// Fetch only this many commits of each branch (a shallow clone or
    /// fetch; the cut is recorded and `verify` accepts it).
    pub depth: Option<u32>,
    /// How to reach `file://` and ssh remotes.
    pub connect: ConnectOptions,
    /// Called as objects arrive.
    pub progress: Option<&'a mut dyn FnMut(&TransferProgress)>,
}

impl std::fmt::Debug for FetchOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchOptions")
            .field("depth", &self.depth)
            .field("connect", &self.connect)
            .finish_non_exhaustive()
    }
}

/// Options of [`Branch::push`].
#[derive(Default)]
pub struct PushOptions {
    /// Move the remote branch even if the push is not a fast-forward (its
    /// commits the local branch lacks are lost there).
    pub force: bool,
    /// The branch's name on the remote (default: the same name).
    pub remote_branch: Option<String>,
    /// How to reach `file://` and ssh remotes.
    pub connect: ConnectOptions,
    /// Called as objects are sent.
    pub progress: Option<Arc<kvgit_remote::PushProgress>>,
}

impl std::fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("force", &self.force)
            .field("remote_branch", &self.remote_branch)
            .field("connect", &self.connect)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What [`Branch::pull`] did: the fetch, then the merge.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PullReport {
    /// The fetch of the remote branch.
    pub fetch: Report,
    /// The merge of its remote-tracking ref into the branch.
    pub merge: MergeOutcome,
}

/// A pre-receive check of [`Db::serve`]: `Err(message)` refuses the
/// update, and the pusher sees the message.
pub type PreReceive = dyn Fn(&PushUpdate) -> std::result::Result<(), String> + Send + Sync;

/// Options of [`Db::serve`].
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Refuse every push.
    pub read_only: bool,
    /// Runs on each pushed update before the ref moves (after the objects
    /// are stored; the validation hooks run after it).
    pub pre_receive: Option<Arc<PreReceive>>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("read_only", &self.read_only)
            .field("pre_receive", &self.pre_receive.is_some())
            .finish()
    }
}

/// A configured remote of a store ([`Db::remote`]).
#[derive(Clone, Debug)]
pub struct Remote {
    db: Db,
    name: String,
    url: String,
}

impl Remote {
    /// Its name (`origin`).
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("k", "1")?;
    /// drop(origin);
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// let origin = copy.remote("origin")?;
    /// assert_eq!(origin.name(), "origin");
    /// # Ok(())
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its URL.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("k", "1")?;
    /// drop(origin);
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// let origin = copy.remote("origin")?;
    /// assert_eq!(origin.url(), url);
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches `branches` (every branch of the remote if empty) into the
    /// remote-tracking refs `remotes/<name>/<branch>`. No local branch
    /// moves.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("k", "1")?;
    /// drop(origin);
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// let origin = copy.remote("origin")?;
    /// // The origin moves on; a fetch brings only what is new.
    /// drop((origin, copy)); // both hold the copy open
    /// let source = kvgit::Db::open(dir.path().join("origin"))?;
    /// let head = source.branch("main")?.put("k", "2")?;
    /// drop(source);
    /// let copy = kvgit::Db::open(dir.path().join("copy"))?;
    /// let report = copy.remote("origin")?.fetch(&[], Default::default())?;
    /// assert!(report.objects_received > 0);
    /// assert_eq!(copy.resolve("origin/main")?, head);
    /// // The local branch did not move.
    /// assert_eq!(copy.branch("main")?.get("k")?.as_deref(), Some(&b"1"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn fetch(&self, branches: &[String], options: FetchOptions<'_>) -> Result<Report> {
        let FetchOptions {
            depth,
            connect,
            progress,
        } = options;
        let mut conn = connect_to(&self.url, &connect)?;
        let wire = kvgit_remote::FetchOptions { depth, progress };
        let report = kvgit_remote::fetch(self.db.repo(), &mut conn, &self.name, branches, wire)?;
        conn.close()?;
        Ok(report)
    }

    /// The commit the remote-tracking ref `remotes/<name>/<branch>` holds
    /// (what the last fetch or push saw), if any.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("k", "1")?;
    /// drop(origin);
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// let origin = copy.remote("origin")?;
    /// assert_eq!(origin.tracking("main")?, Some(copy.resolve("main")?));
    /// assert_eq!(origin.tracking("nope")?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn tracking(&self, branch: &str) -> Result<Option<CommitId>> {
        let name = refs::remote_ref(&self.name, branch)?;
        Ok(self.db.repo().get_ref(&name)?)
    }

    /// The remote's branches and their heads, read from the remote now.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("k", "1")?;
    /// drop(origin);
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// let origin = copy.remote("origin")?;
    /// let branches = origin.list_branches(&Default::default())?;
    /// assert_eq!(branches, vec![("main".to_string(), copy.resolve("main")?)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn list_branches(&self, connect: &ConnectOptions) -> Result<Vec<(String, CommitId)>> {
        let mut conn = connect_to(&self.url, connect)?;
        let refs = kvgit_remote::list_refs(&mut conn)?;
        conn.close()?;
        Ok(refs
            .into_iter()
            .filter_map(|(name, id)| name.strip_prefix(HEADS).map(|b| (b.to_string(), id)))
            .collect())
    }
}

/// Reads key `key` of branch `branch` at `url` with a Merkle proof of it
/// against the branch's head commit, without fetching the store: only the
/// path from the root to the key's leaf travels, and it is checked here.
///
/// ```
/// # fn main() -> kvgit::Result<()> {
/// let dir = tempfile::tempdir().expect("temp dir");
/// let origin = kvgit::Db::open(dir.path().join("origin"))?;
/// origin.branch("main")?.put("greeting", "hello")?;
/// drop(origin); // a sled store is open in one place at a time
/// let url = dir.path().join("origin").to_string_lossy().into_owned();
/// let value = kvgit::remote::get_verified(
///     &url,
///     "main",
///     b"greeting",
///     &kvgit::remote::ConnectOptions::default(),
/// )?;
/// assert_eq!(value.value.as_deref(), Some(&b"hello"[..]));
/// # Ok(())
/// # }
/// ```
pub fn get_verified(
    url: &str,
    branch: &str,
    key: &[u8],
    connect: &ConnectOptions,
) -> Result<ProvenValue> {
    let mut conn = connect_to(url, connect)?;
    let name = refs::branch_ref(branch)?;
    let value = kvgit_remote::get_verified(&mut conn, &name, key, None)?;
    conn.close()?;
    Ok(value)
}

impl Db {
    /// Clones the store at `url` (a store path, `file://`,
    /// `ssh://[user@]host[:port]/path`, `host:path`, `postgres://`) into a
    /// new store at `path`: every branch, with remote `origin` set to
    /// `url`.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, report) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// assert!(report.objects_received > 0);
    /// assert_eq!(copy.branch("main")?.get("greeting")?.as_deref(), Some(&b"hello"[..]));
    /// assert_eq!(copy.remotes()?, vec![("origin".to_string(), url)]);
    /// // The remote-tracking branch is a revision like any other.
    /// let main = copy.resolve("main")?;
    /// assert_eq!(copy.resolve("origin/main")?, main);
    /// assert_eq!(copy.resolve("remotes/origin/main")?, main);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clone_from(url: &str, path: impl AsRef<Path>) -> Result<(Db, Report)> {
        Db::clone_from_with(url, path, FetchOptions::default())
    }

    /// [`Db::clone_from`] with options (a shallow `depth`, progress, how
    /// to connect). A clone cut short leaves a store without branches;
    /// running it again fetches only what is missing.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let options = kvgit::remote::FetchOptions {
    ///     depth: Some(1),
    ///     ..Default::default()
    /// };
    /// let (copy, _) = kvgit::Db::clone_from_with(&url, dir.path().join("copy"), options)?;
    /// assert_eq!(copy.shallow_commits()?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clone_from_with(
        url: &str,
        path: impl AsRef<Path>,
        options: FetchOptions<'_>,
    ) -> Result<(Db, Report)> {
        let FetchOptions {
            depth,
            connect,
            progress,
        } = options;
        // Reach the source first: a source that cannot be reached leaves
        // no store behind.
        let mut conn = connect_to(url, &connect)?;
        kvgit_remote::list_refs(&mut conn)?;
        let db = Db::open(path)?;
        let branches = db.branches()?;
        if !branches.is_empty() || !db.tags()?.is_empty() {
            return Err(kvgit_remote::Error::NotEmpty(branches.len()).into());
        }
        db.add_remote("origin", url)?;
        let wire = kvgit_remote::FetchOptions { depth, progress };
        let mut report = kvgit_remote::fetch(db.repo(), &mut conn, "origin", &[], wire)?;
        conn.close()?;
        let prefix = format!("{}origin/", refs::REMOTES);
        for (branch, id) in db.repo().list_refs(&prefix)? {
            // A branch is created through the one branch move, like any
            // other.
            db.create_branch(&branch, &id)?;
            report.refs.push(RefChange {
                name: format!("{HEADS}{branch}"),
                old: None,
                new: Some(id),
            });
        }
        Ok((db, report))
    }

    /// Adds remote `name` at `url` (replacing its URL if it exists).
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let copy = kvgit::Db::open(dir.path().join("copy"))?;
    /// copy.add_remote("origin", &url)?;
    /// assert_eq!(copy.remotes()?, vec![("origin".to_string(), url)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_remote(&self, name: &str, url: &str) -> Result<()> {
        Ok(kvgit_remote::add_remote(self.repo(), name, url)?)
    }

    /// Removes remote `name` and its remote-tracking refs.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// copy.remove_remote("origin")?;
    /// assert!(copy.remotes()?.is_empty());
    /// assert!(copy.remote_branches()?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_remote(&self, name: &str) -> Result<()> {
        Ok(kvgit_remote::remove_remote(self.repo(), name)?)
    }

    /// The configured remotes, `(name, url)`, sorted by name.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// copy.add_remote("backup", "ssh://backup.example/stores/kv")?;
    /// let names: Vec<String> = copy.remotes()?.into_iter().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["backup", "origin"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn remotes(&self) -> Result<Vec<(String, String)>> {
        Ok(kvgit_remote::list_remotes(self.repo())?)
    }

    /// The configured remote `name`.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// let origin = copy.remote("origin")?;
    /// assert_eq!(origin.url(), url);
    /// assert!(origin.tracking("main")?.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn remote(&self, name: &str) -> Result<Remote> {
        let url = kvgit_remote::remote_url(self.repo(), name)?;
        Ok(Remote {
            db: self.clone(),
            name: name.to_string(),
            url,
        })
    }

    /// The commits this store holds without their parents: where shallow
    /// clones and fetches cut the history.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (full, _) = kvgit::Db::clone_from(&url, dir.path().join("full"))?;
    /// assert!(full.shallow_commits()?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn shallow_commits(&self) -> Result<Vec<CommitId>> {
        Ok(kvgit_remote::shallow_commits(self.repo())?)
    }

    /// The remote-tracking refs, `(remote, branch, head)`.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// let tracking = copy.remote_branches()?;
    /// assert_eq!(tracking.len(), 1);
    /// assert_eq!((tracking[0].0.as_str(), tracking[0].1.as_str()), ("origin", "main"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn remote_branches(&self) -> Result<Vec<(String, String, CommitId)>> {
        let mut out = Vec::new();
        for (rest, id) in self.repo().list_refs(refs::REMOTES)? {
            if let Some((remote, branch)) = rest.split_once('/') {
                out.push((remote.to_string(), branch.to_string(), id));
            }
        }
        Ok(out)
    }

    /// Serves this store to the peer on `reader` and `writer` (stdin and
    /// stdout of `kvgit serve --stdio`) until it says goodbye. A pushed
    /// branch moves through the same path as any commit: the
    /// `pre_receive` check, then the validation hooks, the
    /// compare-and-swap, subscriptions and the automatic GC.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// // A server over an in-memory pipe pair is what `kvgit serve --stdio`
    /// // runs over stdin and stdout; here it only answers an empty session.
    /// let server = kvgit::Db::open(&url)?;
    /// let hello = Vec::new(); // a peer that says nothing: the session ends
    /// let result = server.serve(std::io::Cursor::new(hello), std::io::sink(), &Default::default());
    /// assert!(result.is_err(), "a silent peer is not a kvgit peer");
    /// # Ok(())
    /// # }
    /// ```
    pub fn serve(
        &self,
        reader: impl std::io::Read + Send + 'static,
        writer: impl std::io::Write + Send + 'static,
        options: &ServeOptions,
    ) -> Result<()> {
        let wire = self.wire_serve_options(options);
        Ok(kvgit_remote::serve(self.repo(), reader, writer, &wire)?)
    }

    /// kvgit-remote's serve options for this store: pushes move branches
    /// through [`move_branch`].
    fn wire_serve_options(&self, options: &ServeOptions) -> WireServeOptions {
        let db = self.clone();
        let pre_receive = options.pre_receive.clone().map(|hook| {
            let hook: Arc<kvgit_remote::PreReceive> =
                Arc::new(move |_: &Repo, update: &PushUpdate| hook(update));
            hook
        });
        WireServeOptions {
            read_only: options.read_only,
            pre_receive,
            apply: Some(Arc::new(move |_: &Repo, update: &PushUpdate| {
                apply_push(&db, update)
            })),
        }
    }
}

/// Moves the ref a push updates: a branch through [`move_branch`] (so the
/// validation hooks can refuse it), a tag by compare-and-swap.
fn apply_push(db: &Db, update: &PushUpdate) -> kvgit_remote::Result<CasOutcome> {
    let repo = db.repo();
    let Some(branch) = update.name.strip_prefix(HEADS) else {
        return Ok(repo.move_ref(&update.name, update.old.as_ref(), Some(&update.new))?);
    };
    let kind = match (update.old, update.forced) {
        (None, _) => MoveKind::Create,
        (Some(_), true) => MoveKind::Reset,
        (Some(_), false) => MoveKind::FastForward,
    };
    let request = Request {
        branch,
        ref_name: &update.name,
        kind,
        expected: update.old,
        target: Target::Existing(update.new),
        message: format!("push {} to {}", update.new.short(12), branch),
        written: &[],
        fence: Fence::handed(repo.write_fence()),
    };
    match move_branch(db, request) {
        Ok(Outcome::Moved { .. } | Outcome::Deleted) => Ok(CasOutcome::Swapped),
        Ok(Outcome::Lost { actual, .. }) => Ok(CasOutcome::Mismatch { actual }),
        Err(crate::Error::Rejected { hook, message, .. }) => Err(kvgit_remote::Error::Rejected {
            name: update.name.clone(),
            reason: format!("{hook}: {message}"),
        }),
        Err(e) => Err(kvgit_remote::Error::Remote(e.to_string())),
    }
}

impl Branch {
    /// Fetches this branch from remote `remote`, then merges its
    /// remote-tracking ref into this branch with the store's merge
    /// functions, like [`Branch::merge_commit`].
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// drop(copy);
    /// let origin = kvgit::Db::open(&url)?;
    /// origin.branch("main")?.put("news", "fresh")?;
    /// drop(origin);
    /// let copy = kvgit::Db::open(dir.path().join("copy"))?;
    /// let main = copy.branch("main")?;
    /// main.pull("origin", Default::default())?;
    /// assert_eq!(main.get("news")?.as_deref(), Some(&b"fresh"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn pull(&self, remote: &str, options: FetchOptions<'_>) -> Result<PullReport> {
        self.pull_branch(remote, self.name(), options)
    }

    /// [`Branch::pull`] of the remote's branch `remote_branch`.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let origin = kvgit::Db::open(&url)?;
    /// origin.branch("main")?.fork("dev")?.put("feature", "on")?;
    /// drop(origin);
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// let main = copy.branch("main")?;
    /// main.pull_branch("origin", "dev", Default::default())?;
    /// assert_eq!(main.get("feature")?.as_deref(), Some(&b"on"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn pull_branch(
        &self,
        remote: &str,
        remote_branch: &str,
        options: FetchOptions<'_>,
    ) -> Result<PullReport> {
        let remote = self.db().remote(remote)?;
        let fetch = remote.fetch(&[remote_branch.to_string()], options)?;
        let theirs = remote
            .tracking(remote_branch)?
            .ok_or_else(|| kvgit_remote::Error::UnknownRemoteBranch(remote_branch.into()))?;
        let merge = self.merge_commit(&theirs)?;
        Ok(PullReport { fetch, merge })
    }

    /// Pushes this branch to remote `remote`: sends the objects it lacks,
    /// then the remote moves its branch by compare-and-swap from the head
    /// this store last saw there (its remote-tracking ref). Not a
    /// fast-forward: refused (pull first) unless `force`.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let origin = kvgit::Db::open(dir.path().join("origin"))?;
    /// origin.branch("main")?.put("greeting", "hello")?;
    /// drop(origin); // a sled store is open in one place at a time
    /// let url = dir.path().join("origin").to_string_lossy().into_owned();
    /// let (copy, _) = kvgit::Db::clone_from(&url, dir.path().join("copy"))?;
    /// copy.branch("main")?.put("greeting", "hi")?;
    /// copy.branch("main")?.push("origin", kvgit::remote::PushOptions::default())?;
    /// drop(copy);
    /// let origin = kvgit::Db::open(&url)?;
    /// assert_eq!(origin.branch("main")?.get("greeting")?.as_deref(), Some(&b"hi"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn push(&self, remote: &str, options: PushOptions) -> Result<Report> {
        let remote = self.db().remote(remote)?;
        let remote_branch = options
            .remote_branch
            .clone()
            .unwrap_or_else(|| self.name().to_string());
        let expected = match options.force {
            true => None,
            false => remote.tracking(&remote_branch)?.map(Some),
        };
        let mut conn = connect_to(remote.url(), &options.connect)?;
        let wire = kvgit_remote::PushOptions {
            force: options.force,
            expected,
            remote_branch: Some(remote_branch),
            remote_name: Some(remote.name().to_string()),
            progress: options.progress.clone(),
        };
        let report = kvgit_remote::push(self.db().repo(), &mut conn, self.name(), wire)?;
        conn.close()?;
        Ok(report)
    }
}

/// Connects to `url`: a child server for `file://` and ssh, a thread
/// serving the store opened here for a path or a PostgreSQL URL.
fn connect_to(url: &str, connect: &ConnectOptions) -> Result<Connection> {
    let parsed: RemoteUrl = url.parse()?;
    if let Some(cmd) = Connection::command(&parsed, connect) {
        return Ok(Connection::spawn(cmd)?);
    }
    let db = match &parsed {
        RemoteUrl::Path(path) => Db::open_existing(path)?,
        _ => Db::open_existing(url)?,
    };
    let wire = db.wire_serve_options(&ServeOptions::default());
    Ok(Connection::in_process(db.repo().clone(), wire)?)
}

impl Db {
    /// The low-level handle, for the transfers (crate-internal; users reach
    /// it through [`crate::advanced::repo`]).
    pub(crate) fn repo(&self) -> &kvgit_core::Repo {
        &self.inner.repo
    }
}

impl Snapshot {
    /// A Merkle proof of `key` in this snapshot's tree: the nodes from the
    /// root to the leaf where the key is, or would be (and the value's
    /// blob, for a large value). [`Proof::verify`] checks it against the
    /// tree's root id ([`Snapshot::root_id`]) without a store, and gives
    /// the value, or `None` for a proof of absence.
    ///
    /// ```
    /// # fn main() -> kvgit::Result<()> {
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v")?;
    /// let snap = main.snapshot()?;
    /// let root = snap.root_id();
    /// let proof = snap.prove("k")?;
    /// assert_eq!(proof.verify(&root, b"k")?, Some(b"v".to_vec()));
    /// // Absence is proved too.
    /// assert_eq!(snap.prove("nope")?.verify(&root, b"nope")?, None);
    /// // Against any other root, the proof fails.
    /// main.put("k", "changed")?;
    /// assert!(proof.verify(&main.snapshot()?.root_id(), b"k").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn prove(&self, key: impl AsRef<[u8]>) -> Result<Proof> {
        Ok(kvgit_remote::prove(
            &self.db.inner.repo,
            &self.tree.root(),
            key.as_ref(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session with `server` served by `Db::serve` on a thread.
    fn session(server: &Db, options: ServeOptions) -> Connection {
        let (client_w, server_r) = kvgit_remote::pipe();
        let (server_w, client_r) = kvgit_remote::pipe();
        let db = server.clone();
        std::thread::spawn(move || db.serve(server_r, server_w, &options));
        Connection::new(client_r, client_w).expect("greeting")
    }

    fn push_main(local: &Db, conn: &mut Connection) -> kvgit_remote::Result<Report> {
        kvgit_remote::push(
            local.repo(),
            conn,
            "main",
            kvgit_remote::PushOptions::default(),
        )
    }

    #[test]
    fn a_received_push_runs_the_validation_hooks_and_subscriptions() {
        let server = Db::memory();
        server.branch("main").unwrap().put("a", "1").unwrap();
        server.add_validator("no-secrets", |check| {
            match check.changes.iter().any(|c| c.key.starts_with(b"secret")) {
                true => Err("secrets stay out".into()),
                false => Ok(()),
            }
        });
        let heads = server.branch("main").unwrap().subscribe().unwrap();
        let local = Db::memory();
        let mut conn = session(&server, ServeOptions::default());
        kvgit_remote::clone(local.repo(), &mut conn, "origin", Default::default()).unwrap();

        let main = local.branch("main").unwrap();
        main.put("secret/x", "1").unwrap();
        match push_main(&local, &mut conn) {
            Err(kvgit_remote::Error::Rejected { reason, .. }) => {
                assert!(reason.contains("secrets stay out"), "{reason}")
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert_eq!(
            server.branch("main").unwrap().get("secret/x").unwrap(),
            None
        );

        main.delete("secret/x").unwrap();
        main.put("b", "2").unwrap();
        push_main(&local, &mut conn).unwrap();
        assert_eq!(
            server.branch("main").unwrap().get("b").unwrap(),
            Some(b"2".to_vec())
        );
        assert_eq!(heads.try_recv().ok(), Some(main.head().unwrap()));
        conn.close().unwrap();
    }

    #[test]
    fn the_pre_receive_check_refuses_with_its_message() {
        let server = Db::memory();
        server.branch("main").unwrap().put("a", "1").unwrap();
        let options = ServeOptions {
            pre_receive: Some(Arc::new(|update: &PushUpdate| {
                match update.changed_keys.iter().any(|k| k == b"frozen") {
                    true => Err("frozen is frozen".to_string()),
                    false => Ok(()),
                }
            })),
            ..Default::default()
        };
        let local = Db::memory();
        let mut conn = session(&server, options);
        kvgit_remote::clone(local.repo(), &mut conn, "origin", Default::default()).unwrap();
        local.branch("main").unwrap().put("frozen", "x").unwrap();
        let err = push_main(&local, &mut conn).unwrap_err();
        assert!(err.to_string().contains("frozen is frozen"), "{err}");
        assert_eq!(server.branch("main").unwrap().get("frozen").unwrap(), None);
    }
}
