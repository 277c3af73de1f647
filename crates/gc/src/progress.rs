//! [`Progress`]: what a rebase or a sweep reports while it works, for a
//! progress display; with the `tracing` feature, the same steps as
//! `tracing` events.

use std::fmt;
use std::sync::Arc;

/// A step of a rebase or a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GcPhase {
    /// Sweep: marking what the refs reach; the count is objects marked.
    Mark,
    /// Sweep: waiting for in-flight writers (the fence), then marking
    /// what moved meanwhile.
    Fence,
    /// Sweep: listing the store's objects; the count is objects listed.
    List,
    /// Sweep: deleting unreachable objects; the count is objects deleted.
    Delete,
    /// Rebase: choosing the keys to drop (one call per attempt; the count
    /// is the attempt).
    Plan,
    /// Rebase: writing the survivors' tree and commit and moving the
    /// branch; the count is the keys dropped.
    Write,
    /// The work is finished; the count is the phase's final total.
    Done,
}

/// A progress callback for [`rebase`](crate::rebase) and
/// [`sweep`](crate::sweep) (fields of their options): called with the
/// phase and a running count, at the start of each phase and as it goes
/// (at most every [`Progress::EVERY`] items). The default does nothing.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// let calls = Arc::new(AtomicU64::new(0));
/// let seen = calls.clone();
/// let progress = kvgit_gc::Progress::new(move |_phase, _count| {
///     seen.fetch_add(1, Ordering::Relaxed);
/// });
/// let repo = kvgit_core::Repo::memory();
/// let options = kvgit_gc::SweepOptions { progress, ..Default::default() };
/// kvgit_gc::sweep(&repo, &options)?;
/// assert!(calls.load(Ordering::Relaxed) > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Fn(GcPhase, u64) + Send + Sync>>);

impl Progress {
    /// How many items pass between two calls within a phase.
    pub const EVERY: u64 = 1024;

    /// A progress callback calling `f(phase, count)`.
    pub fn new(f: impl Fn(GcPhase, u64) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(f)))
    }

    /// Reports `count` in `phase` (a phase start, its end, or a step).
    pub fn report(&self, phase: GcPhase, count: u64) {
        #[cfg(feature = "tracing")]
        tracing::trace!(?phase, count, "gc progress");
        if let Some(f) = &self.0 {
            f(phase, count);
        }
    }

    /// Reports `count` if it is a multiple of [`Progress::EVERY`]: for
    /// loops over many items.
    pub fn tick(&self, phase: GcPhase, count: u64) {
        if count % Self::EVERY == 0 {
            self.report(phase, count);
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "Progress(Fn)",
            None => "Progress(none)",
        })
    }
}
