//! # kvgit-gc
//!
//! Garbage collection for kvgit: how a store that runs for months gives
//! space back without losing anything a branch or an in-flight writer
//! still needs. Built on kvgit-core's public API only.
//!
//! - [`Watermarks`] say when a branch is too big (more value bytes than
//!   the high water) and how far to shrink it (the low water, 80% of the
//!   high by default); [`usage`] measures a commit in O(1) from its tree's
//!   aggregates.
//! - An [`AccessTracker`] records when each key of each branch was last
//!   read or written, as ticks of one counter, outside the content-addressed
//!   objects, persisted in batches in the backend's metadata.
//! - [`rebase`] drops a branch's coldest unprotected keys (least recent
//!   tick, then largest) down to the low water and commits the survivors as
//!   a fresh root commit, moving the branch by compare-and-swap;
//!   [`rebase_keep`] keeps an explicit set instead. [`rebase_with`] and
//!   [`rebase_keep_with`] leave the ref move to the caller.
//! - [`sweep`] marks everything reachable from every ref and deletes the
//!   rest, under a fence that in-flight writers hold (see the [`sweep`]
//!   docs for the protocol).
//!
//! Rebasing cuts history; sweeping is what frees the space: the old
//! commits, the dropped values and the nodes only they used.
//!
//! ```
//! use kvgit_core::{CasOutcome, CommitSpec, Repo};
//! use kvgit_gc::{
//!     rebase, sweep, AccessOptions, AccessTracker, RebaseOptions, SweepOptions, Watermarks,
//! };
//!
//! let repo = Repo::memory();
//! let access = AccessTracker::open(&repo, AccessOptions::default())?;
//!
//! // Commit three 40-byte values in turn; each write touches its key.
//! let mut head = None;
//! let mut tree = repo.empty_tree()?;
//! for key in ["a", "b", "c"] {
//!     let _fence = repo.write_fence(); // writers hold it until the ref moves
//!     tree = repo.apply(&tree, [(key.as_bytes().to_vec(), Some(vec![b'x'; 40]))])?;
//!     let spec = CommitSpec { parents: head.into_iter().collect(), ..CommitSpec::default() };
//!     let (id, outcome) = repo.commit("heads/main", head.as_ref(), &tree, &spec)?;
//!     assert_eq!(outcome, CasOutcome::Swapped);
//!     head = Some(id);
//!     access.touch("main", key.as_bytes())?;
//! }
//!
//! // 120 bytes is above a high water of 100: drop the coldest key ("a")
//! // to reach the default low water of 80.
//! let report = rebase(&repo, "main", &Watermarks::new(100), &access, &RebaseOptions::default())?;
//! assert!(report.performed());
//! assert_eq!(report.dropped, vec![b"a".to_vec()]);
//! assert_eq!((report.bytes_before, report.bytes_after), (120, 80));
//!
//! // The branch now starts at a fresh root commit; the sweep frees the old
//! // history and the value of "a".
//! let swept = sweep(&repo, &SweepOptions::default())?;
//! assert!(swept.objects_freed >= 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod access;
mod progress;
mod rebase;
mod sweep;
mod watermark;

pub use access::{AccessError, AccessOptions, AccessTracker, ACCESS_PREFIX, TICK_KEY};
pub use progress::{GcPhase, Progress};
pub use rebase::{
    is_protected_default, rebase, rebase_keep, rebase_keep_with, rebase_with, Protected,
    RebaseError, RebaseMove, RebaseOptions, RebaseReport, RebaseStatus, REBASED_FROM,
};
pub use sweep::{sweep, SweepError, SweepOptions, SweepReport};
pub use watermark::{branch_usage, usage, Usage, WatermarkError, Watermarks};
