//! # kvgit-merge
//!
//! Three-way merge for kvgit: how many writers share one store without
//! locks. Built on kvgit-core's public API only.
//!
//! - [`merge_base`] finds the lowest common ancestor of two commits through
//!   their heights, reading only the commits between the tips and the base.
//! - [`merge_trees`] merges two trees against their base: keys changed on
//!   one side are taken, identical changes are taken once, and keys changed
//!   differently on both sides go to the merge function that a
//!   [`Registry`] picks for the key (exact key, then longest prefix, then
//!   default). Its cost follows the number of changes, not the size of the
//!   trees. [`merge_commits`] does the same for two commits, and
//!   [`merge_into_ref`] also records the result on a branch.
//! - A [`MergeFn`] turns a key's `(base, ours, theirs)` values into a
//!   [`Resolution`]; built-ins: [`Counter`], [`LastWriterWins`], [`Ours`],
//!   [`Theirs`], [`Max`], [`Min`], [`SetUnion`], [`TextMerge`].
//!
//! A merge either succeeds with an [`Outcome`] (which [`Strategy`] ran,
//! which keys a merge function resolved, which keys came from theirs) or
//! fails with [`Error::Conflicts`] listing every conflicting key.
//!
//! ```
//! use kvgit_core::Repo;
//! use kvgit_merge::{merge_trees, tree, Counter, Error, Registry};
//!
//! let repo = Repo::memory();
//! let put = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
//! let base = repo.apply(&repo.empty_tree()?, [put("hits", "100"), put("name", "kv")])?;
//! let ours = repo.apply(&base, [put("hits", "115"), put("a", "1")])?;
//! let theirs = repo.apply(&base, [put("hits", "120"), put("name", "kvgit")])?;
//!
//! // Without a merge function, "hits" is a conflict.
//! let registry = Registry::new();
//! let options = tree::Options::default();
//! let err = merge_trees(&repo, &base, &ours, &theirs, &registry, &options).unwrap_err();
//! assert!(matches!(&err, Error::Conflicts(c) if c[0].key == b"hits"));
//!
//! // With a counter, both increments count.
//! registry.set("hits", Counter);
//! let outcome = merge_trees(&repo, &base, &ours, &theirs, &registry, &options)?;
//! assert_eq!(repo.get(&outcome.tree, b"hits")?, Some(b"135".to_vec()));
//! assert_eq!(repo.get(&outcome.tree, b"name")?, Some(b"kvgit".to_vec()));
//! assert_eq!(outcome.resolved, vec![b"hits".to_vec()]);
//! assert_eq!(outcome.from_theirs, vec![b"name".to_vec()]);
//! # Ok::<(), Error>(())
//! ```

#![deny(missing_docs)]

pub mod base;
mod builtin;
pub mod commit;
mod error;
mod resolve;
pub mod tree;

pub use base::{merge_base, merge_bases};
pub use builtin::{
    parse_integer, Counter, LastWriterWins, Max, Min, Ours, SetUnion, TextMerge, Theirs,
};
pub use commit::{merge_commits, merge_into_ref, RefOptions, RefOutcome};
pub use error::{Conflict, Error};
pub use resolve::{MergeFn, Policy, Registry, Resolution};
pub use tree::{merge_trees, Outcome, Strategy};
