//! [`Repo`]: a backend plus the shared node cache, and the commit protocol's
//! primitives (read and write objects, write a commit, move a ref).

use std::collections::BTreeMap;
use std::sync::Arc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::cache::NodeCache;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{self, Commit, Node, Value};
use crate::store::{Backend, CasOutcome, Durability, MemoryBackend};
use crate::tree::{Tree, Unwritten};

/// How many decoded commits [`Repo::commit_ref`] keeps.
const COMMIT_CACHE_ENTRIES: usize = 16 * 1024;

/// How many refs [`Repo::get_ref`] and [`Repo::head`] remember.
const REF_CACHE_ENTRIES: usize = 4096;

/// Options for a [`Repo`].
#[derive(Clone, Debug)]
pub struct RepoOptions {
    /// Byte budget of the decoded-node cache.
    pub cache_bytes: usize,
    /// What [`Repo::commit`] waits for before it returns: the backend's
    /// barrier of this mode after every ref move, shared between concurrent
    /// committers.
    pub durability: Durability,
}

impl Default for RepoOptions {
    fn default() -> Self {
        RepoOptions {
            cache_bytes: 256 << 20,
            durability: Durability::Durable,
        }
    }
}

/// A handle on a store: the backend, the decoded-node cache shared by all
/// readers, and the in-process write fence that garbage collection
/// respects. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Repo {
    inner: Arc<Inner>,
}

/// Keeps a commit from garbage collection while it lives (see
/// [`Repo::pin`]).
pub struct Pin {
    repo: Repo,
    id: ObjectId,
}

impl Pin {
    /// The pinned commit.
    pub fn id(&self) -> ObjectId {
        self.id
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pin").field(&self.id).finish()
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = self.repo.inner.pins.lock();
        if let Some(n) = pins.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&self.id);
            }
        }
    }
}

/// Tickets for group commit (see [`Repo::barrier`]).
#[derive(Default)]
struct FlushGate {
    issued: AtomicU64,
    flushed: Mutex<u64>,
}

struct Inner {
    /// Commits held by live [`Pin`]s, with how many pins hold each.
    pins: Mutex<HashMap<ObjectId, usize>>,
    flush_gate: FlushGate,
    backend: Arc<dyn Backend>,
    cache: NodeCache,
    commits: Mutex<HashMap<ObjectId, Arc<Commit>>>,
    /// Refs as last read, on a backend that versions its refs
    /// ([`Backend::ref_version`]); see [`Repo::get_ref`].
    refs: RwLock<HashMap<String, CachedRef>>,
    fence: RwLock<()>,
    options: RepoOptions,
}

/// A ref as read at a [`Backend::ref_version`], with its commit's tree once
/// loaded.
#[derive(Clone, Copy)]
struct CachedRef {
    version: u64,
    head: Option<ObjectId>,
    tree: Option<Tree>,
}

/// What a new commit is made of (see [`Repo::commit`]).
#[derive(Clone, Debug, Default)]
pub struct CommitSpec {
    /// Parents: none for a root commit, one, or two for a merge.
    pub parents: Vec<ObjectId>,
    /// The commit message.
    pub message: String,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// The commit time; now if `None`.
    pub time_micros: Option<u64>,
}

impl Repo {
    /// A repo over `backend`.
    pub fn new(backend: Arc<dyn Backend>, options: RepoOptions) -> Self {
        Repo {
            inner: Arc::new(Inner {
                pins: Mutex::new(HashMap::new()),
                flush_gate: FlushGate::default(),
                backend,
                cache: NodeCache::new(options.cache_bytes),
                commits: Mutex::new(HashMap::new()),
                refs: RwLock::new(HashMap::new()),
                fence: RwLock::new(()),
                options,
            }),
        }
    }

    /// A repo in memory (for tests and benchmarks).
    pub fn memory() -> Self {
        Repo::new(Arc::new(MemoryBackend::new()), RepoOptions::default())
    }

    /// Opens (creating if missing) a sled store at `path` with default
    /// options (feature `sled`, on by default).
    #[cfg(feature = "sled")]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        use crate::store::{SledBackend, SledOptions};
        let backend = SledBackend::open(path, SledOptions::default())?;
        Ok(Repo::new(Arc::new(backend), RepoOptions::default()))
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// The cache of decoded nodes and blob values.
    pub fn cache(&self) -> &NodeCache {
        &self.inner.cache
    }

    /// The options the repo was made with.
    pub fn options(&self) -> &RepoOptions {
        &self.inner.options
    }

    /// Held (shared) by a writer from its first object write until its ref
    /// has moved; garbage collection takes it exclusively to sweep, so an
    /// in-flight writer's objects are never swept in this process.
    pub fn write_fence(&self) -> RwLockReadGuard<'_, ()> {
        self.inner.fence.read()
    }

    /// Taken by garbage collection while it decides what to delete.
    pub fn gc_fence(&self) -> RwLockWriteGuard<'_, ()> {
        self.inner.fence.write()
    }

    /// Forgets any decoded copy of object `id` (node or commit): garbage
    /// collection calls this for every object it deletes.
    pub fn evict_cached(&self, id: &ObjectId) {
        self.inner.cache.remove(id);
        self.inner.commits.lock().remove(id);
    }

    /// Keeps commit `id`, its history and trees from garbage collection
    /// for as long as the returned [`Pin`] lives (a sweep marks from pins
    /// as from refs). To pin what a ref points at, use
    /// [`Repo::read_ref_pinned`], which closes the race with a sweep.
    pub fn pin(&self, id: ObjectId) -> Pin {
        *self.inner.pins.lock().entry(id).or_insert(0) += 1;
        Pin {
            repo: self.clone(),
            id,
        }
    }

    /// The commits pinned now.
    pub fn pinned(&self) -> Vec<ObjectId> {
        self.inner.pins.lock().keys().copied().collect()
    }

    /// Reads ref `ref_name` and pins its commit, under the write fence: a
    /// sweep either sees the pin when it re-marks under its exclusive
    /// fence, or finished before the read, so the commit read is reachable.
    pub fn read_ref_pinned(&self, ref_name: &str) -> Result<Option<(ObjectId, Pin)>> {
        let _fence = self.write_fence();
        Ok(self.get_ref(ref_name)?.map(|id| (id, self.pin(id))))
    }

    /// Raw object bytes; [`Error::MissingObject`] if absent.
    pub fn object_bytes(&self, id: &ObjectId) -> Result<Vec<u8>> {
        self.inner
            .backend
            .get_object(id)?
            .ok_or(Error::MissingObject(*id))
    }

    /// A decoded tree node, from the cache or the backend.
    pub fn node(&self, id: &ObjectId) -> Result<Arc<Node>> {
        if let Some(node) = self.inner.cache.get(id) {
            return Ok(node);
        }
        let bytes = self.object_bytes(id)?;
        let node = Arc::new(Node::decode_vec(id, bytes)?);
        self.inner.cache.insert(*id, node.clone());
        Ok(node)
    }

    /// A commit; [`Error::UnknownCommit`] if there is no such object or it
    /// is not a commit.
    pub fn read_commit(&self, id: &ObjectId) -> Result<Commit> {
        self.commit_ref(id).map(|c| (*c).clone())
    }

    /// Like [`Repo::read_commit`], shared from the decoded-commit cache.
    pub fn commit_ref(&self, id: &ObjectId) -> Result<Arc<Commit>> {
        if let Some(c) = self.inner.commits.lock().get(id) {
            return Ok(c.clone());
        }
        let commit = Arc::new(self.decode_commit(id)?);
        self.cache_commit(*id, commit.clone());
        Ok(commit)
    }

    fn cache_commit(&self, id: ObjectId, commit: Arc<Commit>) {
        let mut commits = self.inner.commits.lock();
        if commits.len() >= COMMIT_CACHE_ENTRIES {
            // Commits are small and immutable: forgetting them all now and
            // then is simpler than tracking recency, and cheap to refill.
            commits.clear();
        }
        commits.insert(id, commit);
    }

    fn decode_commit(&self, id: &ObjectId) -> Result<Commit> {
        let bytes = self
            .inner
            .backend
            .get_object(id)?
            .ok_or_else(|| Error::UnknownCommit(id.to_hex()))?;
        // The id names some object. Check the hash first: a damaged byte,
        // the kind byte included, is corruption. An intact object of
        // another kind means the caller named something that is not a
        // commit.
        if ObjectId::hash(&bytes) != *id {
            return Err(Error::corrupt(*id, "bytes do not hash to the object id"));
        }
        match bytes.get(1).copied().and_then(object::Kind::from_byte) {
            Some(object::Kind::Commit) | None => Commit::decode_hashed(id, &bytes),
            Some(kind) => Err(Error::UnknownCommit(format!(
                "{id} is a {kind:?}, not a commit"
            ))),
        }
    }

    /// The bytes of a stored value (loading its blob if it has one).
    pub fn read_value(&self, value: &Value) -> Result<Vec<u8>> {
        match value {
            Value::Inline(v) => Ok(v.clone()),
            Value::Blob { id, len } => {
                let v = match self.inner.cache.get_blob(id) {
                    Some(v) => v.to_vec(),
                    None => {
                        let bytes = self.object_bytes(id)?;
                        let v = object::decode_blob(id, &bytes)?;
                        self.inner.cache.insert_blob(*id, Arc::from(v.as_slice()));
                        v
                    }
                };
                // Checked on every read: the reference is in a node that
                // may be damaged, while the cached blob is intact.
                if v.len() as u64 != *len {
                    return Err(Error::corrupt(
                        *id,
                        "blob length differs from its reference",
                    ));
                }
                Ok(v)
            }
        }
    }

    /// Writes a commit object for `tree` (its objects must already be
    /// stored) and returns its id. The height is computed from the parents.
    pub fn write_commit(&self, tree: &Tree, spec: &CommitSpec) -> Result<ObjectId> {
        let (id, bytes, commit) = self.encode_commit(tree, spec)?;
        self.inner.backend.put_objects(vec![(id, bytes)])?;
        // The next transaction on the branch starts from this commit: keep
        // it decoded (a round trip saved on a networked store).
        self.cache_commit(id, Arc::new(commit));
        Ok(id)
    }

    /// Writes objects that a tree operation left unwritten
    /// ([`Repo::apply_unwritten`]).
    pub fn write_objects(&self, unwritten: Unwritten) -> Result<()> {
        if unwritten.is_empty() {
            return Ok(());
        }
        self.inner.backend.put_objects(unwritten.into_objects())
    }

    /// The commit object of `tree` and `spec`: its id, bytes and decoded
    /// form (the height is computed from the parents).
    fn encode_commit(&self, tree: &Tree, spec: &CommitSpec) -> Result<(ObjectId, Vec<u8>, Commit)> {
        // A stored height is input: the highest parent's must leave room.
        let mut height = 1u64;
        for p in &spec.parents {
            let parent = self.commit_ref(p)?.height;
            let above = parent.checked_add(1).ok_or_else(|| {
                Error::corrupt(
                    *p,
                    format!("commit height {parent} leaves no room for a child"),
                )
            })?;
            height = height.max(above);
        }
        let commit = Commit {
            root: tree.root(),
            parents: spec.parents.clone(),
            height,
            time_micros: spec.time_micros.unwrap_or_else(Commit::now_micros),
            message: spec.message.clone(),
            metadata: spec.metadata.clone(),
        };
        commit.check().map_err(Error::InvalidCommit)?;
        let bytes = commit.encode();
        if bytes.len() > object::MAX_COMMIT_LEN {
            return Err(Error::InvalidCommit(format!(
                "message and metadata make a commit of {} bytes; the limit is {}",
                bytes.len(),
                object::MAX_COMMIT_LEN
            )));
        }
        Ok((ObjectId::hash(&bytes), bytes, commit))
    }

    /// The commit protocol's last step: compare-and-swap `ref_name` from
    /// `expected` to `new`, then the durability barrier of the repo's
    /// options. Objects must have been written before.
    pub fn move_ref(
        &self,
        ref_name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        crate::refs::check_update(ref_name, expected.is_none() && new.is_some())?;
        // On a shared store the swap checks that the new commit (and, if
        // this process knows it, its root and parents) is still there:
        // it may have been written long ago.
        let mut refs = Vec::new();
        if let (Some(new), Some(_)) = (new, self.inner.backend.shared()) {
            refs.push(*new);
            if let Some(c) = self.inner.commits.lock().get(new) {
                refs.push(c.root);
                refs.extend_from_slice(&c.parents);
            }
        }
        let before = self.inner.backend.ref_version();
        let outcome =
            self.inner
                .backend
                .put_objects_and_cas(Vec::new(), &refs, ref_name, expected, new)?;
        if outcome == CasOutcome::Swapped {
            self.moved(ref_name, before, new.copied(), None);
            self.barrier()?;
        }
        Ok(outcome)
    }

    /// The durability barrier of the repo's mode, shared between threads
    /// (group commit): a thread whose writes a flush that started after
    /// them already covered returns without flushing again.
    ///
    /// Each caller takes a ticket after its writes; a flusher reads the
    /// last ticket handed out before it flushes, and every ticket up to it
    /// belongs to writes made before the flush began, so the flush covers
    /// them.
    pub fn barrier(&self) -> Result<()> {
        let gate = &self.inner.flush_gate;
        let ticket = gate.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = gate.flushed.lock();
        if *flushed >= ticket {
            return Ok(());
        }
        let covered = gate.issued.load(Ordering::SeqCst);
        self.inner.backend.flush(self.inner.options.durability)?;
        *flushed = covered;
        Ok(())
    }

    /// Writes a commit of `tree` and moves `ref_name` to it from
    /// `expected`. Returns the new commit id and the CAS outcome (on a
    /// mismatch the commit object exists but nothing points at it).
    pub fn commit(
        &self,
        ref_name: &str,
        expected: Option<&ObjectId>,
        tree: &Tree,
        spec: &CommitSpec,
    ) -> Result<(ObjectId, CasOutcome)> {
        self.commit_with(ref_name, expected, tree, Unwritten::default(), spec)
    }

    /// [`Repo::commit`] for a tree whose last objects are still
    /// `unwritten` ([`Repo::apply_unwritten`]): they and the commit
    /// object are written and the ref swapped in one backend call
    /// ([`Backend::put_objects_and_cas`]: one round trip and one
    /// transaction on PostgreSQL), then the durability barrier.
    pub fn commit_with(
        &self,
        ref_name: &str,
        expected: Option<&ObjectId>,
        tree: &Tree,
        unwritten: Unwritten,
        spec: &CommitSpec,
    ) -> Result<(ObjectId, CasOutcome)> {
        crate::refs::check_update(ref_name, expected.is_none())?;
        let (id, bytes, commit) = self.encode_commit(tree, spec)?;
        let mut objects = unwritten.into_objects();
        objects.push((id, bytes));
        let before = self.inner.backend.ref_version();
        let refs = self.outside_references(&objects, &commit)?;
        let outcome = self.inner.backend.put_objects_and_cas(
            objects,
            &refs,
            ref_name,
            expected,
            Some(&id),
        )?;
        // Written, whatever the swap did: the next transaction on the
        // branch, or the merge after a lost race, starts from it.
        self.cache_commit(id, Arc::new(commit));
        if outcome == CasOutcome::Swapped {
            self.moved(ref_name, before, Some(id), Some(*tree));
            self.barrier()?;
        }
        Ok((id, outcome))
    }

    /// What `objects` (a commit's last batch, ending with `commit`'s
    /// object) refer to without containing: the children and blobs of its
    /// nodes, the commit's root and parents. A store shared by several
    /// processes checks that they are present in the swap's transaction
    /// ([`Backend::put_objects_and_cas`]); nodes come from the cache when
    /// the tree operation left them there.
    fn outside_references(
        &self,
        objects: &[(ObjectId, Vec<u8>)],
        commit: &Commit,
    ) -> Result<Vec<ObjectId>> {
        if self.inner.backend.shared().is_none() {
            return Ok(Vec::new());
        }
        let mut refs = vec![commit.root];
        refs.extend_from_slice(&commit.parents);
        for (id, bytes) in objects {
            let kind = bytes.get(1).copied().and_then(object::Kind::from_byte);
            if !matches!(kind, Some(object::Kind::Leaf | object::Kind::Internal)) {
                continue;
            }
            let node = match self.inner.cache.get(id) {
                Some(node) => node,
                None => Arc::new(Node::decode(id, bytes)?),
            };
            refs.extend(node.children().map(|c| c.id));
            refs.extend(node.leaf_entries().filter_map(|(_, v)| match v {
                object::ValueRef::Blob { id, .. } => Some(id),
                _ => None,
            }));
        }
        let contained: std::collections::HashSet<ObjectId> = objects.iter().map(|o| o.0).collect();
        refs.sort_unstable();
        refs.dedup();
        refs.retain(|r| !contained.contains(r));
        Ok(refs)
    }

    /// The commit a ref points at.
    ///
    /// On a backend that versions its refs ([`Backend::ref_version`]: one
    /// owned by this process, which sees every move), the value is
    /// remembered with the version it was read at and served from memory
    /// until any ref of the store moves; so every move, whoever makes it
    /// (this repo, another over the same backend, the backend's own
    /// `cas_ref`), is seen by the next read. Other backends are read each
    /// time.
    pub fn get_ref(&self, ref_name: &str) -> Result<Option<ObjectId>> {
        let Some(version) = self.inner.backend.ref_version() else {
            return self.inner.backend.get_ref(ref_name);
        };
        if let Some(cached) = self.cached_ref(ref_name, version) {
            return Ok(cached.head);
        }
        let head = self.inner.backend.get_ref(ref_name)?;
        self.remember_ref(ref_name, version, head, None);
        Ok(head)
    }

    /// The commit a ref points at and that commit's tree, from memory when
    /// the ref has not moved since it was last read (see
    /// [`Repo::get_ref`]). Nothing is pinned: for reads that outlive the
    /// call, use [`Repo::head_pinned`]. A sweep racing a read of the tree
    /// makes the read fail with [`Error::MissingObject`], never return
    /// wrong data (objects are named by their hash).
    pub fn head(&self, ref_name: &str) -> Result<Option<(ObjectId, Tree)>> {
        let version = self.inner.backend.ref_version();
        let cached = version.and_then(|v| self.cached_ref(ref_name, v));
        let id = match cached {
            Some(CachedRef { head: None, .. }) => return Ok(None),
            Some(CachedRef {
                head: Some(id),
                tree: Some(tree),
                ..
            }) => return Ok(Some((id, tree))),
            Some(CachedRef { head: Some(id), .. }) => id,
            None => match self.inner.backend.get_ref(ref_name)? {
                Some(id) => id,
                None => {
                    if let Some(version) = version {
                        self.remember_ref(ref_name, version, None, None);
                    }
                    return Ok(None);
                }
            },
        };
        let tree = self.tree(self.commit_ref(&id)?.root)?;
        if let Some(version) = version {
            self.remember_ref(ref_name, version, Some(id), Some(tree));
        }
        Ok(Some((id, tree)))
    }

    /// [`Repo::head`], with the commit pinned (read and pinned under the
    /// write fence, as [`Repo::read_ref_pinned`]).
    pub fn head_pinned(&self, ref_name: &str) -> Result<Option<(ObjectId, Tree, Pin)>> {
        let _fence = self.write_fence();
        Ok(self
            .head(ref_name)?
            .map(|(id, tree)| (id, tree, self.pin(id))))
    }

    /// After this repo swapped `ref_name` to `head` (with `tree`): if the
    /// ref version grew by exactly one across the swap (`before` was read
    /// just before it), no other move happened meanwhile, and the new value
    /// is remembered at the new version, so the next read needs no
    /// backend call. Otherwise the next read goes to the backend.
    fn moved(
        &self,
        ref_name: &str,
        before: Option<u64>,
        head: Option<ObjectId>,
        tree: Option<Tree>,
    ) {
        let (Some(before), Some(after)) = (before, self.inner.backend.ref_version()) else {
            return;
        };
        if before.checked_add(1) == Some(after) {
            self.remember_ref(ref_name, after, head, tree);
        }
    }

    fn cached_ref(&self, ref_name: &str, version: u64) -> Option<CachedRef> {
        self.inner
            .refs
            .read()
            .get(ref_name)
            .filter(|c| c.version == version)
            .copied()
    }

    /// Remembers `head` (and its `tree`) as ref `ref_name` at `version`,
    /// which was taken before the ref was read: if a move lands between
    /// the two, the version has grown since and the entry is never used.
    fn remember_ref(
        &self,
        ref_name: &str,
        version: u64,
        head: Option<ObjectId>,
        tree: Option<Tree>,
    ) {
        let mut refs = self.inner.refs.write();
        if refs.len() >= REF_CACHE_ENTRIES && !refs.contains_key(ref_name) {
            refs.clear();
        }
        let entry = CachedRef {
            version,
            head,
            tree,
        };
        match refs.get_mut(ref_name) {
            Some(c) if c.version > version => {}
            Some(c) => *c = entry,
            None => {
                refs.insert(ref_name.to_string(), entry);
            }
        }
    }

    /// Resolves a commit given as 64 hex digits or a unique prefix of at
    /// least 4 hex digits.
    pub fn resolve_commit_prefix(&self, prefix: &str) -> Result<ObjectId> {
        if prefix.len() == 64 {
            let id: ObjectId = prefix.parse()?;
            self.read_commit(&id)?;
            return Ok(id);
        }
        let range = ObjectId::hex_prefix_range(prefix).filter(|_| prefix.len() >= 4);
        let (start, end) = range.ok_or_else(|| Error::InvalidId(prefix.to_string()))?;
        let mut found = Vec::new();
        self.inner
            .backend
            .for_each_object_in(&start, end.as_ref(), &mut |id, _| {
                if id.has_hex_prefix(prefix) {
                    found.push(id);
                }
                Ok(true)
            })?;
        // Candidates that are intact commits; a damaged candidate is
        // reported rather than hidden, unless the prefix names exactly one
        // intact commit anyway.
        let mut commits = Vec::new();
        let mut damaged = None;
        for id in found {
            match self.read_commit(&id) {
                Ok(_) => commits.push(id),
                Err(Error::UnknownCommit(_)) => {}
                Err(e) => damaged = damaged.or(Some(e)),
            }
        }
        if let (true, Some(e)) = (commits.is_empty(), damaged) {
            return Err(e);
        }
        match commits.as_slice() {
            [] => Err(Error::UnknownCommit(prefix.to_string())),
            [one] => Ok(*one),
            many => Err(Error::AmbiguousId {
                prefix: prefix.to_string(),
                candidates: many.len(),
            }),
        }
    }
}
