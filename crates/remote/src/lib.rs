//! # kvgit-remote
//!
//! Sharing a store between machines without a server to run: clone, fetch
//! and push between two stores over kvgit's own protocol, and Merkle proofs
//! of single values.
//!
//! - A [`Connection`] is a protocol session with a remote store: served by
//!   a thread of this process ([`Connection::in_process`]), by a child
//!   `kvgit serve --stdio PATH` (`file://` URLs), or by the same command
//!   run through `ssh` ([`RemoteUrl`]).
//! - [`fetch`], [`clone`] and [`push`] move objects and refs over it and
//!   return a [`Report`]. The receiving side drives and checks every object
//!   against its id before storing it; objects are stored before any ref
//!   moves, and refs move by compare-and-swap.
//! - [`serve`] answers a peer from a store, with a pre-receive hook and a
//!   pluggable ref update for pushes ([`ServeOptions`]).
//! - [`prove`] and [`Proof::verify`]: the path from a root to a key's leaf.
//!
//! ```
//! use kvgit_core::{CommitSpec, Repo};
//! use kvgit_remote::{clone, push, Connection, FetchOptions, PushOptions, ServeOptions};
//!
//! let server = Repo::memory();
//! let tree = server.build_tree(vec![(b"a".to_vec(), b"1".to_vec())])?;
//! server.commit("heads/main", None, &tree, &CommitSpec::default())?;
//!
//! let local = Repo::memory();
//! let mut conn = Connection::in_process(server.clone(), ServeOptions::default())?;
//! clone(&local, &mut conn, "origin", FetchOptions::default())?;
//! let head = local.get_ref("heads/main")?.expect("cloned");
//! let tree = local.tree(local.read_commit(&head)?.root)?;
//! assert_eq!(local.get(&tree, b"a")?, Some(b"1".to_vec()));
//!
//! let tree = local.apply(&tree, vec![(b"b".to_vec(), Some(b"2".to_vec()))])?;
//! let spec = CommitSpec { parents: vec![head], ..Default::default() };
//! let (new, _) = local.commit("heads/main", Some(&head), &tree, &spec)?;
//! let report = push(&local, &mut conn, "main", PushOptions::default())?;
//! assert_eq!(server.get_ref("heads/main")?, Some(new));
//! assert!(report.objects_sent >= 2);
//! conn.close()?;
//! # Ok::<(), kvgit_remote::Error>(())
//! ```

#![deny(missing_docs)]

mod client;
mod config;
mod error;
mod proof;
pub mod protocol;
mod receive;
mod report;
mod serve;
mod source;
mod transport;

pub use client::{
    clone, fetch, list_refs, push, shallow_commits, FetchOptions, PushOptions, PushProgress,
};
pub use config::{add_remote, list_remotes, remote_url, remove_remote};
pub use error::{Error, Result};
pub use proof::{get_verified, prove, Proof, ProvenValue};
pub use report::{Phase, Progress, RefChange, Report};
pub use serve::{serve, serve_channel, ApplyUpdate, PreReceive, PushUpdate, ServeOptions};
pub use source::is_ancestor;
pub use transport::{pipe, ConnectOptions, Connection, PipeReader, PipeWriter, RemoteUrl};
