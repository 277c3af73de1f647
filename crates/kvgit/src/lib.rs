//! # kvgit
//!
//! A versioned key-value store with git's model and none of git's
//! machinery. Every state of the store is an immutable, content-addressed
//! commit; branches are names whose heads move only by compare-and-swap;
//! concurrent writers are reconciled by three-way merge with per-key merge
//! functions.
//!
//! - [`Db`] is the store (on disk with sled, or in memory): shared, cheap
//!   to clone, `Send + Sync`. It holds the merge functions, validation
//!   hooks and subscriptions.
//! - [`Branch`] is a named head. Read it, write single keys, fork it,
//!   merge other branches in, walk its history.
//! - [`Transaction`] stages writes on a snapshot of a branch and commits
//!   them atomically; if another writer moved the branch meanwhile, it
//!   merges (base: its snapshot) and commits on top. [`Branch::update`]
//!   runs a closure and commits only if it succeeds, re-running it on a
//!   lost race.
//! - [`Snapshot`] is a read-only view of any commit; [`Namespace`] a
//!   `/`-separated prefix view; [`KeyFile`] one key as a file.
//!
//! ```
//! use kvgit::{Db, merge::Counter};
//!
//! let db = Db::memory(); // Db::open("data.kvgit") for a store on disk
//! let main = db.branch("main")?;
//! main.put("hits", "100")?;
//!
//! // Two writers start from the same head...
//! let mut a = main.transaction()?;
//! let mut b = main.transaction()?;
//! a.put("hits", "115");
//! b.put("hits", "120");
//! a.commit()?;
//! // ...the second one merges; a counter adds both increments up.
//! db.merge_fns().set("hits", Counter);
//! let outcome = b.commit()?;
//! assert_eq!(main.get("hits")?.as_deref(), Some(&b"135"[..]));
//! assert_eq!(outcome.resolved, vec![b"hits".to_vec()]);
//!
//! // Every commit stays readable.
//! for entry in main.log()? {
//!     let info = entry?;
//!     println!("{} {}", info.id.short(12), info.message());
//! }
//! # Ok::<(), kvgit::Error>(())
//! ```
//!
//! ## Features
//!
//! - `sled` (default): the embedded store on disk, `Db::open("dir")`.
//!   Without it, opening a path is an error and [`Db::memory`] and
//!   [`DbBuilder::backend`] remain.
//! - `json` (default): the [`Json`] codec for typed values.
//! - `postgres`: stores in PostgreSQL, `Db::open("postgres://...")`, one
//!   store shared by many processes and hosts (pulls in the `postgres`
//!   client and tokio).
//! - `tracing`: `tracing` spans and events on commit attempts, merges,
//!   rebase and sweep phases and PostgreSQL calls (no subscriber is
//!   installed: the program chooses one).

#![deny(missing_docs)]

mod branch;
mod codec;
mod compact;
mod db;
mod error;
mod file;
#[cfg(feature = "json")]
pub mod jsonl;
mod move_branch;
mod namespace;
#[cfg(feature = "remote")]
pub mod remote;
mod snapshot;
mod staged;
mod tx;
mod tx_at;
mod typed_merge;

pub use branch::{Branch, MergeOutcome};
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, DefaultCodec, Postcard};
#[cfg(feature = "sled")]
pub use db::Engine;
pub use db::{CommitCheck, CommitId, Db, DbBuilder, Options, StoreStats};
pub use error::{Conflict, Error, Result};
pub use file::{KeyFile, OpenMode};
pub use kvgit_core::{Compaction, Durability, VerifyReport, MAX_KEY_LEN, MAX_VALUE_LEN};
#[cfg(feature = "sled")]
pub use kvgit_core::{JournalOptions, SledOptions};
pub use kvgit_gc::{
    GcPhase, Progress, Protected, RebaseReport, RebaseStatus, SweepOptions, SweepReport, Watermarks,
};
pub use kvgit_merge::Strategy;
#[cfg(feature = "postgres")]
pub use kvgit_postgres::PgOptions;
pub use move_branch::MoveKind;
pub use namespace::{Namespace, TxNamespace};
#[cfg(feature = "remote")]
pub use remote::Remote;
pub use snapshot::{Change, ChangeKind, CommitInfo, Snapshot};
pub use tx::{CommitOutcome, Transaction};

/// Merge functions: how keys changed on both sides are reconciled.
///
/// The built-ins: [`Counter`](merge::Counter), [`Max`](merge::Max) and
/// [`Min`](merge::Min) on integers, whether written as decimal text
/// (`put(key, "100")`) or with `put_as` (the store's codec);
/// [`LastWriterWins`](merge::LastWriterWins), [`Ours`](merge::Ours),
/// [`Theirs`](merge::Theirs) on any value; [`SetUnion`](merge::SetUnion)
/// on lines and [`TextMerge`](merge::TextMerge) on text. Closures over
/// decoded values of any type: [`typed`](merge::typed) (and
/// [`typed_max`](merge::typed_max), [`typed_min`](merge::typed_min),
/// [`typed_set_union`](merge::typed_set_union) for other `Ord` types).
/// Register them on [`Db::merge_fns`] by exact key, by prefix, or as the
/// default, or for one transaction with [`Transaction::merge_fn`].
pub mod merge {
    #[allow(deprecated)]
    pub use crate::typed_merge::typed_counter;
    pub use crate::typed_merge::{
        typed, typed_max, typed_min, typed_set_union, typed_with, Counter, Max, Merged, Min, Typed,
    };
    pub use kvgit_merge::{
        LastWriterWins, MergeFn, Ours, Policy, Registry, Resolution, SetUnion, TextMerge, Theirs,
    };
}

/// The layers under the facade, for what it does not cover: the low-level
/// [`Repo`](advanced::Repo) of a [`Db`] (trees, objects, refs), the
/// storage backends for [`DbBuilder::backend`], and the id and tree types
/// they use. Anything else of the lower layers is in the `kvgit-core`
/// crate.
pub mod advanced {
    use crate::{Db, Snapshot};

    pub use kvgit_core::{
        Backend, CasOutcome, Commit, CommitSpec, MemoryBackend, ObjectId, Repo, RepoOptions,
        SharedStore, Tree, Value, WriterTurn,
    };
    #[cfg(feature = "sled")]
    pub use kvgit_core::{JournalBackend, SledBackend};
    #[cfg(feature = "postgres")]
    pub use kvgit_postgres::{is_postgres_url, redact_url, PgBackend, SCHEMA_VERSION};

    /// The low-level handle of `db` (trees, objects, refs). Writes through
    /// it bypass the facade's validation hooks, subscriptions, access
    /// recency and garbage collection.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let head = db.branch("main")?.put("k", "v")?;
    /// let repo = kvgit::advanced::repo(&db);
    /// assert_eq!(repo.get_ref("heads/main")?, Some(head));
    /// assert_eq!(repo.read_commit(&head)?.parents.len(), 1);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn repo(db: &Db) -> &Repo {
        &db.inner.repo
    }

    /// The tree of `snapshot`, for [`Repo`]'s reads and diffs.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("k", "v")?;
    /// let snapshot = main.snapshot()?;
    /// let tree = kvgit::advanced::tree(&snapshot);
    /// assert_eq!(tree.len(), 1);
    /// let repo = kvgit::advanced::repo(&db);
    /// assert_eq!(repo.get(&tree, b"k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn tree(snapshot: &Snapshot) -> Tree {
        snapshot.tree
    }
}

/// The README's examples, compiled and run as tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The crate's README (its crates.io page), compiled and run as a test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
