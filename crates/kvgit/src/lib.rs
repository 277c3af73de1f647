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

#![deny(missing_docs)]

mod branch;
mod codec;
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
mod tx;
mod typed_merge;

pub use branch::{Branch, MergeOutcome};
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, DefaultCodec, Postcard};
pub use db::{CommitCheck, CommitId, Db, DbBuilder, Options};
pub use error::{Conflict, Error, Result};
pub use file::{KeyFile, OpenMode};
#[cfg(feature = "sled")]
pub use kvgit_core::SledOptions;
pub use kvgit_core::{Durability, ObjectId};
pub use move_branch::MoveKind;
pub use namespace::{Namespace, TxNamespace};
#[cfg(feature = "remote")]
pub use remote::Remote;
pub use snapshot::{Change, ChangeKind, CommitInfo, Snapshot};
pub use tx::{CommitOutcome, Transaction};

/// Merge functions: how keys changed on both sides are reconciled.
///
/// Byte-level built-ins ([`Counter`](merge::Counter) on decimal text,
/// [`LastWriterWins`](merge::LastWriterWins), [`Ours`](merge::Ours),
/// [`Theirs`](merge::Theirs), [`Max`](merge::Max), [`Min`](merge::Min),
/// [`SetUnion`](merge::SetUnion) on lines, [`TextMerge`](merge::TextMerge))
/// and typed ones over values stored with `put_as` ([`typed`](merge::typed)
/// closures, [`typed_counter`](merge::typed_counter), ...). Register them on
/// [`Db::merge_fns`] by exact key, by prefix, or as the default.
pub mod merge {
    pub use crate::typed_merge::{
        typed, typed_counter, typed_max, typed_min, typed_set_union, typed_with, Merged, Typed,
    };
    pub use kvgit_merge::{
        Counter, LastWriterWins, Max, MergeFn, Min, Ours, Policy, Registry, Resolution, SetUnion,
        Strategy, TextMerge, Theirs,
    };
}

/// The README's examples, compiled and run as tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The crate's README (its crates.io page), compiled and run as a test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;

/// Garbage collection reports and settings (see [`Db::rebase`],
/// [`Db::sweep`] and [`Options::watermarks`]).
pub mod gc {
    pub use kvgit_gc::{
        is_protected_default, Protected, RebaseReport, RebaseStatus, SweepOptions, SweepReport,
        Usage, Watermarks,
    };
}

/// The lower layers, for what the facade does not cover.
pub mod core {
    pub use kvgit_core::*;
}

/// The PostgreSQL backend: [`Db::open`] takes a `postgres://` URL; these
/// are its options ([`DbBuilder::postgres_options`]) and the backend
/// itself, for [`DbBuilder::backend`].
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use kvgit_postgres::{is_postgres_url, redact_url, PgBackend, PgOptions, SCHEMA_VERSION};
}
