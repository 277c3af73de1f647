//! [`Db`]: a store and everything shared by its branches.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvgit_core::refs::{self, HEADS, REMOTES, TAGS};
use kvgit_core::VerifyReport;
use kvgit_core::{
    Backend, CommitSpec, Durability, MemoryBackend, ObjectId, Repo, RepoOptions, WriterTurn,
};
#[cfg(feature = "sled")]
use kvgit_core::{JournalBackend, JournalOptions, SledBackend, SledOptions};
use kvgit_gc::{
    AccessOptions, AccessTracker, GcPhase, Progress, Protected, RebaseReport, SweepOptions,
    SweepReport, Watermarks,
};
use kvgit_merge::Registry;
use parking_lot::{Mutex, RwLock};

use crate::branch::Branch;
use crate::codec::DefaultCodec;
use crate::error::{Error, Result};
use crate::move_branch::{move_branch, Fence, Keep, MoveKind, Outcome, Request, Target};
use crate::snapshot::{Change, Snapshot};

/// A commit id (the blake3 hash of the commit object): 32 bytes, printed
/// and parsed as hex (`to_hex`, `short(n)`, `FromStr`).
pub type CommitId = ObjectId;

/// The size of a store, from [`Db::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Objects in the store (commits, tree nodes, blobs; garbage included).
    pub objects: u64,
    /// Their total size in bytes.
    pub object_bytes: u64,
    /// Commits reachable from branches and tags.
    pub commits: u64,
    /// How many branches.
    pub branches: u64,
    /// How many tags.
    pub tags: u64,
    /// The store's size on disk in bytes (0 in memory; for PostgreSQL the
    /// tables' size).
    pub size_on_disk: u64,
}

/// Settings for a [`Db`], made with [`Db::builder`].
#[derive(Clone, Debug)]
pub struct Options {
    /// What a commit waits for before it returns (default: durable).
    pub durability: Durability,
    /// Byte budget of the decoded-node cache (default: 256 MiB).
    pub cache_bytes: usize,
    /// How many times a commit merges onto a moved head and tries again
    /// before giving up with [`Error::Contended`] (default: 100).
    pub max_retries: u32,
    /// The codec of `get_as` / `put_as` (default: postcard).
    pub codec: DefaultCodec,
    /// The embedded store [`Db::open`] creates in a new directory (an
    /// existing store opens as what it is). Default: [`Engine::Journal`].
    #[cfg(feature = "sled")]
    pub engine: Engine,
    /// sled options for [`Db::open`].
    #[cfg(feature = "sled")]
    pub sled: SledOptions,
    /// Automatic garbage collection: when a commit leaves a branch holding
    /// more value bytes than the high water, its coldest keys are dropped
    /// down to the low water and the survivors committed as a fresh root
    /// (see [`Db::rebase`]). Off by default.
    pub watermarks: Option<Watermarks>,
    /// Keys garbage collection never drops (default: keys whose last
    /// `/`-separated segment starts with `__`).
    pub protected: Protected,
    /// Record which keys are read and written, so garbage collection drops
    /// the coldest first. `None`, the default: only when
    /// [`Options::watermarks`] are set (a store that never rebases by
    /// recency does not pay for it). An explicit [`Db::rebase`] of keys
    /// never tracked sees them all equally cold, and drops the largest
    /// first, then in key order.
    pub track_access: Option<bool>,
    /// The grace period of [`Db::sweep`] on a store shared by several
    /// processes (see [`kvgit_gc::sweep`]): `None`, the default, takes the
    /// backend's (one hour for PostgreSQL; none for the embedded stores).
    pub sweep_grace: Option<Duration>,
    /// Connection options for PostgreSQL stores.
    #[cfg(feature = "postgres")]
    pub postgres: kvgit_postgres::PgOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Durable,
            cache_bytes: 256 << 20,
            max_retries: 100,
            codec: DefaultCodec::Postcard,
            #[cfg(feature = "sled")]
            engine: Engine::Journal,
            #[cfg(feature = "sled")]
            sled: SledOptions::default(),
            watermarks: None,
            protected: Protected::default(),
            track_access: None,
            sweep_grace: None,
            #[cfg(feature = "postgres")]
            postgres: kvgit_postgres::PgOptions::default(),
        }
    }
}

/// Builds a [`Db`] with non-default [`Options`].
///
/// ```
/// use kvgit::{Db, Durability};
/// let db = Db::builder().durability(Durability::Eventual).max_retries(10).memory();
/// assert_eq!(db.options().max_retries, 10);
/// ```
#[derive(Clone, Debug, Default)]
pub struct DbBuilder {
    options: Options,
}

impl DbBuilder {
    /// Durable (the default: a commit survives a power loss once it
    /// returns) or eventual (survives a process crash; a power loss may
    /// lose the last commits, never consistency).
    ///
    /// ```
    /// use kvgit::{Db, Durability};
    /// let db = Db::builder().durability(Durability::Eventual).memory();
    /// assert_eq!(db.options().durability, Durability::Eventual);
    /// ```
    pub fn durability(mut self, durability: Durability) -> Self {
        self.options.durability = durability;
        self
    }

    /// The byte budget of the decoded-node cache.
    ///
    /// ```
    /// let db = kvgit::Db::builder().cache_bytes(16 << 20).memory();
    /// assert_eq!(db.options().cache_bytes, 16 << 20);
    /// ```
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.options.cache_bytes = bytes;
        self
    }

    /// How many merge-and-retry rounds a commit makes when other writers
    /// keep moving the branch.
    ///
    /// ```
    /// let db = kvgit::Db::builder().max_retries(3).memory();
    /// assert_eq!(db.options().max_retries, 3);
    /// ```
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.options.max_retries = retries;
        self
    }

    /// The codec of the typed accessors.
    ///
    /// ```
    /// use kvgit::{Db, DefaultCodec};
    /// let db = Db::builder().codec(DefaultCodec::Json).memory();
    /// let main = db.branch("main")?;
    /// main.put_as("point", &(1, 2))?;
    /// assert_eq!(main.get("point")?.as_deref(), Some(&b"[1,2]"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn codec(mut self, codec: DefaultCodec) -> Self {
        self.options.codec = codec;
        self
    }

    /// sled's own options (cache size, flush interval).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let sled = kvgit::SledOptions { cache_capacity: 8 << 20, ..Default::default() };
    /// let db = kvgit::Db::builder().sled_options(sled).open(dir.path().join("store"))?;
    /// assert_eq!(db.options().sled.cache_capacity, 8 << 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "sled")]
    pub fn sled_options(mut self, sled: SledOptions) -> Self {
        self.options.sled = sled;
        self
    }

    /// Which embedded store a new directory gets (see [`Engine`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("store");
    /// let db = kvgit::Db::builder().engine(kvgit::Engine::Journal).open(&path)?;
    /// db.branch("main")?.put("k", "v")?;
    /// drop(db);
    /// // Reopened as what it is, whatever the options say.
    /// assert_eq!(kvgit::Engine::of(&path), Some(kvgit::Engine::Journal));
    /// assert_eq!(kvgit::Db::open(&path)?.branch("main")?.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "sled")]
    pub fn engine(mut self, engine: Engine) -> Self {
        self.options.engine = engine;
        self
    }

    /// Turns on automatic garbage collection with these water marks (see
    /// [`Options::watermarks`]); `low` defaults to 80% of `high`.
    ///
    /// ```
    /// let db = kvgit::Db::builder().watermarks(1 << 20, None)?.memory();
    /// let marks = db.options().watermarks.as_ref().expect("set");
    /// assert_eq!((marks.high(), marks.low()), (1 << 20, (1 << 20) * 80 / 100));
    /// // The low water must be below the high water.
    /// assert!(kvgit::Db::builder().watermarks(100, Some(200)).is_err());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn watermarks(mut self, high: u64, low: Option<u64>) -> Result<Self> {
        self.options.watermarks = Some(watermarks(high, low)?);
        Ok(self)
    }

    /// The keys garbage collection never drops.
    ///
    /// ```
    /// let db = kvgit::Db::builder().protected(|key| key.starts_with(b"config/")).memory();
    /// let main = db.branch("main")?;
    /// main.put("config/mode", "fast")?;
    /// main.put("cache/page", "...")?;
    /// db.rebase_keep("main", |_| false)?; // keep nothing but protected keys
    /// assert!(main.contains("config/mode")?);
    /// assert!(!main.contains("cache/page")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn protected(mut self, protected: impl Fn(&[u8]) -> bool + Send + Sync + 'static) -> Self {
        self.options.protected = Protected::new(protected);
        self
    }

    /// Opens (creating if missing) the store at `path`: a directory holding
    /// a sled store, or a PostgreSQL database given by its URL
    /// (`postgres://user:password@host:port/database`), whose tables are
    /// created on first use.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = kvgit::Db::builder().max_retries(5).open(dir.path().join("store"))?;
    /// db.branch("main")?.put("k", "v")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self, path: impl AsRef<Path>) -> Result<Db> {
        if let Some(url) = postgres_url(path.as_ref()) {
            return self.open_postgres(url, true);
        }
        self.open_sled(path.as_ref(), true)
    }

    /// Opens the store at `path`, which must exist ([`Error::NoStore`]
    /// for a missing sled directory; for a PostgreSQL URL,
    /// [`Error::Unavailable`] if the database holds no kvgit tables).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("store");
    /// assert!(matches!(
    ///     kvgit::Db::builder().open_existing(&path),
    ///     Err(kvgit::Error::NoStore(_))
    /// ));
    /// drop(kvgit::Db::open(&path)?); // create it
    /// assert!(kvgit::Db::builder().open_existing(&path).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_existing(self, path: impl AsRef<Path>) -> Result<Db> {
        let path = path.as_ref();
        if let Some(url) = postgres_url(path) {
            return self.open_postgres(url, false);
        }
        self.open_sled(path, false)
    }

    #[cfg(feature = "sled")]
    fn open_sled(self, path: &Path, create: bool) -> Result<Db> {
        if !create && !SledBackend::exists(path) {
            return Err(Error::NoStore(path.display().to_string()));
        }
        let backend: Arc<dyn Backend> = match Engine::of(path).unwrap_or(self.options.engine) {
            Engine::Sled => Arc::new(SledBackend::open(path, self.options.sled.clone())?),
            Engine::Journal => Arc::new(JournalBackend::open(path, JournalOptions::default())?),
        };
        Db::with_backend(backend, self.options)
    }

    #[cfg(not(feature = "sled"))]
    fn open_sled(self, path: &Path, _create: bool) -> Result<Db> {
        Err(Error::Unavailable {
            store: path.display().to_string(),
            detail: "this build of kvgit has no sled support (the `sled` feature)".to_string(),
        })
    }

    #[cfg(feature = "postgres")]
    fn open_postgres(self, url: &str, create: bool) -> Result<Db> {
        let options = kvgit_postgres::PgOptions {
            create,
            ..self.options.postgres.clone()
        };
        let backend = kvgit_postgres::PgBackend::open_with(url, options)?;
        Db::with_backend(Arc::new(backend), self.options)
    }

    #[cfg(not(feature = "postgres"))]
    fn open_postgres(self, url: &str, _create: bool) -> Result<Db> {
        Err(Error::Unavailable {
            store: url.split('@').next_back().unwrap_or(url).to_string(),
            detail: "this build of kvgit has no PostgreSQL support (the `postgres` feature)"
                .to_string(),
        })
    }

    /// The grace period of [`Db::sweep`] on a shared store (see
    /// [`Options::sweep_grace`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let db = kvgit::Db::builder().sweep_grace(Duration::from_secs(600)).memory();
    /// assert_eq!(db.options().sweep_grace, Some(Duration::from_secs(600)));
    /// ```
    pub fn sweep_grace(mut self, grace: Duration) -> Self {
        self.options.sweep_grace = Some(grace);
        self
    }

    /// Connection options for a PostgreSQL store (pool size, connect
    /// timeout, default grace period).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = kvgit::PgOptions { connect_timeout: Duration::from_secs(2), ..Default::default() };
    /// let builder = kvgit::Db::builder().postgres_options(options);
    /// // builder.open("postgres://user:password@localhost/kvgit")?
    /// # drop(builder);
    /// ```
    #[cfg(feature = "postgres")]
    pub fn postgres_options(mut self, options: kvgit_postgres::PgOptions) -> Self {
        self.options.postgres = options;
        self
    }

    /// Records access recency for garbage collection on every read and
    /// write, or not (default: only when water marks are set, see
    /// [`Options::track_access`]). Off saves an in-memory update per read
    /// and write; a later rebase then sees the last recorded recency.
    ///
    /// ```
    /// let db = kvgit::Db::builder().track_access(false).memory();
    /// assert_eq!(db.options().track_access, Some(false));
    /// ```
    pub fn track_access(mut self, on: bool) -> Self {
        self.options.track_access = Some(on);
        self
    }

    /// A store in memory (nothing survives the process).
    ///
    /// ```
    /// let db = kvgit::Db::builder().max_retries(1).memory();
    /// db.branch("main")?.put("k", "v")?;
    /// assert_eq!(db.branches()?, vec!["main".to_string()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn memory(self) -> Db {
        Db::with_backend(Arc::new(MemoryBackend::new()), self.options)
            .expect("an empty in-memory store has no metadata to misread")
    }

    /// A store on any backend.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kvgit::advanced::MemoryBackend;
    /// let db = kvgit::Db::builder().backend(Arc::new(MemoryBackend::new()))?;
    /// db.branch("main")?.put("k", "v")?;
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn backend(self, backend: Arc<dyn Backend>) -> Result<Db> {
        Db::with_backend(backend, self.options)
    }
}

/// The water marks of a rebase: `high`, and `low` if given (else the
/// default fraction of `high`).
fn watermarks(high: u64, low: Option<u64>) -> Result<Watermarks> {
    Ok(match low {
        Some(low) => Watermarks::with_low(high, low)?,
        None => Watermarks::new(high),
    })
}

/// The request creating branch `name`.
fn create<'r>(
    name: &'r str,
    ref_name: &'r str,
    target: Target,
    message: String,
    fence: Fence<'r>,
) -> Request<'r> {
    Request {
        branch: name,
        ref_name,
        kind: MoveKind::Create,
        expected: None,
        target,
        message,
        written: &[],
        fence,
    }
}

/// The embedded stores [`Db::open`] can make in a directory.
#[cfg(feature = "sled")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    /// A sled database ([`kvgit_core::SledBackend`]): store format 1.
    Sled,
    /// kvgit's journal ([`kvgit_core::JournalBackend`]): objects appended
    /// to one file, the index in memory; store format 2. A durable commit
    /// writes each new object once and syncs once. The default.
    #[default]
    Journal,
}

#[cfg(feature = "sled")]
impl Engine {
    /// The engine of the store at `path`, if there is one.
    pub fn of(path: impl AsRef<Path>) -> Option<Engine> {
        let path = path.as_ref();
        if JournalBackend::is_journal_store(path) {
            Some(Engine::Journal)
        } else if SledBackend::exists(path) {
            Some(Engine::Sled)
        } else {
            None
        }
    }
}

/// Read-only opening and atomic creation of sled stores.
#[cfg(feature = "sled")]
impl DbBuilder {
    /// Opens the existing store at `path` for reading only: commits and
    /// other writes fail with [`kvgit_core::Error::ReadOnly`], access
    /// recency is not recorded, and nothing a later open depends on is
    /// created or changed. A sled store on a read-only mount, without
    /// write permission or on a full disk can be read (see
    /// [`SledBackend::open_read_only`]); a PostgreSQL URL opens as
    /// [`DbBuilder::open_existing`] does.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("store");
    /// kvgit::Db::open(&path)?.branch("main")?.put("k", "v")?;
    /// let db = kvgit::Db::builder().cache_bytes(1 << 20).open_read_only(&path)?;
    /// let main = db.get_branch("main")?.expect("there");
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(main.put("k", "w").is_err()); // read only
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(mut self, path: impl AsRef<Path>) -> Result<Db> {
        let path = path.as_ref();
        if postgres_url(path).is_some() {
            return self.open_existing(path);
        }
        self.options.track_access = Some(false);
        let backend: Arc<dyn Backend> = match Engine::of(path) {
            Some(Engine::Journal) => Arc::new(JournalBackend::open_read_only(
                path,
                JournalOptions::default(),
            )?),
            _ => Arc::new(SledBackend::open_read_only(
                path,
                self.options.sled.clone(),
            )?),
        };
        Db::with_backend(backend, self.options)
    }

    /// Creates a sled store at `path` (a missing or empty directory) with
    /// the branch `branch`, atomically: if this fails or the process dies
    /// part way, the directory holds no store, and creating one there
    /// again starts over ([`SledBackend::create`]).
    /// [`kvgit_core::Error::StoreExists`] if a store is there already.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("store");
    /// let db = kvgit::Db::builder().create(&path, "main")?;
    /// assert_eq!(db.branches()?, vec!["main".to_string()]);
    /// drop(db);
    /// assert!(kvgit::Db::builder().create(&path, "main").is_err()); // exists
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(self, path: impl AsRef<Path>, branch: &str) -> Result<Db> {
        let path = path.as_ref();
        // A store there already (which creation refuses), or what an
        // earlier build's interrupted sled creation left (which sled's
        // creation completes), is created as what it is.
        match Engine::of(path).unwrap_or(self.options.engine) {
            Engine::Sled => {
                let backend = Arc::new(SledBackend::create(path, self.options.sled.clone())?);
                let db = Db::with_backend(backend.clone(), self.options)?;
                db.branch(branch)?;
                backend.complete_init()?;
                Ok(db)
            }
            Engine::Journal => {
                let backend = Arc::new(JournalBackend::create(path, JournalOptions::default())?);
                let db = Db::with_backend(backend.clone(), self.options)?;
                db.branch(branch)?;
                backend.complete_init()?;
                Ok(db)
            }
        }
    }
}

#[cfg(feature = "sled")]
impl Db {
    /// Opens the existing store at `path` for reading only, with default
    /// options (see [`DbBuilder::open_read_only`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("store");
    /// kvgit::Db::open(&path)?.branch("main")?.put("k", "v")?;
    /// let db = kvgit::Db::open_read_only(&path)?;
    /// assert_eq!(db.branch("main")?.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(db.branch("other").is_err()); // creating a branch writes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Db> {
        DbBuilder::default().open_read_only(path)
    }
}

/// The URL in `path` if it names a PostgreSQL store.
fn postgres_url(path: &Path) -> Option<&str> {
    path.to_str()
        .filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// What a validation hook sees of a branch move before it lands: a commit,
/// a merge, a fast-forward, a reset, a rebase or a new branch.
#[derive(Debug)]
pub struct CommitCheck<'a> {
    /// The branch being moved.
    pub branch: &'a str,
    /// The commit message (for a move that writes no commit, a description
    /// such as `reset main to 1a2b3c4d5e6f`).
    pub message: &'a str,
    /// The changes from the current head to the new one, in key order
    /// (for a new branch, from the empty tree).
    pub changes: &'a [Change],
    /// What kind of move this is.
    pub kind: MoveKind,
    /// The head the move replaces (`None` for a new branch).
    pub old_head: Option<CommitId>,
    /// The head the branch gets (for a commit, the commit written for it);
    /// `None` when the branch is deleted ([`MoveKind::Delete`]).
    pub new_head: Option<CommitId>,
}

type Validator = Arc<dyn Fn(&CommitCheck<'_>) -> std::result::Result<(), String> + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) repo: Repo,
    pub(crate) options: Options,
    pub(crate) merge_fns: Registry,
    pub(crate) access: AccessTracker,
    /// Whether reads and writes are recorded in `access` (see
    /// [`Options::track_access`] and [`Db::set_track_access`]).
    pub(crate) track: AtomicBool,
    validators: RwLock<Vec<(String, Validator)>>,
    subscribers: Mutex<HashMap<String, Vec<Sender<CommitId>>>>,
    /// On a shared store: when a commit last lost a race, per ref (see
    /// [`Db::recently_contended`]).
    lost_races: Mutex<HashMap<String, Instant>>,
}

/// For this long after a commit lost a race on a shared store, new commits
/// on that branch wait for their writer turn before their first try.
const CONTENDED_FOR: Duration = Duration::from_millis(200);

/// A kvgit store: branches of versioned key-value data.
///
/// `Db` is cheap to clone and shared across threads: clones share the
/// store, the node cache, the merge functions, the hooks and the
/// subscriptions.
///
/// ```
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// main.put("greeting", "hello")?;
/// assert_eq!(main.get("greeting")?.as_deref(), Some(&b"hello"[..]));
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if missing) the store at `path` with default
    /// options: a directory for the embedded sled store, or a PostgreSQL
    /// URL (`postgres://user:password@host/database`) for a store shared by
    /// many processes and hosts. A sled store held by another process gives
    /// [`Error::Locked`] at once; a bad URL, a refused connection or
    /// missing permissions give [`Error::Unavailable`] with one line
    /// saying which.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("store");
    /// {
    ///     let db = kvgit::Db::open(&path)?; // created on first open
    ///     db.branch("main")?.put("k", "v")?;
    /// }
    /// let db = kvgit::Db::open(&path)?; // and there on the next one
    /// assert_eq!(db.branch("main")?.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        DbBuilder::default().open(path)
    }

    /// Opens the store at `path` with default options, refusing to create
    /// one: [`Error::NoStore`] if there is no sled store there, and
    /// [`Error::Unavailable`] for a PostgreSQL database without kvgit's
    /// tables.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let missing = dir.path().join("no-store-here");
    /// assert!(matches!(kvgit::Db::open_existing(&missing), Err(kvgit::Error::NoStore(_))));
    /// assert!(!missing.exists()); // nothing was created
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Db> {
        DbBuilder::default().open_existing(path)
    }

    /// A store in memory, with default options.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.branch("main")?.put("k", "v")?;
    /// let clone = db.clone(); // shares the store
    /// assert!(clone.branch("main")?.contains("k")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn memory() -> Db {
        DbBuilder::default().memory()
    }

    /// A builder for non-default options.
    ///
    /// ```
    /// let db = kvgit::Db::builder().track_access(false).max_retries(10).memory();
    /// assert_eq!(db.options().max_retries, 10);
    /// ```
    pub fn builder() -> DbBuilder {
        DbBuilder::default()
    }

    fn with_backend(backend: Arc<dyn Backend>, options: Options) -> Result<Db> {
        let repo = Repo::new(
            backend,
            RepoOptions {
                cache_bytes: options.cache_bytes,
                durability: options.durability,
            },
        );
        let access = AccessTracker::open(&repo, AccessOptions::default())?;
        let track = options.track_access.unwrap_or(options.watermarks.is_some());
        Ok(Db {
            inner: Arc::new(Inner {
                repo,
                track: AtomicBool::new(track),
                options,
                merge_fns: Registry::new(),
                access,
                validators: RwLock::new(Vec::new()),
                subscribers: Mutex::new(HashMap::new()),
                lost_races: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// True if reads and writes are recorded as access (see
    /// [`Options::track_access`]).
    pub(crate) fn tracking(&self) -> bool {
        self.inner.track.load(Ordering::Relaxed)
    }

    /// Starts (or stops) recording reads and writes as access from now
    /// on, whatever [`DbBuilder::track_access`] said: for a store whose
    /// recency-ordered rebases begin later (the Python `GCVersioned`
    /// turns it on when it is created). Keys never touched while it was
    /// on count as the coldest.
    ///
    /// ```
    /// let db = kvgit::Db::memory(); // no water marks: not tracking
    /// db.set_track_access(true);
    /// let cache = db.branch("cache")?;
    /// cache.put("a", "0123456789")?;
    /// cache.put("b", "0123456789")?;
    /// cache.get("a")?; // now "b" is the coldest
    /// let report = db.rebase("cache", 15, Some(10))?;
    /// assert_eq!(report.dropped, vec![b"b".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn set_track_access(&self, on: bool) {
        self.inner.track.store(on, Ordering::Relaxed);
    }

    /// Records that `key` of `branch` was read or written, for garbage
    /// collection's coldest-first order.
    pub(crate) fn touch(&self, branch: &str, key: &[u8]) {
        if self.tracking() {
            // Recency is advice: a failure to record it must not fail the
            // read or write that caused it.
            let _ = self.inner.access.touch(branch, key);
        }
    }

    pub(crate) fn touch_many<'k>(&self, branch: &str, keys: impl IntoIterator<Item = &'k [u8]>) {
        if self.tracking() {
            let _ = self.inner.access.touch_many(branch, keys);
        }
    }

    /// High/low-water rebase of `branch` now: if it holds more value bytes
    /// than `high`, drop its coldest keys (least recently read or written,
    /// then largest) until it holds at most `low`, never dropping protected
    /// keys, and commit the survivors as a fresh root commit. Old history
    /// is reclaimed by [`Db::sweep`]. Recency is recorded only when
    /// [`Options::track_access`] says so (by default, when water marks are
    /// set): on a store that never recorded it every key is equally cold,
    /// so the largest go first, then in key order.
    ///
    /// A rebase cuts the branch's history: a later merge between it and a
    /// branch forked before the rebase finds no common ancestor and merges
    /// against the empty tree (so counters would count twice). Rebase
    /// branches that are not merged with others, such as caches and
    /// per-agent state.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let cache = db.branch("cache")?;
    /// for key in ["a", "b", "c"] {
    ///     cache.put(key, "0123456789")?; // 10 bytes each
    /// }
    /// cache.put("__meta", "kept")?; // protected: the last segment starts with `__`
    /// let report = db.rebase("cache", 20, Some(15))?;
    /// assert_eq!(report.status, kvgit::RebaseStatus::Rebased);
    /// assert_eq!(report.dropped.len(), 2); // the two coldest
    /// assert!(cache.contains("__meta")?);
    /// assert_eq!(cache.log()?.count(), 1); // a fresh root commit
    /// // Below the high water: nothing to do.
    /// assert_eq!(db.rebase("cache", 1000, None)?.status, kvgit::RebaseStatus::BelowHighWater);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn rebase(&self, branch: &str, high: u64, low: Option<u64>) -> Result<RebaseReport> {
        self.rebase_with_progress(branch, high, low, Progress::default())
    }

    /// [`Db::rebase`], reporting its phases to `progress` (see
    /// [`GcPhase`]).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use kvgit::{GcPhase, Progress};
    /// let db = kvgit::Db::memory();
    /// let cache = db.branch("cache")?;
    /// cache.put("a", "0123456789")?;
    /// cache.put("b", "0123456789")?;
    /// let phases = Arc::new(Mutex::new(Vec::new()));
    /// let seen = phases.clone();
    /// let progress = Progress::new(move |phase, _count| seen.lock().expect("not poisoned").push(phase));
    /// db.rebase_with_progress("cache", 15, None, progress)?;
    /// assert!(phases.lock().expect("not poisoned").contains(&GcPhase::Done));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn rebase_with_progress(
        &self,
        branch: &str,
        high: u64,
        low: Option<u64>,
        progress: Progress,
    ) -> Result<RebaseReport> {
        let marks = watermarks(high, low)?;
        crate::move_branch::rebase(self, branch, Keep::Watermarks(&marks), progress, None)
    }

    /// [`Db::rebase`] with `protected` as the protection rule of this one
    /// rebase, in place of the store's ([`DbBuilder::protected`]): the keys
    /// it accepts are never dropped.
    ///
    /// ```
    /// let db = kvgit::Db::builder().track_access(true).memory();
    /// let cache = db.branch("cache")?;
    /// cache.put("pinned/a", "0123456789")?;
    /// cache.put("b", "0123456789")?;
    /// cache.put("c", "0123456789")?;
    /// // pinned/a is the coldest (written first), but this rebase protects it.
    /// let pinned = kvgit::Protected::new(|key| key.starts_with(b"pinned/"));
    /// let report = db.rebase_protecting("cache", 25, Some(20), pinned)?;
    /// assert!(cache.contains("pinned/a")?);
    /// assert_eq!(report.dropped, vec![b"b".to_vec()]); // the next coldest
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn rebase_protecting(
        &self,
        branch: &str,
        high: u64,
        low: Option<u64>,
        protected: Protected,
    ) -> Result<RebaseReport> {
        let marks = watermarks(high, low)?;
        let keep = Keep::Watermarks(&marks);
        crate::move_branch::rebase(self, branch, keep, Progress::default(), Some(protected))
    }

    /// Explicit rebase of `branch`: keeps exactly the keys `keep` accepts
    /// (plus protected ones) in a fresh root commit.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("keep/a", "1")?;
    /// main.put("tmp/b", "2")?;
    /// let report = db.rebase_keep("main", |key| key.starts_with(b"keep/"))?;
    /// assert_eq!(report.dropped, vec![b"tmp/b".to_vec()]);
    /// assert_eq!(main.len()?, 1);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn rebase_keep(&self, branch: &str, keep: impl Fn(&[u8]) -> bool) -> Result<RebaseReport> {
        crate::move_branch::rebase(self, branch, Keep::Only(&keep), Progress::default(), None)
    }

    /// Deletes every object no branch or tag can reach (old history after
    /// a rebase or reset, deleted branches, abandoned transactions).
    /// Writers in this process keep working; the sweep waits for those
    /// that are mid-commit. On a store shared by several processes
    /// (PostgreSQL), objects written and ref values held within the grace
    /// period ([`Options::sweep_grace`]) are kept, so writers in other
    /// processes are safe as long as each transaction finishes within it.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let first = main.put("k", "a large old value")?;
    /// main.put("k", "new")?;
    /// assert_eq!(db.sweep()?.objects_freed, 0); // the old commit is still on main
    /// db.rebase_keep("main", |_| true)?; // cut the history
    /// assert!(db.sweep()?.objects_freed > 0);
    /// assert!(db.checkout(&first).is_err()); // gone
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"new"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn sweep(&self) -> Result<SweepReport> {
        self.sweep_with(SweepOptions {
            grace: self.inner.options.sweep_grace,
            ..SweepOptions::default()
        })
    }

    /// [`Db::sweep`] with explicit options: a dry run (count, delete
    /// nothing), a grace period, a progress callback.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let options = kvgit::SweepOptions { dry_run: true, ..Default::default() };
    /// assert_eq!(db.sweep_with(options)?.objects_freed, 0);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn sweep_with(&self, options: SweepOptions) -> Result<SweepReport> {
        Ok(kvgit_gc::sweep(&self.inner.repo, &options)?)
    }

    /// Checks the whole store: every ref, commit, tree node and blob (see
    /// [`VerifyReport`]). Damage is listed in the report, not an error.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.branch("main")?.put("k", "v")?;
    /// let report = db.verify()?;
    /// assert!(report.is_ok(), "{:?}", report.problems);
    /// assert_eq!(report.refs, 1);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with_progress(Progress::default())
    }

    /// [`Db::verify`], reporting the objects read so far to `progress`
    /// (phase [`GcPhase::Mark`], every [`Progress::EVERY`] objects).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// let db = kvgit::Db::memory();
    /// db.branch("main")?.put("k", "v")?;
    /// let calls = Arc::new(AtomicU64::new(0));
    /// let counter = calls.clone();
    /// let progress = kvgit::Progress::new(move |_phase, _read| {
    ///     counter.fetch_add(1, Ordering::Relaxed);
    /// });
    /// assert!(db.verify_with_progress(progress)?.is_ok());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn verify_with_progress(&self, progress: Progress) -> Result<VerifyReport> {
        let mut read = 0u64;
        Ok(self.inner.repo.verify_with(&mut || {
            read += 1;
            progress.tick(GcPhase::Mark, read);
        })?)
    }

    /// The store's size: objects, commits reachable from branches and
    /// tags, branches, tags, bytes on disk. It lists every object, so it
    /// takes time on a large store; `progress` hears of the objects
    /// listed (phase [`GcPhase::List`]).
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("k", "v")?;
    /// main.fork("dev")?;
    /// db.tag("v1", &main.head()?)?;
    /// let stats = db.stats(kvgit::Progress::default())?;
    /// assert_eq!((stats.branches, stats.tags, stats.commits), (2, 1, 2));
    /// assert!(stats.objects > 0);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn stats(&self, progress: Progress) -> Result<StoreStats> {
        let backend = self.inner.repo.backend();
        let mut stats = StoreStats::default();
        progress.report(GcPhase::List, 0);
        backend.for_each_object(&mut |_, size| {
            stats.objects += 1;
            stats.object_bytes += size;
            progress.tick(GcPhase::List, stats.objects);
            Ok(true)
        })?;
        let refs = backend.list_refs("")?;
        let heads: Vec<CommitId> = refs.iter().map(|(_, id)| *id).collect();
        for commit in self.inner.repo.log(&heads) {
            commit?;
            stats.commits += 1;
        }
        stats.branches = refs.iter().filter(|(n, _)| n.starts_with(HEADS)).count() as u64;
        stats.tags = refs.iter().filter(|(n, _)| n.starts_with(TAGS)).count() as u64;
        stats.size_on_disk = backend.size_on_disk()?;
        progress.report(GcPhase::Done, stats.objects);
        Ok(stats)
    }

    /// Writes buffered bookkeeping (access recency) to the store.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.branch("main")?.get("k")?; // recorded as access, buffered
    /// db.flush()?;
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn flush(&self) -> Result<()> {
        self.inner.access.flush()?;
        Ok(())
    }

    /// The options the store was opened with.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// assert_eq!(db.options().max_retries, 100);
    /// assert!(db.options().watermarks.is_none());
    /// ```
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The merge functions used when concurrent commits or merged branches
    /// change the same key: exact key, then longest prefix, then default.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.merge_fns().set("hits", kvgit::merge::Counter);
    /// db.merge_fns().set_prefix("cache/", kvgit::merge::LastWriterWins);
    /// ```
    pub fn merge_fns(&self) -> &Registry {
        &self.inner.merge_fns
    }

    /// The branch `name`, created (with an empty root commit) if missing.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?; // created
    /// main.put("k", "v")?;
    /// let again = db.branch("main")?; // the same branch
    /// assert!(again.contains("k")?);
    /// assert!(db.branch("bad name").is_err());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn branch(&self, name: &str) -> Result<Branch> {
        let ref_name = refs::branch_ref(name)?;
        let repo = &self.inner.repo;
        if repo.get_ref(&ref_name)?.is_none() {
            let fence = Fence::handed(repo.write_fence());
            let message = format!("create branch {name}");
            let target = Target::New {
                tree: repo.empty_tree()?,
                unwritten: Default::default(),
                spec: CommitSpec {
                    message: message.clone(),
                    ..CommitSpec::default()
                },
            };
            // Losing the race means another writer created it: fine.
            move_branch(self, create(name, &ref_name, target, message, fence))?;
        }
        Ok(Branch::new(self.clone(), name.to_string(), ref_name))
    }

    /// The branch `name` if it exists.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// assert!(db.get_branch("main")?.is_none()); // not created
    /// db.branch("main")?;
    /// assert!(db.get_branch("main")?.is_some());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_branch(&self, name: &str) -> Result<Option<Branch>> {
        let ref_name = refs::branch_ref(name)?;
        Ok(self
            .inner
            .repo
            .get_ref(&ref_name)?
            .map(|_| Branch::new(self.clone(), name.to_string(), ref_name)))
    }

    /// Creates branch `name` at commit `at`; an error if it exists.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let v1 = main.put("k", "v1")?;
    /// main.put("k", "v2")?;
    /// let old = db.create_branch("old", &v1)?;
    /// assert_eq!(old.get("k")?.as_deref(), Some(&b"v1"[..]));
    /// assert!(matches!(db.create_branch("old", &v1), Err(kvgit::Error::AlreadyExists(_))));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn create_branch(&self, name: &str, at: &CommitId) -> Result<Branch> {
        let ref_name = refs::branch_ref(name)?;
        let repo = &self.inner.repo;
        let fence = Fence::handed(repo.write_fence());
        // Read under the fence: a commit no ref reaches cannot be swept
        // between this check and the move.
        repo.read_commit(at)?;
        let message = format!("create branch {name} at {}", at.short(12));
        let target = Target::Existing(*at);
        let request = create(name, &ref_name, target, message, fence);
        let moved = matches!(move_branch(self, request)?, Outcome::Moved { .. });
        match moved {
            true => Ok(Branch::new(self.clone(), name.to_string(), ref_name)),
            false => Err(Error::AlreadyExists(name.to_string())),
        }
    }

    /// The names of all branches, sorted.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.branch("main")?;
    /// db.branch("dev")?;
    /// assert_eq!(db.branches()?, vec!["dev".to_string(), "main".to_string()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn branches(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .repo
            .list_refs(HEADS)?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Deletes branch `name` (its commits stay until a sweep). Validation
    /// hooks see it as a [`MoveKind::Delete`] that removes every key and
    /// can refuse it; subscriptions to the branch end.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.branch("tmp")?;
    /// db.delete_branch("tmp")?;
    /// assert!(db.branches()?.is_empty());
    /// assert!(matches!(db.delete_branch("tmp"), Err(kvgit::Error::NoSuchBranch(_))));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete_branch(&self, name: &str) -> Result<()> {
        let ref_name = refs::branch_ref(name)?;
        let repo = &self.inner.repo;
        loop {
            let fence = Fence::handed(repo.write_fence());
            let Some(head) = repo.get_ref(&ref_name)? else {
                return Err(Error::NoSuchBranch(name.to_string()));
            };
            let request = Request {
                branch: name,
                ref_name: &ref_name,
                kind: MoveKind::Delete,
                expected: Some(head),
                target: Target::Deleted,
                message: format!("delete branch {name}"),
                written: &[],
                fence,
            };
            match move_branch(self, request)? {
                Outcome::Lost { .. } => continue,
                Outcome::Deleted | Outcome::Moved { .. } => return Ok(()),
            }
        }
    }

    /// Tags commit `at` as `name`: an immutable name, never moved by
    /// commits. An error if the tag exists.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let release = main.put("version", "1.0")?;
    /// db.tag("v1.0", &release)?;
    /// main.put("version", "2.0-dev")?;
    /// let tagged = db.checkout(&db.resolve("v1.0")?)?;
    /// assert_eq!(tagged.get("version")?.as_deref(), Some(&b"1.0"[..]));
    /// assert!(db.tag("v1.0", &main.head()?).is_err()); // tags never move
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn tag(&self, name: &str, at: &CommitId) -> Result<()> {
        self.inner.repo.create_ref(&refs::tag_ref(name)?, at)?;
        Ok(())
    }

    /// All tags and their commits, sorted by name.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let head = db.branch("main")?.head()?;
    /// db.tag("b", &head)?;
    /// db.tag("a", &head)?;
    /// assert_eq!(db.tags()?, vec![("a".to_string(), head), ("b".to_string(), head)]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn tags(&self) -> Result<Vec<(String, CommitId)>> {
        Ok(self.inner.repo.list_refs(TAGS)?)
    }

    /// Deletes tag `name`.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.tag("v1", &db.branch("main")?.head()?)?;
    /// db.delete_tag("v1")?;
    /// assert!(db.tags()?.is_empty());
    /// assert!(matches!(db.delete_tag("v1"), Err(kvgit::Error::NoSuchTag(_))));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete_tag(&self, name: &str) -> Result<()> {
        match self.inner.repo.delete_ref(&refs::tag_ref(name)?, None) {
            Ok(_) => Ok(()),
            Err(kvgit_core::Error::UnknownRef(_)) => Err(Error::NoSuchTag(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves a revision: a branch name, a tag name, a remote-tracking
    /// branch a fetch left (`remotes/origin/main`, or `origin/main` when no
    /// branch or tag has that name), or a commit id in full or as a unique
    /// prefix of at least 4 hex digits.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let head = main.put("k", "v")?;
    /// db.tag("v1", &head)?;
    /// assert_eq!(db.resolve("main")?, head);
    /// assert_eq!(db.resolve("v1")?, head);
    /// assert_eq!(db.resolve(&head.short(8))?, head);
    /// assert_eq!(db.resolve(&head.to_hex())?, head);
    /// assert!(matches!(db.resolve("nope"), Err(kvgit::Error::UnknownRevision(_))));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn resolve(&self, rev: &str) -> Result<CommitId> {
        let repo = &self.inner.repo;
        if refs::validate_name(rev).is_ok() {
            if let Some(id) = repo.get_ref(&format!("{HEADS}{rev}"))? {
                return Ok(id);
            }
            if let Some(id) = repo.get_ref(&format!("{TAGS}{rev}"))? {
                return Ok(id);
            }
        }
        // Remote-tracking branches: `remotes/R/B`, or `R/B` when no branch
        // or tag has that name.
        if rev.contains('/') {
            let tracking = match rev.starts_with(REMOTES) {
                true => rev.to_string(),
                false => format!("{REMOTES}{rev}"),
            };
            if let Ok(Some(id)) = repo.get_ref(&tracking) {
                return Ok(id);
            }
        }
        match repo.resolve_commit_prefix(rev) {
            Ok(id) => Ok(id),
            Err(kvgit_core::Error::InvalidId(_) | kvgit_core::Error::UnknownCommit(_)) => {
                Err(Error::UnknownRevision(rev.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A read-only snapshot of commit `id`. Unlike a branch snapshot it
    /// is not pinned: a sweep may delete a commit no branch or tag reaches
    /// (reads then fail with `MissingObject`, never give wrong data).
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let v1 = main.put("k", "v1")?;
    /// main.put("k", "v2")?;
    /// let old = db.checkout(&v1)?;
    /// assert_eq!(old.commit_id(), v1);
    /// assert_eq!(old.get("k")?.as_deref(), Some(&b"v1"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn checkout(&self, id: &CommitId) -> Result<Snapshot> {
        Snapshot::at(self.clone(), *id)
    }

    /// The changes from commit `a` to commit `b`, in key order, with values
    /// loaded.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let a = main.put("k", "v1")?;
    /// let b = main.put("k", "v2")?;
    /// let changes = db.diff(&a, &b)?;
    /// assert_eq!(changes.len(), 1);
    /// assert_eq!(changes[0].kind, kvgit::ChangeKind::Modified);
    /// assert_eq!(changes[0].old.as_deref(), Some(&b"v1"[..]));
    /// assert_eq!(changes[0].new.as_deref(), Some(&b"v2"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn diff(&self, a: &CommitId, b: &CommitId) -> Result<Vec<Change>> {
        let a = self.checkout(a)?;
        let b = self.checkout(b)?;
        a.diff_to(&b)
    }

    /// Adds a validation hook, run before every move of any branch lands
    /// (gitkv's pre-receive): commits, merges, fast-forwards, resets,
    /// rebases (automatic ones included) and new branches. It sees the kind
    /// of move, the old and new heads and the changes between them, and
    /// refuses the move by returning `Err(message)`; the move then fails
    /// with [`Error::Rejected`] and the branch stays where it was. (A
    /// refused automatic rebase does not fail the commit that triggered
    /// it: the commit stands, and its outcome reports no rebase.)
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.add_validator("no-secrets", |c| {
    ///     match c.changes.iter().any(|ch| ch.key.starts_with(b"secret/")) {
    ///         true => Err("secrets stay out of the store".into()),
    ///         false => Ok(()),
    ///     }
    /// });
    /// let main = db.branch("main")?;
    /// assert!(main.put("secret/key", "x").is_err());
    /// assert!(main.put("public/key", "x").is_ok());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn add_validator<F>(&self, name: &str, hook: F)
    where
        F: Fn(&CommitCheck<'_>) -> std::result::Result<(), String> + Send + Sync + 'static,
    {
        self.inner
            .validators
            .write()
            .push((name.to_string(), Arc::new(hook)));
    }

    /// Removes the validation hooks named `name`.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// db.add_validator("frozen", |_| Err("the store is frozen".into()));
    /// assert!(db.branch("main").is_err()); // creating a branch is a move too
    /// db.remove_validator("frozen");
    /// db.branch("main")?.put("k", "v")?;
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn remove_validator(&self, name: &str) {
        self.inner.validators.write().retain(|(n, _)| n != name);
    }

    pub(crate) fn has_validators(&self) -> bool {
        !self.inner.validators.read().is_empty()
    }

    pub(crate) fn validate(&self, check: &CommitCheck<'_>) -> Result<()> {
        let hooks: Vec<(String, Validator)> = self.inner.validators.read().clone();
        for (name, hook) in hooks {
            if let Err(message) = hook(check) {
                return Err(Error::Rejected {
                    branch: check.branch.to_string(),
                    hook: name,
                    message,
                });
            }
        }
        Ok(())
    }

    /// Subscribes to the heads of branch `name`: the receiver gets every new
    /// head this `Db` (or a clone) moves the branch to, in order. Dropping
    /// the receiver ends the subscription; deleting the branch through this
    /// `Db` ends it too (the receiver is then disconnected). Moves made by
    /// other processes are not seen.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let heads = db.subscribe("main")?; // before the branch exists
    /// let main = db.branch("main")?;
    /// let head = main.put("k", "v")?;
    /// let seen: Vec<kvgit::CommitId> = heads.try_iter().collect();
    /// assert_eq!(seen.last(), Some(&head));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn subscribe(&self, name: &str) -> Result<Receiver<CommitId>> {
        let ref_name = refs::branch_ref(name)?;
        let (tx, rx) = channel();
        self.inner
            .subscribers
            .lock()
            .entry(ref_name)
            .or_default()
            .push(tx);
        Ok(rx)
    }

    /// The writer turn on `ref_name` when the store is shared by processes
    /// (see [`kvgit_core::SharedStore::writer_turn`]); `None` on a store
    /// owned by this process, where backoff keeps threads fair.
    pub(crate) fn writer_turn(&self, ref_name: &str) -> Result<Option<Box<dyn WriterTurn + '_>>> {
        match self.inner.repo.backend().shared() {
            Some(shared) => Ok(shared.writer_turn(ref_name)?),
            None => Ok(None),
        }
    }

    /// Records that a commit on `ref_name` just lost a race (only kept for
    /// shared stores).
    pub(crate) fn lost_race(&self, ref_name: &str) {
        if self.inner.repo.backend().shared().is_some() {
            let mut lost = self.inner.lost_races.lock();
            let now = Instant::now();
            lost.retain(|_, t| now.duration_since(*t) < CONTENDED_FOR);
            lost.insert(ref_name.to_owned(), now);
        }
    }

    /// True if a commit on `ref_name` lost a race on a shared store within
    /// the last [`CONTENDED_FOR`].
    pub(crate) fn recently_contended(&self, ref_name: &str) -> bool {
        self.inner
            .lost_races
            .lock()
            .get(ref_name)
            .is_some_and(|t| t.elapsed() < CONTENDED_FOR)
    }

    /// Ends every subscription to `ref_name` (the branch was deleted).
    pub(crate) fn unsubscribe_all(&self, ref_name: &str) {
        self.inner.subscribers.lock().remove(ref_name);
    }

    pub(crate) fn notify(&self, ref_name: &str, head: CommitId) {
        let mut subs = self.inner.subscribers.lock();
        if let Some(list) = subs.get_mut(ref_name) {
            list.retain(|tx| tx.send(head).is_ok());
        }
    }
}
