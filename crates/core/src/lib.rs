//! # kvgit-core
//!
//! The foundation of kvgit: content-addressed objects, the prolly tree that
//! holds each commit's key space, commits, refs moved by compare-and-swap,
//! history, and the storage backends.
//!
//! - A [`Repo`] wraps a [`Backend`] (in memory, or sled on disk with the
//!   `sled` feature, on by default) and the shared cache of decoded nodes.
//! - A [`Tree`] is an immutable sorted map from keys to values, named by its
//!   root node's id. [`Repo::build_tree`] bulk-loads one; [`Repo::apply`]
//!   derives a new tree from a batch of puts and deletes, rewriting only the
//!   nodes on the changed paths. The same content always has the same root
//!   id, however it was written.
//! - A [`Commit`] names a tree, its parents and a message;
//!   [`Repo::commit`] writes one and moves a ref to it by compare-and-swap.
//!
//! ```
//! use kvgit_core::{Repo, CommitSpec, CasOutcome};
//!
//! let repo = Repo::memory();
//! let tree = repo.build_tree(vec![(b"a".to_vec(), b"1".to_vec())])?;
//! let tree = repo.apply(&tree, vec![(b"b".to_vec(), Some(b"2".to_vec()))])?;
//! assert_eq!(repo.get(&tree, b"b")?, Some(b"2".to_vec()));
//! assert_eq!(tree.len(), 2);
//!
//! let (id, outcome) = repo.commit("heads/main", None, &tree, &CommitSpec::default())?;
//! assert_eq!(outcome, CasOutcome::Swapped);
//! assert_eq!(repo.get_ref("heads/main")?, Some(id));
//! # Ok::<(), kvgit_core::Error>(())
//! ```

pub mod cache;
mod error;
pub mod history;
mod id;
pub mod object;
pub mod refs;
mod repo;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tree;
mod verify;

pub use error::{Error, Result};
pub use id::ObjectId;
pub use object::{Commit, Value, INLINE_MAX, MAX_KEY_LEN, MAX_VALUE_LEN};
pub use repo::{CommitSpec, Pin, Repo, RepoOptions};
pub use store::{
    Backend, CasOutcome, Compaction, Durability, MemoryBackend, SharedStore, WriterTurn,
};
#[cfg(feature = "sled")]
pub use store::{JournalBackend, JournalOptions};
#[cfg(feature = "sled")]
pub use store::{SledBackend, SledOptions};
pub use tree::{Change, Tree, Unwritten};
pub use verify::VerifyReport;
