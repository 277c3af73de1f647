//! The receiving side of a transfer: it drives, asking the peer for what
//! the store lacks and checking everything before it is stored.
//!
//! 1. Commits: one request with the wanted heads and the store's own heads
//!    as haves; the peer answers with the commits between them.
//! 2. Trees, level by level from the new commits' roots: a node (or blob)
//!    is requested only if the store lacks it, so every subtree the store
//!    already holds, under any commit or none (a rebased store's fresh
//!    roots share their subtrees), is skipped. Each node is checked
//!    against its parent's entry for it.
//! 3. Storing, children before parents: blobs, then the leaves that need
//!    them, then internal nodes level by level, then commits oldest first,
//!    then the durability barrier. Only then does the caller move a ref.
//!
//! Because objects are stored after everything they refer to, an object
//! in the store always has its whole tree below it (the invariant the
//! "lacks" test in step 2 relies on), and a transfer cut at any point
//! leaves only complete subtrees behind: a rerun asks only for the rest.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use kvgit_core::object::{decode_blob, Node, ValueRef};
use kvgit_core::{Commit, ObjectId, Repo};

use crate::error::{Error, Result};
use crate::protocol::{Channel, Message, WireObject, MAX_IDS};
use crate::report::{Phase, Progress};

/// The most bytes written to the store in one call.
const STORE_BATCH_BYTES: usize = 8 << 20;

/// Leaves that need no blob are written in batches of this size, and at
/// the end of each frame.
const LEAF_BATCH_BYTES: usize = 256 << 10;

/// What a receive brought in.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Objects received and stored.
    pub(crate) objects: u64,
    /// Their bytes.
    pub(crate) bytes: u64,
    /// Commits stored whose parents were left out (`depth`).
    pub(crate) shallow: Vec<ObjectId>,
}

/// Receives what the store lacks of the history of `wants` (commits this
/// store need not hold yet) from the peer on `ch`, which answers requests
/// (a fetch's server, a push's client). `haves` are commits the store holds
/// with their whole history, told to the peer so that it leaves them out.
/// When this returns, everything the wants need is stored and durable.
pub(crate) fn receive(
    repo: &Repo,
    ch: &mut Channel,
    wants: &[ObjectId],
    haves: &[ObjectId],
    depth: Option<u32>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Received> {
    let mut r = Receiver {
        repo,
        ch,
        progress,
        received: Received::default(),
        seen: HashSet::new(),
        ready: StoreBatch::with_limit(LEAF_BATCH_BYTES),
    };
    let mut missing = Vec::new();
    for want in wants {
        if !repo.backend().has_object(want)? && !missing.contains(want) {
            missing.push(*want);
        }
    }
    if missing.is_empty() {
        return Ok(r.received);
    }
    let commits = r.commits(&missing, haves, depth)?;
    let mut roots = Vec::new();
    for (_, commit, _) in commits.values() {
        if r.seen.insert(commit.root) && !repo.backend().has_object(&commit.root)? {
            roots.push(commit.root);
        }
    }
    r.trees(roots)?;
    // Oldest first: a parent is stored before its children.
    let mut ordered: Vec<_> = commits.into_iter().collect();
    ordered.sort_by_key(|(id, (_, c, _))| (c.height, *id));
    let mut batch = StoreBatch::default();
    for (id, (bytes, _, _)) in ordered {
        batch.push(repo, id, bytes)?;
    }
    batch.finish(repo)?;
    repo.barrier()?;
    (r.progress)(&Progress {
        phase: Phase::Done,
        objects: r.received.objects,
        bytes: r.received.bytes,
    });
    Ok(r.received)
}

struct Receiver<'a> {
    repo: &'a Repo,
    ch: &'a mut Channel,
    progress: &'a mut dyn FnMut(&Progress),
    received: Received,
    /// Every id requested (or found present) in this transfer.
    seen: HashSet<ObjectId>,
    /// Objects ready to store (all they refer to is stored), written at
    /// the end of each frame at the latest, so that a transfer cut in the
    /// middle of a large answer keeps what arrived.
    ready: StoreBatch,
}

/// What a parent's entry says of a child node.
#[derive(Clone)]
struct Claim {
    level: u8,
    key: Vec<u8>,
    count: u64,
    bytes: u64,
}

type CommitMap = HashMap<ObjectId, (Vec<u8>, Commit, u32)>;

impl Receiver<'_> {
    /// Step 1: the commits, checked, with each one's depth from the wants.
    fn commits(
        &mut self,
        wants: &[ObjectId],
        haves: &[ObjectId],
        depth: Option<u32>,
    ) -> Result<CommitMap> {
        self.ch.send(&Message::WantCommits {
            wants: wants.to_vec(),
            haves: haves
                .iter()
                .take(crate::source::MAX_HAVES)
                .copied()
                .collect(),
            depth,
        })?;
        let mut got: HashMap<ObjectId, (Vec<u8>, Commit)> = HashMap::new();
        self.read_objects(Phase::Commits, &mut |_, obj| {
            let commit = Commit::decode(&obj.id, &obj.bytes)
                .map_err(|e| Error::bad_object(obj.id, format!("not a valid commit: {e}")))?;
            if got.insert(obj.id, (obj.bytes, commit)).is_some() {
                return Err(Error::protocol(format!("commit {} sent twice", obj.id)));
            }
            Ok(())
        })?;
        // Every wanted commit came, every parent is here, in the store or
        // past the depth, and nothing came that no want reaches.
        let mut out: CommitMap = HashMap::new();
        let mut stack: Vec<(ObjectId, u32)> = wants.iter().map(|w| (*w, 1)).collect();
        while let Some((id, d)) = stack.pop() {
            if let Some((_, _, seen_depth)) = out.get_mut(&id) {
                if *seen_depth <= d {
                    continue;
                }
                *seen_depth = d;
            } else {
                let (bytes, commit) = got.remove(&id).ok_or_else(|| {
                    Error::protocol(format!("the peer did not send wanted commit {id}"))
                })?;
                out.insert(id, (bytes, commit, d));
            }
            let parents = out[&id].1.parents.clone();
            for p in parents {
                if out.contains_key(&p) || got.contains_key(&p) {
                    stack.push((p, d + 1));
                } else if self.repo.backend().has_object(&p)? {
                    self.repo.read_commit(&p)?;
                } else if depth.is_some_and(|max| d >= max) {
                    self.received.shallow.push(id);
                } else {
                    return Err(Error::protocol(format!(
                        "the peer did not send commit {p}, a parent of {id}"
                    )));
                }
            }
        }
        if let Some(extra) = got.keys().next() {
            return Err(Error::protocol(format!(
                "the peer sent commit {extra}, which no wanted commit reaches"
            )));
        }
        self.received.shallow.sort();
        self.received.shallow.dedup();
        Ok(out)
    }

    /// Step 2 and most of step 3: the trees under `roots`.
    fn trees(&mut self, roots: Vec<ObjectId>) -> Result<()> {
        let mut queue: VecDeque<(ObjectId, Option<Claim>)> =
            roots.into_iter().map(|r| (r, None)).collect();
        // Internal nodes wait here until everything below them is stored.
        let mut held: BTreeMap<u8, Vec<(ObjectId, Vec<u8>)>> = BTreeMap::new();
        while !queue.is_empty() {
            let n = queue.len().min(MAX_IDS);
            let asked: HashMap<ObjectId, Option<Claim>> = queue.drain(..n).collect();
            let ids: Vec<ObjectId> = asked.keys().copied().collect();
            // Leaves waiting for their blobs; the others are stored as they
            // come, so a cut transfer keeps them.
            let mut leaves = Vec::new();
            let mut blobs: Vec<(ObjectId, u64)> = Vec::new();
            let mut next = Vec::new();
            self.request(&ids, Phase::Trees, &mut |this, obj| {
                let claim = asked
                    .get(&obj.id)
                    .expect("request() lets through only asked ids");
                let node = Node::decode(&obj.id, &obj.bytes).map_err(|e| {
                    Error::bad_object(obj.id, format!("not a valid tree node: {e}"))
                })?;
                check_claim(&obj.id, &node, claim.as_ref())?;
                if node.is_leaf() {
                    let mut waits = false;
                    for (_, value) in node.leaf_entries() {
                        if let ValueRef::Blob { id, len } = value {
                            if this.seen.insert(id) && !this.repo.backend().has_object(&id)? {
                                blobs.push((id, len));
                                waits = true;
                            }
                        }
                    }
                    if waits {
                        leaves.push((obj.id, obj.bytes));
                    } else {
                        this.ready.push(this.repo, obj.id, obj.bytes)?;
                    }
                } else {
                    for child in node.children() {
                        if this.seen.insert(child.id)
                            && !this.repo.backend().has_object(&child.id)?
                        {
                            next.push((
                                child.id,
                                Some(Claim {
                                    level: node.level() - 1,
                                    key: child.key.to_vec(),
                                    count: child.count,
                                    bytes: child.bytes,
                                }),
                            ));
                        }
                    }
                    held.entry(node.level())
                        .or_default()
                        .push((obj.id, obj.bytes));
                }
                Ok(())
            })?;
            queue.extend(next);
            // Blobs, then the leaves that refer to them.
            for chunk in blobs.chunks(MAX_IDS) {
                let lens: HashMap<ObjectId, u64> = chunk.iter().copied().collect();
                let ids: Vec<ObjectId> = chunk.iter().map(|(id, _)| *id).collect();
                let mut batch = StoreBatch::default();
                self.request(&ids, Phase::Blobs, &mut |this, obj| {
                    let value = decode_blob(&obj.id, &obj.bytes)
                        .map_err(|e| Error::bad_object(obj.id, format!("not a valid blob: {e}")))?;
                    if Some(&(value.len() as u64)) != lens.get(&obj.id) {
                        return Err(Error::bad_object(
                            obj.id,
                            "blob length differs from the leaf's reference",
                        ));
                    }
                    batch.push(this.repo, obj.id, obj.bytes)
                })?;
                batch.finish(self.repo)?;
            }
            let mut batch = StoreBatch::default();
            for (id, bytes) in leaves {
                batch.push(self.repo, id, bytes)?;
            }
            batch.finish(self.repo)?;
        }
        (self.progress)(&Progress {
            phase: Phase::Storing,
            objects: self.received.objects,
            bytes: self.received.bytes,
        });
        // Lowest level first: children before parents.
        let mut batch = StoreBatch::default();
        for (_, nodes) in held {
            for (id, bytes) in nodes {
                batch.push(self.repo, id, bytes)?;
            }
            batch.finish(self.repo)?;
            batch = StoreBatch::default();
        }
        Ok(())
    }

    /// Asks for `ids` and hands each object to `on_object`, checking that
    /// each was asked for, comes once, and that all came.
    fn request(
        &mut self,
        ids: &[ObjectId],
        phase: Phase,
        on_object: &mut dyn FnMut(&mut Self, WireObject) -> Result<()>,
    ) -> Result<()> {
        self.ch.send(&Message::WantObjects(ids.to_vec()))?;
        let mut pending: HashSet<ObjectId> = ids.iter().copied().collect();
        self.read_objects(phase, &mut |this, obj| {
            if !pending.remove(&obj.id) {
                return Err(Error::protocol(format!(
                    "the peer sent object {}, which was not asked for (or sent it twice)",
                    obj.id
                )));
            }
            on_object(this, obj)
        })?;
        if let Some(id) = pending.iter().next() {
            return Err(Error::protocol(format!(
                "the peer did not send requested object {id} ({} of {} missing)",
                pending.len(),
                ids.len()
            )));
        }
        Ok(())
    }

    /// Reads `Objects` batches until `ObjectsEnd`.
    fn read_objects(
        &mut self,
        phase: Phase,
        on_object: &mut dyn FnMut(&mut Self, WireObject) -> Result<()>,
    ) -> Result<()> {
        loop {
            match self.ch.recv()? {
                Message::Objects(objects) => {
                    for obj in objects {
                        self.received.objects += 1;
                        self.received.bytes += obj.bytes.len() as u64;
                        on_object(self, obj)?;
                    }
                    self.ready.write(self.repo)?;
                    (self.progress)(&Progress {
                        phase,
                        objects: self.received.objects,
                        bytes: self.received.bytes,
                    });
                }
                Message::ObjectsEnd => return Ok(()),
                other => {
                    return Err(Error::protocol(format!(
                        "expected objects, got {}",
                        other.name()
                    )))
                }
            }
        }
    }
}

/// Checks a node against what its parent's entry says of it (`None`: a
/// root, which must not be an internal node with a single child).
fn check_claim(id: &ObjectId, node: &Node, claim: Option<&Claim>) -> Result<()> {
    let Some(claim) = claim else {
        if !node.is_leaf() && node.len() < 2 {
            return Err(Error::bad_object(*id, "a root with a single child"));
        }
        return Ok(());
    };
    let mut wrong = Vec::new();
    if node.level() != claim.level {
        wrong.push(format!("level {} (expected {})", node.level(), claim.level));
    }
    if node.first_key() != Some(claim.key.as_slice()) {
        wrong.push("another first key".to_string());
    }
    if node.count() != claim.count {
        wrong.push(format!("{} keys (expected {})", node.count(), claim.count));
    }
    if node.value_bytes() != claim.bytes {
        wrong.push(format!(
            "{} value bytes (expected {})",
            node.value_bytes(),
            claim.bytes
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(Error::bad_object(
            *id,
            format!(
                "node does not match its parent's entry: it has {}",
                wrong.join(", ")
            ),
        ))
    }
}

/// Objects gathered into store writes of about [`STORE_BATCH_BYTES`].
struct StoreBatch {
    objects: Vec<(ObjectId, Vec<u8>)>,
    bytes: usize,
    limit: usize,
}

impl Default for StoreBatch {
    fn default() -> Self {
        StoreBatch::with_limit(STORE_BATCH_BYTES)
    }
}

impl StoreBatch {
    fn with_limit(limit: usize) -> Self {
        StoreBatch {
            objects: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    fn push(&mut self, repo: &Repo, id: ObjectId, bytes: Vec<u8>) -> Result<()> {
        self.bytes += bytes.len();
        self.objects.push((id, bytes));
        if self.bytes >= self.limit {
            self.write(repo)?;
        }
        Ok(())
    }

    fn write(&mut self, repo: &Repo) -> Result<()> {
        if !self.objects.is_empty() {
            repo.backend()
                .put_objects(std::mem::take(&mut self.objects))?;
            self.bytes = 0;
        }
        Ok(())
    }

    fn finish(mut self, repo: &Repo) -> Result<()> {
        self.write(repo)
    }
}
