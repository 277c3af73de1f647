//! The unreachable-object sweep: mark everything reachable from every
//! ref, delete the rest.
//!
//! # Marking
//!
//! From every ref (branches and tags): the commit, its whole history
//! (parents, recursively), each commit's tree (every node) and every blob
//! its leaves refer to. Each id is marked once, in one `HashSet` of ids;
//! a commit or node already marked is skipped with everything below it,
//! which is what makes shared history and shared subtrees cost nothing
//! the second time: marking costs O(distinct reachable objects), whatever
//! the number of branches. Nodes are read from the node cache when they
//! are there and otherwise decoded straight from the backend without
//! entering the cache (a sweep would flush it); blobs are marked by id
//! without being read. Memory: the id set (about 50 bytes per reachable
//! object) and, while deleting, the ids of the garbage.
//!
//! # The fence protocol (embedded store)
//!
//! Objects are content-addressed, so a writer can "write" an object that
//! already exists as garbage (the put is a no-op) and then point a ref at
//! it: a sweep must never delete anything an in-flight writer may refer
//! to. Writers therefore hold [`Repo::write_fence`] (shared) from their
//! first object write until their ref has moved (or they gave up), and a
//! sweep runs as follows:
//!
//! 1. Snapshot the refs and mark from them, **without** the fence
//!    (writers run on; this is the bulk of the work).
//! 2. Take [`Repo::gc_fence`] (exclusive): wait for in-flight writers to
//!    finish, keep new ones out.
//! 3. Re-read every ref and mark from those that changed (cheap: whatever
//!    step 1 marked is skipped).
//! 4. List every object and delete the unmarked ones, in batches, evicting
//!    each from the repo's caches.
//! 5. Release the fence.
//!
//! Under the fence no writer is between its first write and its ref move,
//! so every object a writer still needs is reachable from a ref in step 3.
//! After a sweep every object left refers only to objects that exist. One
//! sweep runs at a time in a process (step 1 reads without the fence, so
//! it must not race another sweep's deletes).
//!
//! # Shared backends: the grace period
//!
//! A fence in one process cannot see writers in another. On a store shared
//! by several processes (a backend whose [`Backend::shared`] answers, such
//! as PostgreSQL) the protection is an age-based grace period, measured by
//! the store's own clock:
//!
//! - an unmarked object is deleted only if it was last written more than
//!   `grace` ago, and writing an object that already exists refreshes its
//!   time (as git "freshens" objects): a writer in another process that has
//!   written its objects but not yet moved its ref keeps them, as long as it
//!   moves the ref within `grace` of writing them;
//! - every commit a ref held within the last `grace` (the store's ref log)
//!   is marked as a root too, so a snapshot or a transaction in another
//!   process based on a head that a rebase, reset or branch deletion has
//!   since moved away from keeps its objects for `grace` after the move;
//!   ref-log entries older than `grace` are forgotten by the sweep.
//!
//! So every transaction must finish within the grace period, and a sweep
//! frees an object at the earliest `grace` after it became garbage. A
//! grace period below the store's minimum ([`SharedStore::min_grace`]) is
//! refused with [`SweepError::GraceTooShort`].
//!
//! Two rules make a commit that breaks the contract fail instead of being
//! acknowledged onto missing objects. The commit's swap checks and locks
//! everything it refers to (see [`Backend::put_objects_and_cas`]): a
//! delete that went first makes it fail; a delete that comes later finds
//! the object refreshed (young) and keeps it. And the sweep keeps "an
//! object present refers only to objects present": it deletes top-down,
//! commits by height, then tree nodes by level, then blobs, each statement
//! holding objects of one rank only (none refers to another in it); when
//! an object is kept (young, or refreshed by a commit meanwhile), it marks
//! everything that object reaches, which is still undeleted below, and
//! drops it from the garbage; and it re-marks from the refs and the ref
//! log every quarter of the grace period, so no mark is stale by more.
//! Ordering needs each garbage commit's height and node's level: the
//! store gives kinds ([`SharedStore::object_kinds`]), and commits and nodes
//! (not blobs) are read once.
//!
//! The
//! default, [`SweepOptions::grace`] `= None`, takes the backend's
//! ([`SharedStore::default_grace`]: one hour for PostgreSQL); the embedded
//! backends have no write times, rely on the fence alone, and refuse a
//! non-zero grace period with [`SweepError::GraceUnsupported`] rather than
//! silently ignore it. Roots from the ref log are marked leniently: an
//! object already swept under them (by an earlier sweep with a shorter
//! grace period) is skipped, not an error.
//!
//! [`Backend::shared`]: kvgit_core::Backend::shared
//! [`Backend::put_objects_and_cas`]: kvgit_core::Backend::put_objects_and_cas
//! [`SharedStore::default_grace`]: kvgit_core::SharedStore::default_grace
//! [`SharedStore::min_grace`]: kvgit_core::SharedStore::min_grace
//! [`SharedStore::object_kinds`]: kvgit_core::SharedStore::object_kinds

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvgit_core::cache::IdHasher;
use kvgit_core::object::{Kind, Node, ValueRef};
use kvgit_core::{Commit, Durability, Error as CoreError, ObjectId, Repo, SharedStore};
use parking_lot::Mutex;

use crate::progress::{GcPhase, Progress};

/// Options of [`sweep`].
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// How many objects one `delete_objects` call removes. Default: 4096.
    pub batch_size: usize,
    /// Count the garbage without deleting it. Default: false.
    pub dry_run: bool,
    /// The grace period on a store shared by several processes (see the
    /// module docs): unmarked objects written within it, and commits refs
    /// held within it, are kept. `None` (the default): the backend's own
    /// default, none for the embedded backends. A non-zero period on a
    /// backend without write times is refused.
    pub grace: Option<Duration>,
    /// Called as the sweep goes through its phases (mark, fence, list,
    /// delete). Default: nothing.
    pub progress: Progress,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            batch_size: 4096,
            dry_run: false,
            grace: None,
            progress: Progress::default(),
        }
    }
}

/// What a sweep found and freed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// How many refs were marked from (at the final re-read).
    pub refs: usize,
    /// How many refs changed between the snapshot and the fence (marked
    /// again under the fence).
    pub remarked_refs: usize,
    /// Reachable objects present in the store.
    pub objects_marked: u64,
    /// Their total size in bytes.
    pub bytes_marked: u64,
    /// Unreachable objects found: on a real sweep, those freed plus those
    /// kept young; on a dry run, what a sweep without a grace period would
    /// free.
    pub objects_unreachable: u64,
    /// Their total size in bytes.
    pub bytes_unreachable: u64,
    /// Unreachable objects deleted (none on a dry run).
    pub objects_freed: u64,
    /// Their total size in bytes.
    pub bytes_freed: u64,
    /// Unreachable objects kept because they were written within the grace
    /// period, or are reached from one that was (shared stores only; a
    /// writer in another process may be about to use them).
    pub objects_kept_young: u64,
    /// Their total size in bytes.
    pub bytes_kept_young: u64,
    /// Commits marked from the ref log (shared stores only): what refs held
    /// within the grace period.
    pub ref_log_roots: usize,
    /// `Backend::size_on_disk` before the sweep (the sled directory's size;
    /// 0 in memory).
    pub size_before: u64,
    /// `Backend::size_on_disk` after the sweep and a flush. A log-structured
    /// store such as sled reclaims the space of deleted objects gradually,
    /// so this may shrink less than `bytes_freed` at first.
    pub size_after: u64,
    /// Time spent marking without the fence (step 1).
    pub mark_time: Duration,
    /// Time the fence was held (steps 3 to 5): how long writers waited.
    pub fenced_time: Duration,
}

/// What can make a sweep fail. A sweep that fails deletes nothing it has
/// not finished deciding about: marking errors abort before any delete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// A non-zero [`SweepOptions::grace`] was asked for on a backend owned
    /// by one process, which keeps no object write times.
    #[error(
        "a grace period of {0:?} needs object write times, which this store (owned by one \
         process) does not keep; its in-process fence already protects every writer"
    )]
    GraceUnsupported(Duration),
    /// [`SweepOptions::grace`] is below the shared store's minimum
    /// ([`SharedStore::min_grace`]): a commit in another process could
    /// still be on its way to referring to what it would delete.
    #[error(
        "a grace period of {} is below this store's minimum of {}: a shorter one could \
         delete objects that commits in other processes are about to refer to",
        seconds(.grace),
        seconds(.min)
    )]
    GraceTooShort {
        /// The grace period asked for.
        grace: Duration,
        /// The store's minimum.
        min: Duration,
    },
    /// A reachable object is missing or corrupt, or the store failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// `d` in seconds, for messages ("300 s", "0.5 s").
fn seconds(d: &Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// One sweep at a time per process: marking without the fence must not
/// race another sweep's deletes.
static SWEEPS: Mutex<()> = Mutex::new(());

/// Marks everything reachable from every ref and deletes the rest (see the
/// module docs for the protocol that keeps in-flight writers safe). Must
/// not be called by a thread holding [`Repo::write_fence`]: it would wait
/// for itself.
pub fn sweep(repo: &Repo, options: &SweepOptions) -> Result<SweepReport, SweepError> {
    let backend = repo.backend();
    let shared = backend.shared();
    let grace = match (shared, options.grace) {
        (Some(shared), grace) => {
            let grace = grace.unwrap_or_else(|| shared.default_grace());
            let min = shared.min_grace();
            if grace < min {
                return Err(SweepError::GraceTooShort { grace, min });
            }
            Some(grace)
        }
        (None, Some(grace)) if !grace.is_zero() => {
            return Err(SweepError::GraceUnsupported(grace));
        }
        (None, _) => None,
    };
    let _one_at_a_time = SWEEPS.lock();
    #[cfg(feature = "tracing")]
    let _span = tracing::info_span!("kvgit.sweep", dry_run = options.dry_run).entered();
    let progress = &options.progress;
    let mut report = SweepReport {
        size_before: backend.size_on_disk()?,
        ..SweepReport::default()
    };
    let mut marker = Marker::new(repo, progress);

    // 1. Mark from a snapshot of the refs, writers running.
    let started = Instant::now();
    let snapshot = backend.list_refs("")?;
    for (_, head) in &snapshot {
        marker.mark_commit(*head)?;
    }
    // Pinned snapshots (a transaction's base, a checkout) count as roots.
    for head in repo.pinned() {
        marker.mark_commit(head)?;
    }
    // On a shared store, so does whatever a ref held within the grace
    // period: another process may still build on it.
    if let (Some(shared), Some(grace)) = (shared, grace) {
        for head in shared.recent_ref_targets(grace)? {
            report.ref_log_roots += 1;
            marker.mark_commit_lenient(head)?;
        }
    }
    report.mark_time = started.elapsed();

    // 2. Wait for in-flight writers; keep new ones out.
    progress.report(GcPhase::Fence, marker.marked.len() as u64);
    let fence = repo.gc_fence();
    let fenced = Instant::now();

    // 3. Mark from every ref that moved meanwhile.
    let refs = backend.list_refs("")?;
    report.refs = refs.len();
    for (_, head) in &refs {
        if !marker.is_marked(head) {
            report.remarked_refs += 1;
            marker.mark_commit(*head)?;
        }
    }
    // Pins are taken under the write fence with the read of their ref, so
    // under the exclusive fence this list is complete.
    for head in repo.pinned() {
        if !marker.is_marked(&head) {
            marker.mark_commit(head)?;
        }
    }

    // 4. Delete what is not marked.
    let mut garbage = Vec::new();
    let mut listed = 0u64;
    progress.report(GcPhase::List, 0);
    backend.for_each_object(&mut |id, size| {
        listed += 1;
        progress.tick(GcPhase::List, listed);
        if marker.is_marked(&id) {
            report.objects_marked += 1;
            report.bytes_marked += size;
        } else {
            report.objects_unreachable += 1;
            report.bytes_unreachable += size;
            garbage.push((id, size));
        }
        Ok(true)
    })?;
    if !options.dry_run {
        progress.report(GcPhase::Delete, 0);
        match (shared, grace) {
            (Some(shared), Some(grace)) => {
                delete_shared(
                    repo,
                    shared,
                    grace,
                    options,
                    &mut marker,
                    garbage,
                    &mut report,
                )?;
                shared.prune_ref_log(grace)?;
                progress.report(GcPhase::Delete, report.objects_freed);
            }
            _ => {
                for batch in garbage.chunks(options.batch_size.max(1)) {
                    let ids: Vec<ObjectId> = batch.iter().map(|(id, _)| *id).collect();
                    backend.delete_objects(&ids)?;
                    for (id, size) in batch {
                        report.objects_freed += 1;
                        report.bytes_freed += size;
                        repo.evict_cached(id);
                    }
                    progress.report(GcPhase::Delete, report.objects_freed);
                }
            }
        }
    }

    // 5. Release.
    drop(fence);
    report.fenced_time = fenced.elapsed();
    if !options.dry_run {
        backend.flush(Durability::Eventual)?;
    }
    report.size_after = backend.size_on_disk()?;
    #[cfg(feature = "tracing")]
    tracing::info!(
        freed = report.objects_freed,
        bytes_freed = report.bytes_freed,
        marked = report.objects_marked,
        "sweep done"
    );
    progress.report(GcPhase::Done, report.objects_freed);
    Ok(report)
}

type IdSet = HashSet<ObjectId, BuildHasherDefault<IdHasher>>;

/// Where an unreachable object comes in a shared store's deletion order:
/// greater first. Whatever an object refers to ranks below it (a commit
/// refers to lower commits and to nodes, a node to lower nodes and to
/// blobs), so a deletion never leaves a present object referring to a
/// deleted one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Blob,
    Node(u8),
    Commit(u64),
    /// Undecodable: nothing sound can refer to it.
    Damaged,
}

/// The deletion of `garbage` on a store shared by several processes, top
/// down (see the module docs): groups of one [`Rank`], each group in
/// statements of at most `batch_size` objects, each statement deleting
/// only those last written more than `grace` ago. An object kept (young,
/// or refreshed by a commit that refers to it) has everything it reaches
/// marked, and so kept; the refs and the ref log are marked again as the
/// deletion goes on, so no mark is older than a quarter of `grace`.
fn delete_shared(
    repo: &Repo,
    shared: &dyn SharedStore,
    grace: Duration,
    options: &SweepOptions,
    marker: &mut Marker<'_>,
    garbage: Vec<(ObjectId, u64)>,
    report: &mut SweepReport,
) -> Result<(), SweepError> {
    let batch_size = options.batch_size.max(1);
    let mut ranked: Vec<(Rank, ObjectId, u64)> = Vec::with_capacity(garbage.len());
    for chunk in garbage.chunks(batch_size) {
        let ids: Vec<ObjectId> = chunk.iter().map(|(id, _)| *id).collect();
        let kinds: std::collections::HashMap<ObjectId, u8> =
            shared.object_kinds(&ids)?.into_iter().collect();
        for (id, size) in chunk {
            let rank = match kinds.get(id).copied().and_then(Kind::from_byte) {
                // Gone already (another sweep): nothing to order.
                None if !kinds.contains_key(id) => Rank::Blob,
                Some(Kind::Blob) => Rank::Blob,
                Some(Kind::Commit) => match marker.repo.backend().get_object(id)? {
                    None => Rank::Blob,
                    Some(bytes) => {
                        Commit::decode(id, &bytes).map_or(Rank::Damaged, |c| Rank::Commit(c.height))
                    }
                },
                Some(Kind::Leaf | Kind::Internal) => match marker.repo.backend().get_object(id)? {
                    None => Rank::Blob,
                    Some(bytes) => {
                        Node::decode_vec(id, bytes).map_or(Rank::Damaged, |n| Rank::Node(n.level()))
                    }
                },
                None => Rank::Damaged,
            };
            ranked.push((rank, *id, *size));
        }
    }
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

    let mut marked_at = Instant::now();
    let mut start = 0;
    while start < ranked.len() {
        let rank = ranked[start].0;
        let group = ranked[start..].iter().take_while(|r| r.0 == rank).count();
        let end = (start + batch_size).min(start + group);
        if marked_at.elapsed() > grace / 4 {
            marker.remark_from_refs(shared, grace)?;
            marked_at = Instant::now();
        }
        let batch = &ranked[start..end];
        let ids: Vec<ObjectId> = batch
            .iter()
            .filter(|(_, id, _)| !marker.is_marked(id))
            .map(|(_, id, _)| *id)
            .collect();
        let deleted: IdSet = shared
            .delete_objects_written_before(&ids, grace)?
            .into_iter()
            .collect();
        for (rank, id, size) in batch {
            if deleted.contains(id) {
                report.objects_freed += 1;
                report.bytes_freed += size;
                repo.evict_cached(id);
                continue;
            }
            report.objects_kept_young += 1;
            report.bytes_kept_young += size;
            // Kept: so is everything it refers to, below in the order.
            if !marker.is_marked(id) {
                match rank {
                    Rank::Commit(_) => marker.mark_commit_lenient(*id)?,
                    Rank::Node(_) => marker.mark_tree_lenient(*id)?,
                    Rank::Blob | Rank::Damaged => {
                        marker.marked.insert(*id);
                    }
                }
            }
        }
        start = end;
    }
    Ok(())
}

/// The mark phase's state: the ids marked so far.
struct Marker<'r> {
    repo: &'r Repo,
    progress: &'r Progress,
    marked: IdSet,
    nodes: Vec<ObjectId>,
    /// Missing objects are skipped, not errors (ref-log roots).
    lenient: bool,
}

impl<'r> Marker<'r> {
    fn new(repo: &'r Repo, progress: &'r Progress) -> Self {
        progress.report(GcPhase::Mark, 0);
        Marker {
            repo,
            progress,
            marked: IdSet::default(),
            nodes: Vec::new(),
            lenient: false,
        }
    }

    fn is_marked(&self, id: &ObjectId) -> bool {
        self.marked.contains(id)
    }

    /// Marks commit `head`, its history and their trees, skipping whatever
    /// is missing: for roots from the ref log, whose objects an earlier
    /// sweep with a shorter grace period may have freed. An unreadable
    /// (corrupt) object is still an error.
    fn mark_commit_lenient(&mut self, head: ObjectId) -> Result<(), CoreError> {
        self.lenient = true;
        let result = self.mark_commit(head);
        self.lenient = false;
        result
    }

    /// Like [`Marker::mark_commit_lenient`] for the tree rooted at `root`.
    fn mark_tree_lenient(&mut self, root: ObjectId) -> Result<(), CoreError> {
        self.lenient = true;
        let result = self.mark_tree(root);
        self.lenient = false;
        result
    }

    /// Marks from the refs and the ref log as they are now (what another
    /// process moved a ref to since the last mark).
    fn remark_from_refs(
        &mut self,
        shared: &dyn SharedStore,
        grace: Duration,
    ) -> Result<(), CoreError> {
        for (_, head) in self.repo.backend().list_refs("")? {
            if !self.is_marked(&head) {
                self.mark_commit_lenient(head)?;
            }
        }
        for head in shared.recent_ref_targets(grace)? {
            if !self.is_marked(&head) {
                self.mark_commit_lenient(head)?;
            }
        }
        Ok(())
    }

    /// Marks commit `head`, its history and their trees.
    fn mark_commit(&mut self, head: ObjectId) -> Result<(), CoreError> {
        let mut commits = vec![head];
        while let Some(id) = commits.pop() {
            if !self.marked.insert(id) {
                continue;
            }
            let commit = match self.load_commit(&id) {
                Err(CoreError::MissingObject(_)) if self.lenient => {
                    self.marked.remove(&id);
                    continue;
                }
                other => other?,
            };
            commits.extend(commit.parents.iter().filter(|p| !self.marked.contains(p)));
            self.mark_tree(commit.root)?;
        }
        Ok(())
    }

    /// Marks the tree rooted at `root`, skipping marked subtrees. A node is
    /// marked before its children are, so if marking fails half-way the
    /// sweep must stop (it does: errors abort it).
    fn mark_tree(&mut self, root: ObjectId) -> Result<(), CoreError> {
        self.nodes.push(root);
        while let Some(id) = self.nodes.pop() {
            if !self.marked.insert(id) {
                continue;
            }
            self.progress.tick(GcPhase::Mark, self.marked.len() as u64);
            let node = match self.load_node(&id) {
                Err(CoreError::MissingObject(_)) if self.lenient => {
                    self.marked.remove(&id);
                    continue;
                }
                other => other?,
            };
            if node.is_leaf() {
                for (_, value) in node.leaf_entries() {
                    if let ValueRef::Blob { id, .. } = value {
                        self.marked.insert(id);
                    }
                }
            } else {
                for child in node.children() {
                    if !self.marked.contains(&child.id) {
                        self.nodes.push(child.id);
                    }
                }
            }
        }
        Ok(())
    }

    fn load_commit(&self, id: &ObjectId) -> Result<Commit, CoreError> {
        let bytes = self.repo.object_bytes(id)?;
        Commit::decode(id, &bytes)
    }

    fn load_node(&self, id: &ObjectId) -> Result<Arc<Node>, CoreError> {
        if let Some(node) = self.repo.cache().get(id) {
            return Ok(node);
        }
        let bytes = self.repo.object_bytes(id)?;
        Ok(Arc::new(Node::decode_vec(id, bytes)?))
    }
}
