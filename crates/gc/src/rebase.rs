//! Rebasing a branch onto a fresh root commit that keeps only some keys:
//! the coldest keys dropped past a high water ([`rebase`]), or an explicit
//! keep set ([`rebase_keep`]).
//!
//! The new commit has no parents, so once nothing else refers to the old
//! history, a [`sweep`](crate::sweep) frees it along with the dropped
//! values. The survivors' tree is the head's tree with the dropped keys
//! deleted: unchanged subtrees are shared with the old head, so a rebase
//! writes O(dropped x depth) nodes.
//!
//! A rebase is a writer like any other: it plans without locks, then holds
//! [`Repo::write_fence`] while it writes its objects and moves the branch
//! by compare-and-swap from the head it planned from. If a writer moved
//! the branch meanwhile, the rebase never overwrites that commit: it plans
//! again on the new head, up to [`RebaseOptions::max_attempts`] times, and
//! then reports [`RebaseStatus::Raced`].
//!
//! The ref move itself is the caller's if it wants it ([`rebase_with`],
//! [`rebase_keep_with`]): a layer that runs work around every branch move
//! (validation, notifications) moves the ref through its own code, under
//! the rebase's fence, and can refuse the move.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use kvgit_core::{refs, CasOutcome, CommitSpec, ObjectId, Repo, Tree};

use crate::access::{AccessError, AccessTracker};
use crate::progress::{GcPhase, Progress};
use crate::watermark::{Usage, Watermarks};

/// The commit metadata key under which a rebase records the head it
/// replaced (as 64 hex digits).
pub const REBASED_FROM: &str = "gc.rebased-from";

/// Which keys a rebase must never drop: a predicate on the key.
///
/// The default protects keys whose last `/`-separated segment starts with
/// `__` (see [`is_protected_default`]): `__meta` and `agent/__state` are
/// protected, `a__b` and `__dir/x` are not.
#[derive(Clone)]
pub struct Protected(Arc<KeyPredicate>);

type KeyPredicate = dyn Fn(&[u8]) -> bool + Send + Sync;

impl Protected {
    /// Protects the keys for which `predicate` returns true.
    pub fn new(predicate: impl Fn(&[u8]) -> bool + Send + Sync + 'static) -> Self {
        Protected(Arc::new(predicate))
    }

    /// Protects nothing.
    pub fn nothing() -> Self {
        Protected::new(|_| false)
    }

    /// True if `key` must be kept.
    pub fn is_protected(&self, key: &[u8]) -> bool {
        (self.0)(key)
    }
}

impl Default for Protected {
    fn default() -> Self {
        Protected::new(is_protected_default)
    }
}

impl fmt::Debug for Protected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protected(..)")
    }
}

/// The default protection rule: the key's last `/`-separated segment starts
/// with `__`.
///
/// ```
/// use kvgit_gc::is_protected_default;
///
/// assert!(is_protected_default(b"__meta"));
/// assert!(is_protected_default(b"agent/__state"));
/// assert!(!is_protected_default(b"__dir/file"));
/// assert!(!is_protected_default(b"a__b"));
/// ```
pub fn is_protected_default(key: &[u8]) -> bool {
    key.rsplit(|&b| b == b'/')
        .next()
        .is_some_and(|last| last.starts_with(b"__"))
}

/// Options of [`rebase`] and [`rebase_keep`].
#[derive(Clone, Debug)]
pub struct RebaseOptions {
    /// Keys never dropped. Default: [`is_protected_default`].
    pub protected: Protected,
    /// How many times to plan again when a writer moves the branch
    /// meanwhile before reporting [`RebaseStatus::Raced`] (at least 1).
    /// Default: 3.
    pub max_attempts: u32,
    /// The new root commit's message. Default: `"gc: rebase"`.
    pub message: String,
    /// Extra metadata for the new root commit (a rebase also records
    /// [`REBASED_FROM`]).
    pub metadata: BTreeMap<String, String>,
    /// After a [`rebase`], forget the access entries of the dropped keys
    /// (unless touched since), so metadata does not grow with dropped
    /// keys. Best effort: a failure here does not fail the rebase.
    /// Default: true.
    pub forget_dropped: bool,
    /// Called as the rebase plans and writes (see [`GcPhase`]). Default:
    /// nothing.
    pub progress: Progress,
}

impl Default for RebaseOptions {
    fn default() -> Self {
        RebaseOptions {
            protected: Protected::default(),
            max_attempts: 3,
            message: "gc: rebase".to_string(),
            metadata: BTreeMap::new(),
            forget_dropped: true,
            progress: Progress::default(),
        }
    }
}

/// What a rebase did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebaseStatus {
    /// The branch holds at most the high water: nothing to do.
    BelowHighWater,
    /// Above the high water, but every key is protected (or empty):
    /// dropping nothing would not help, so nothing was written.
    NothingDroppable,
    /// The branch now points at a fresh root commit of the survivors.
    Rebased,
    /// Every attempt lost the compare-and-swap to another writer; the
    /// branch holds that writer's commit, untouched.
    Raced,
}

/// The report of [`rebase`] or [`rebase_keep`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebaseReport {
    /// What happened.
    pub status: RebaseStatus,
    /// The head the rebase planned from last (the head it replaced, if it
    /// rebased).
    pub previous: ObjectId,
    /// The new root commit, if it rebased.
    pub commit: Option<ObjectId>,
    /// The dropped keys: coldest first for [`rebase`], in key order for
    /// [`rebase_keep`]. Empty unless it rebased.
    pub dropped: Vec<Vec<u8>>,
    /// The total value bytes of the dropped keys.
    pub dropped_bytes: u64,
    /// How many keys the branch holds now.
    pub kept: u64,
    /// The branch's value bytes before.
    pub bytes_before: u64,
    /// The branch's value bytes now.
    pub bytes_after: u64,
    /// True if the branch now holds at most the low water. False after a
    /// rebase when protected keys alone hold more than the low water (every
    /// unprotected key was dropped and that was not enough), and when no
    /// rebase was needed between the two marks. Always true for
    /// [`rebase_keep`].
    pub reached_low: bool,
    /// How many plans were made (more than 1 after a lost race).
    pub attempts: u32,
}

impl RebaseReport {
    /// True if the branch was moved to a new root commit.
    pub fn performed(&self) -> bool {
        self.status == RebaseStatus::Rebased
    }
}

/// What can make a rebase fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebaseError {
    /// The branch does not exist.
    #[error("branch {0} does not exist")]
    UnknownBranch(String),
    /// Reading access recency failed.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The branch name is invalid or the store failed.
    #[error(transparent)]
    Core(#[from] kvgit_core::Error),
}

/// The branch move a rebase asks for, handed to the mover of
/// [`rebase_with`] and [`rebase_keep_with`] while the rebase holds
/// [`Repo::write_fence`].
#[derive(Clone, Copy, Debug)]
pub struct RebaseMove<'a> {
    /// The branch (a short name such as `main`).
    pub branch: &'a str,
    /// Its full ref name (`heads/main`).
    pub ref_name: &'a str,
    /// The head the rebase planned from: the move must compare-and-swap
    /// from it and never overwrite another value.
    pub from: ObjectId,
    /// The new root commit, written with its tree.
    pub to: ObjectId,
}

/// The mover of [`rebase`] and [`rebase_keep`]: a plain compare-and-swap
/// with the durability barrier ([`Repo::move_ref`]).
fn cas_mover(repo: &Repo) -> impl FnMut(&RebaseMove<'_>) -> Result<CasOutcome, RebaseError> + '_ {
    |m| Ok(repo.move_ref(m.ref_name, Some(&m.from), Some(&m.to))?)
}

/// High/low-water rebase of branch `branch` (a short name such as `main`).
///
/// If the head holds more value bytes than `watermarks.high()`, drops the
/// coldest unprotected keys until it holds at most `watermarks.low()`, and
/// commits the survivors as a fresh root commit. Coldest means least
/// recent tick in `access` (a key never touched has tick 0); among equal
/// ticks the largest value goes first, then the smallest key, so the choice
/// is deterministic. A protected key (see [`RebaseOptions::protected`]) is
/// never dropped, even if the low water cannot be reached without it.
///
/// Takes [`Repo::write_fence`] while it writes, so it must not be called by
/// a thread that holds it already.
pub fn rebase(
    repo: &Repo,
    branch: &str,
    watermarks: &Watermarks,
    access: &AccessTracker,
    options: &RebaseOptions,
) -> Result<RebaseReport, RebaseError> {
    rebase_with(repo, branch, watermarks, access, options, cas_mover(repo))
}

/// [`rebase`], with the branch moved by `mover` instead of a plain
/// compare-and-swap. The mover is called under [`Repo::write_fence`] (it
/// must not take it again) once the new root commit is written; it must
/// move the ref only from [`RebaseMove::from`] and report what the swap
/// did ([`CasOutcome::Mismatch`]: the rebase plans again on the new
/// head). An error from the mover, such as a refusal, ends the rebase with
/// that error and the branch untouched.
pub fn rebase_with<E, M>(
    repo: &Repo,
    branch: &str,
    watermarks: &Watermarks,
    access: &AccessTracker,
    options: &RebaseOptions,
    mover: M,
) -> Result<RebaseReport, E>
where
    E: From<RebaseError>,
    M: FnMut(&RebaseMove<'_>) -> Result<CasOutcome, E>,
{
    let plan = |head| plan_coldest(repo, branch, head, watermarks, access, options);
    let low = Some(watermarks.low());
    let (report, dropped_ticks) = attempt(repo, branch, options, low, plan, mover)?;
    if report.performed() && options.forget_dropped {
        // Best effort (see `RebaseOptions::forget_dropped`): the branch has
        // moved, and a stale entry only costs a little metadata. A key
        // planned at tick 0 had no entry then, and one made since is a
        // touch since, which `forget` keeps: it is left out, which saves a
        // metadata read per never-touched key.
        let _ = access.forget(
            branch,
            report
                .dropped
                .iter()
                .zip(&dropped_ticks)
                .filter(|(_, &t)| t > 0)
                .map(|(k, &t)| (k.as_slice(), t)),
        );
    }
    Ok(report)
}

/// Explicit rebase of branch `branch`: commits exactly the keys for which
/// `keep` returns true, plus the protected ones, as a fresh root commit
/// (even if that drops nothing: the history is still cut). To keep a set,
/// pass `|k| set.contains(k)`. Races and the write fence as in [`rebase`].
pub fn rebase_keep<F>(
    repo: &Repo,
    branch: &str,
    keep: F,
    options: &RebaseOptions,
) -> Result<RebaseReport, RebaseError>
where
    F: Fn(&[u8]) -> bool,
{
    rebase_keep_with(repo, branch, keep, options, cas_mover(repo))
}

/// [`rebase_keep`], with the branch moved by `mover` (see
/// [`rebase_with`]).
pub fn rebase_keep_with<F, E, M>(
    repo: &Repo,
    branch: &str,
    keep: F,
    options: &RebaseOptions,
    mover: M,
) -> Result<RebaseReport, E>
where
    F: Fn(&[u8]) -> bool,
    E: From<RebaseError>,
    M: FnMut(&RebaseMove<'_>) -> Result<CasOutcome, E>,
{
    let plan = |head| plan_keep(repo, head, &keep, options).map(Planned::Drop);
    let (report, _) = attempt(repo, branch, options, None, plan, mover)?;
    Ok(report)
}

/// The attempt loop shared by both rebases: read the head, plan, write
/// under the fence; plan again if the branch moved. Returns the report and
/// the dropped keys' ticks as planned. `low`: the low water, if any.
fn attempt<P, E, M>(
    repo: &Repo,
    branch: &str,
    options: &RebaseOptions,
    low: Option<u64>,
    mut plan: P,
    mut mover: M,
) -> Result<(RebaseReport, Vec<u64>), E>
where
    P: FnMut(ObjectId) -> Result<Planned, RebaseError>,
    E: From<RebaseError>,
    M: FnMut(&RebaseMove<'_>) -> Result<CasOutcome, E>,
{
    let ref_name = refs::branch_ref(branch).map_err(RebaseError::from)?;
    #[cfg(feature = "tracing")]
    let _span = tracing::info_span!("kvgit.rebase", branch).entered();
    let attempts = options.max_attempts.max(1);
    let reached_low = |bytes: u64| low.is_none_or(|low| bytes <= low);
    // The head planned from last, and its usage (zero if its objects
    // vanished under a sweep before it could be measured).
    let mut last = (None, Usage::default());
    for attempt in 1..=attempts {
        let Some(head) = repo.get_ref(&ref_name).map_err(RebaseError::from)? else {
            return Err(RebaseError::UnknownBranch(branch.to_string()).into());
        };
        last = (Some(head), Usage::default());
        options.progress.report(GcPhase::Plan, u64::from(attempt));
        let plan = match plan(head) {
            Ok(Planned::Drop(plan)) => plan,
            Ok(Planned::Skip(status, usage)) => {
                let report = RebaseReport {
                    status,
                    previous: head,
                    commit: None,
                    dropped: Vec::new(),
                    dropped_bytes: 0,
                    kept: usage.keys,
                    bytes_before: usage.value_bytes,
                    bytes_after: usage.value_bytes,
                    reached_low: reached_low(usage.value_bytes),
                    attempts: attempt,
                };
                return Ok((report, Vec::new()));
            }
            // Planning runs without the fence, so a sweep may delete the
            // objects of a head that was replaced after we read the ref:
            // that is a lost race, not an error.
            Err(_) if moved(repo, &ref_name, &head)? => continue,
            Err(e) => return Err(e.into()),
        };
        last.1 = plan.usage();
        let target = (branch, ref_name.as_str());
        options
            .progress
            .report(GcPhase::Write, plan.dropped.len() as u64);
        #[cfg(feature = "tracing")]
        tracing::debug!(
            attempt,
            dropped = plan.dropped.len(),
            "rebase: writing survivors"
        );
        let Some((commit, tree)) = write_survivors(repo, target, &plan, options, &mut mover)?
        else {
            continue;
        };
        let report = RebaseReport {
            status: RebaseStatus::Rebased,
            previous: head,
            commit: Some(commit),
            dropped_bytes: plan.tree.value_bytes().saturating_sub(tree.value_bytes()),
            dropped: plan.dropped,
            kept: tree.len(),
            bytes_before: plan.tree.value_bytes(),
            bytes_after: tree.value_bytes(),
            reached_low: reached_low(tree.value_bytes()),
            attempts: attempt,
        };
        options
            .progress
            .report(GcPhase::Done, report.dropped.len() as u64);
        return Ok((report, plan.dropped_ticks));
    }
    // Every attempt lost: report the head planned from last. What the
    // branch holds now is another writer's commit, left alone.
    let (previous, usage) = last;
    Ok((
        RebaseReport {
            status: RebaseStatus::Raced,
            previous: previous.expect("max_attempts.max(1) attempts read the head"),
            commit: None,
            dropped: Vec::new(),
            dropped_bytes: 0,
            kept: usage.keys,
            bytes_before: usage.value_bytes,
            bytes_after: usage.value_bytes,
            reached_low: false,
            attempts,
        },
        Vec::new(),
    ))
}

/// What a rebase will do to one head.
struct Plan {
    head: ObjectId,
    tree: Tree,
    /// The keys to drop (in report order).
    dropped: Vec<Vec<u8>>,
    /// Their ticks when planned (for `forget`; empty for `rebase_keep`).
    dropped_ticks: Vec<u64>,
    /// The indexes of `dropped` in key order; `None` when `dropped` is in
    /// key order already.
    by_key: Option<Vec<usize>>,
}

impl Plan {
    fn usage(&self) -> Usage {
        Usage {
            keys: self.tree.len(),
            value_bytes: self.tree.value_bytes(),
        }
    }

    /// The dropped keys in key order.
    fn dropped_in_key_order(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let n = self.dropped.len();
        (0..n).map(move |i| {
            let at = self.by_key.as_ref().map_or(i, |order| order[i]);
            self.dropped[at].as_slice()
        })
    }
}

enum Planned {
    Skip(RebaseStatus, Usage),
    Drop(Plan),
}

/// The order in which keys are dropped, coldest first: least recent tick,
/// then largest value (then smallest key: the scan's own order).
type Group = (u64, Reverse<u64>);

/// The ticks of one branch's keys, read in key order alongside a scan of
/// its tree (both sorted by key): a key never touched has tick 0.
struct TickCursor<'t> {
    ticks: std::iter::Peekable<std::slice::Iter<'t, (Vec<u8>, u64)>>,
}

impl<'t> TickCursor<'t> {
    fn new(ticks: &'t [(Vec<u8>, u64)]) -> Self {
        TickCursor {
            ticks: ticks.iter().peekable(),
        }
    }

    /// The tick of `key`; keys must come in increasing order.
    fn tick(&mut self, key: &[u8]) -> u64 {
        while self.ticks.next_if(|(k, _)| k.as_slice() < key).is_some() {}
        self.ticks
            .next_if(|(k, _)| k.as_slice() == key)
            .map_or(0, |(_, t)| *t)
    }
}

/// Plans a water-mark rebase in two streaming scans of the head's tree,
/// never holding its entries: the first counts the droppable keys by
/// [`Group`] (one counter per distinct tick and value length, so at most
/// one per touched key plus one per value length), which fixes how many
/// keys of each group go (whole groups in order, then the first keys of
/// the last group); the second picks those keys and places each at its
/// rank in the report, so no sort runs.
fn plan_coldest(
    repo: &Repo,
    branch: &str,
    head: ObjectId,
    watermarks: &Watermarks,
    access: &AccessTracker,
    options: &RebaseOptions,
) -> Result<Planned, RebaseError> {
    let tree = repo.tree(repo.commit_ref(&head)?.root)?;
    let usage = Usage {
        keys: tree.len(),
        value_bytes: tree.value_bytes(),
    };
    if !watermarks.exceeded(&usage) {
        return Ok(Planned::Skip(RebaseStatus::BelowHighWater, usage));
    }
    let ticks = access.ticks(branch)?;
    let protected = &options.protected;

    let mut groups: BTreeMap<Group, u64> = BTreeMap::new();
    let mut cursor = TickCursor::new(&ticks);
    repo.for_each_entry(&tree, |key, value| -> Result<(), RebaseError> {
        if !protected.is_protected(key) {
            let group = (cursor.tick(key), Reverse(value.len()));
            *groups.entry(group).or_insert(0) += 1;
        }
        Ok(())
    })?;

    // Whole groups, coldest first, until the low water is reached; the
    // last group taken may be taken in part. `slots`: each group taken,
    // with the report ranks of its keys (next, end).
    let mut total = tree.value_bytes();
    let mut freed = 0u64;
    let mut rank = 0usize;
    let mut slots: BTreeMap<Group, (usize, usize)> = BTreeMap::new();
    for (group, count) in groups {
        if total <= watermarks.low() {
            break;
        }
        let len = group.1 .0;
        let take = match len {
            // Dropping them frees nothing: the next key decides again.
            0 => count,
            _ => count.min((total - watermarks.low()).div_ceil(len)),
        };
        total = total.saturating_sub(take * len);
        freed += take * len;
        let take = usize::try_from(take).expect("a count of keys held in memory");
        slots.insert(group, (rank, rank + take));
        rank += take;
    }
    // Zero-length values free nothing: dropping only those is no rebase.
    if freed == 0 {
        return Ok(Planned::Skip(RebaseStatus::NothingDroppable, usage));
    }

    let mut dropped = vec![Vec::new(); rank];
    let mut dropped_ticks = vec![0; rank];
    let mut by_key = Vec::with_capacity(rank);
    let mut cursor = TickCursor::new(&ticks);
    repo.for_each_entry(&tree, |key, value| -> Result<(), RebaseError> {
        if protected.is_protected(key) {
            return Ok(());
        }
        let tick = cursor.tick(key);
        if let Some((next, end)) = slots.get_mut(&(tick, Reverse(value.len()))) {
            if next < end {
                dropped[*next] = key.to_vec();
                dropped_ticks[*next] = tick;
                by_key.push(*next);
                *next += 1;
            }
        }
        Ok(())
    })?;
    if by_key.len() != rank {
        // The tree is immutable: a second scan sees what the first saw.
        return Err(
            kvgit_core::Error::corrupt(tree.root(), "two scans of the same tree disagree").into(),
        );
    }
    Ok(Planned::Drop(Plan {
        head,
        tree,
        dropped,
        dropped_ticks,
        by_key: Some(by_key),
    }))
}

fn plan_keep<F>(
    repo: &Repo,
    head: ObjectId,
    keep: &F,
    options: &RebaseOptions,
) -> Result<Plan, RebaseError>
where
    F: Fn(&[u8]) -> bool,
{
    let tree = repo.tree(repo.commit_ref(&head)?.root)?;
    let mut dropped = Vec::new();
    repo.for_each_entry(&tree, |key, _| -> Result<(), RebaseError> {
        if !(keep(key) || options.protected.is_protected(key)) {
            dropped.push(key.to_vec());
        }
        Ok(())
    })?;
    Ok(Plan {
        head,
        tree,
        dropped,
        dropped_ticks: Vec::new(),
        by_key: None,
    })
}

/// Under the write fence: if the branch still holds the planned head,
/// writes the survivors' tree and a root commit and has `mover` move the
/// branch to it. `None` if the branch had moved (before or at the swap).
fn write_survivors<E, M>(
    repo: &Repo,
    (branch, ref_name): (&str, &str),
    plan: &Plan,
    options: &RebaseOptions,
    mover: &mut M,
) -> Result<Option<(ObjectId, Tree)>, E>
where
    E: From<RebaseError>,
    M: FnMut(&RebaseMove<'_>) -> Result<CasOutcome, E>,
{
    let _fence = repo.write_fence();
    let (commit, tree) = match write_root(repo, ref_name, plan, options) {
        Ok(Some(written)) => written,
        Ok(None) => return Ok(None),
        Err(e) => return Err(RebaseError::from(e).into()),
    };
    let request = RebaseMove {
        branch,
        ref_name,
        from: plan.head,
        to: commit,
    };
    match mover(&request)? {
        CasOutcome::Swapped => Ok(Some((commit, tree))),
        CasOutcome::Mismatch { .. } => Ok(None),
    }
}

/// Under the write fence: the survivors' tree and its root commit, if the
/// branch still holds the planned head.
fn write_root(
    repo: &Repo,
    ref_name: &str,
    plan: &Plan,
    options: &RebaseOptions,
) -> Result<Option<(ObjectId, Tree)>, kvgit_core::Error> {
    // Checked under the fence, the head is reachable, so no sweep can have
    // deleted any of its objects: the edit below reads a complete tree.
    if repo.get_ref(ref_name)? != Some(plan.head) {
        return Ok(None);
    }
    let tree = survivors_tree(repo, plan)?;
    let mut metadata = options.metadata.clone();
    metadata.insert(REBASED_FROM.to_string(), plan.head.to_hex());
    let spec = CommitSpec {
        parents: Vec::new(),
        message: options.message.clone(),
        metadata,
        time_micros: None,
    };
    let commit = repo.write_commit(&tree, &spec)?;
    Ok(Some((commit, tree)))
}

fn moved(repo: &Repo, ref_name: &str, head: &ObjectId) -> Result<bool, RebaseError> {
    Ok(repo.get_ref(ref_name)?.as_ref() != Some(head))
}

/// Below this share of the keys dropped (one in [`EDIT_SHARE`]), the
/// survivors' tree is the head's tree with the dropped keys deleted,
/// sharing every untouched subtree; above it, most leaves change anyway and
/// a bulk build from a scan of the survivors writes the same tree for less.
const EDIT_SHARE: u64 = 32;

/// The survivors' tree, written: the planned head's tree without the
/// dropped keys. Either way it is the tree a build of the survivors gives
/// (the tree is history-independent); stored values are moved as they are,
/// so no blob is reloaded or rewritten.
fn survivors_tree(repo: &Repo, plan: &Plan) -> Result<Tree, kvgit_core::Error> {
    let dropped = plan.dropped.len() as u64;
    if dropped.saturating_mul(EDIT_SHARE) <= plan.tree.len() {
        let deletes = plan.dropped_in_key_order().map(|k| (k.to_vec(), None));
        return repo.apply(&plan.tree, deletes);
    }
    let mut builder = repo.tree_builder();
    let mut drop = plan.dropped_in_key_order().peekable();
    repo.for_each_entry(&plan.tree, |key, value| {
        // Both in key order: the scan meets every dropped key.
        if drop.next_if(|d| *d == key).is_some() {
            return Ok(());
        }
        builder.push_stored(key, value)
    })?;
    builder.finish()
}
