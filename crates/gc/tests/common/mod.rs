//! Helpers shared by the tests: a writer that follows the commit protocol
//! and touches the tracker, a reference reachability walk, and a full
//! store check.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kvgit_core::object::ValueRef;
use kvgit_core::{
    Backend, CasOutcome, CommitSpec, MemoryBackend, ObjectId, Repo, RepoOptions, Tree,
};
use kvgit_gc::{AccessOptions, AccessTracker};

/// A repo and its access tracker.
pub struct Store {
    pub repo: Repo,
    pub access: AccessTracker,
}

impl Store {
    pub fn memory() -> Self {
        Store::over(Repo::memory())
    }

    pub fn over(repo: Repo) -> Self {
        let access = AccessTracker::open(&repo, AccessOptions::default()).unwrap();
        Store { repo, access }
    }

    /// Puts (`Some`) or deletes (`None`) keys on `branch` in one commit,
    /// following the commit protocol (fence from the first write until the
    /// ref moved, retried on a lost race), and touches each key.
    pub fn write(&self, branch: &str, edits: &[(&[u8], Option<&[u8]>)]) -> ObjectId {
        let id = commit_edits(&self.repo, branch, edits);
        for (key, _) in edits {
            self.access.touch(branch, key).unwrap();
        }
        id
    }

    pub fn put(&self, branch: &str, key: &[u8], value: &[u8]) -> ObjectId {
        self.write(branch, &[(key, Some(value))])
    }

    /// Reads a key at the head of `branch`, touching it.
    pub fn read(&self, branch: &str, key: &[u8]) -> Option<Vec<u8>> {
        let value = get(&self.repo, branch, key);
        self.access.touch(branch, key).unwrap();
        value
    }

    pub fn contents(&self, branch: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
        contents(&self.repo, branch)
    }
}

/// Commits `edits` on `branch` (created if missing) with the fence held
/// around apply, commit and every CAS retry.
pub fn commit_edits(repo: &Repo, branch: &str, edits: &[(&[u8], Option<&[u8]>)]) -> ObjectId {
    let ref_name = format!("heads/{branch}");
    let edits: Vec<(Vec<u8>, Option<Vec<u8>>)> = edits
        .iter()
        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
        .collect();
    let _fence = repo.write_fence();
    loop {
        let head = repo.get_ref(&ref_name).unwrap();
        let base = match &head {
            Some(id) => repo.tree(repo.commit_ref(id).unwrap().root).unwrap(),
            None => repo.empty_tree().unwrap(),
        };
        let tree = repo.apply(&base, edits.clone()).unwrap();
        let spec = CommitSpec {
            parents: head.into_iter().collect(),
            message: "write".into(),
            ..CommitSpec::default()
        };
        let (id, outcome) = repo.commit(&ref_name, head.as_ref(), &tree, &spec).unwrap();
        if outcome == CasOutcome::Swapped {
            return id;
        }
    }
}

pub fn head_tree(repo: &Repo, branch: &str) -> Tree {
    let head = repo.get_ref(&format!("heads/{branch}")).unwrap().unwrap();
    repo.tree(repo.commit_ref(&head).unwrap().root).unwrap()
}

pub fn get(repo: &Repo, branch: &str, key: &[u8]) -> Option<Vec<u8>> {
    repo.get(&head_tree(repo, branch), key).unwrap()
}

pub fn contents(repo: &Repo, branch: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let tree = head_tree(repo, branch);
    repo.range(&tree, ..)
        .map(|r| r.unwrap())
        .collect::<BTreeMap<_, _>>()
}

/// Every object reachable from the refs, by a plain walk through the
/// repo's ordinary read path (independent of the sweep's marker).
pub fn reachable(repo: &Repo) -> HashSet<ObjectId> {
    let mut seen = HashSet::new();
    let mut commits: Vec<ObjectId> = repo
        .backend()
        .list_refs("")
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    while let Some(c) = commits.pop() {
        if !seen.insert(c) {
            continue;
        }
        let commit = repo.read_commit(&c).unwrap();
        commits.extend(commit.parents.iter().copied());
        let mut nodes = vec![commit.root];
        while let Some(n) = nodes.pop() {
            if !seen.insert(n) {
                continue;
            }
            let node = repo.node(&n).unwrap();
            for (_, v) in node.leaf_entries() {
                if let ValueRef::Blob { id, .. } = v {
                    seen.insert(id);
                }
            }
            nodes.extend(node.children().map(|c| c.id));
        }
    }
    seen
}

/// Every stored object id.
pub fn stored(repo: &Repo) -> HashSet<ObjectId> {
    let mut ids = HashSet::new();
    repo.backend()
        .for_each_object(&mut |id, _| {
            ids.insert(id);
            Ok(true)
        })
        .unwrap();
    ids
}

/// The whole-store check: every ref's history and whole tree read back
/// (values and blobs included), and every object's bytes hash to its id.
pub fn check_store(repo: &Repo) {
    for (name, head) in repo.backend().list_refs("").unwrap() {
        for entry in repo.log(&[head]) {
            let (_, commit) = entry.unwrap_or_else(|e| panic!("{name}: history: {e}"));
            let tree = repo.tree(commit.root).unwrap();
            let mut n = 0;
            for item in repo.range(&tree, ..) {
                item.unwrap_or_else(|e| panic!("{name}: tree: {e}"));
                n += 1;
            }
            assert_eq!(n, tree.len(), "{name}: key count");
        }
    }
    for id in stored(repo) {
        let bytes = repo.object_bytes(&id).unwrap();
        assert_eq!(
            ObjectId::hash(&bytes),
            id,
            "object {id} does not hash to its id"
        );
    }
}

/// A repo over `backend` with default options.
pub fn repo_over(backend: Arc<dyn Backend>) -> Repo {
    Repo::new(backend, RepoOptions::default())
}

/// A fresh in-memory backend.
pub fn memory_backend() -> Arc<MemoryBackend> {
    Arc::new(MemoryBackend::new())
}

type Hook = Box<dyn FnMut() + Send>;
type PutHook = Box<dyn FnMut(&[(ObjectId, Vec<u8>)]) + Send>;

/// A backend wrapper that runs a hook after `list_refs` or before `put_objects`
/// (to stage races deterministically); everything else passes through.
pub struct Hooked {
    pub inner: Arc<dyn Backend>,
    pub on_list_refs: parking_lot::Mutex<Option<Hook>>,
    pub on_put: parking_lot::Mutex<Option<PutHook>>,
}

impl Hooked {
    pub fn new(inner: Arc<dyn Backend>) -> Arc<Self> {
        Arc::new(Hooked {
            inner,
            on_list_refs: parking_lot::Mutex::new(None),
            on_put: parking_lot::Mutex::new(None),
        })
    }

    /// Runs a hook, taken out of its slot meanwhile so that it may use
    /// the backend itself.
    fn run<H: ?Sized>(hook: &parking_lot::Mutex<Option<Box<H>>>, call: impl FnOnce(&mut H)) {
        let taken = hook.lock().take();
        if let Some(mut f) = taken {
            call(&mut f);
            let mut slot = hook.lock();
            if slot.is_none() {
                *slot = Some(f);
            }
        }
    }
}

impl Backend for Hooked {
    fn get_object(&self, id: &ObjectId) -> kvgit_core::Result<Option<Vec<u8>>> {
        self.inner.get_object(id)
    }
    fn has_object(&self, id: &ObjectId) -> kvgit_core::Result<bool> {
        self.inner.has_object(id)
    }
    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> kvgit_core::Result<()> {
        Hooked::run(&self.on_put, |f| f(&objects));
        self.inner.put_objects(objects)
    }
    fn delete_objects(&self, ids: &[ObjectId]) -> kvgit_core::Result<()> {
        self.inner.delete_objects(ids)
    }
    fn for_each_object(
        &self,
        visit: &mut dyn FnMut(ObjectId, u64) -> kvgit_core::Result<bool>,
    ) -> kvgit_core::Result<()> {
        self.inner.for_each_object(visit)
    }
    fn get_ref(&self, name: &str) -> kvgit_core::Result<Option<ObjectId>> {
        self.inner.get_ref(name)
    }
    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> kvgit_core::Result<CasOutcome> {
        self.inner.cas_ref(name, expected, new)
    }
    fn list_refs(&self, prefix: &str) -> kvgit_core::Result<Vec<(String, ObjectId)>> {
        // After the listing: the hook knows the snapshot has been taken.
        let refs = self.inner.list_refs(prefix);
        Hooked::run(&self.on_list_refs, |f| f());
        refs
    }
    fn get_meta(&self, key: &[u8]) -> kvgit_core::Result<Option<Vec<u8>>> {
        self.inner.get_meta(key)
    }
    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> kvgit_core::Result<()> {
        self.inner.put_meta(entries)
    }
    fn scan_meta(&self, prefix: &[u8]) -> kvgit_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan_meta(prefix)
    }
    fn flush(&self, durability: kvgit_core::Durability) -> kvgit_core::Result<()> {
        self.inner.flush(durability)
    }
    fn size_on_disk(&self) -> kvgit_core::Result<u64> {
        self.inner.size_on_disk()
    }
}
