//! Walking history: first-parent chains and whole ancestries, newest first.
//!
//! A shallow fetch stores some commits without their parents and records
//! each under [`SHALLOW`] in the metadata. History ends there: both walks
//! stop at such a commit when its parent is absent (a parent that is in
//! the store after all is walked).

use std::collections::{BinaryHeap, HashSet};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::Commit;
use crate::repo::Repo;

/// The metadata prefix of the commits stored without their parents (a
/// shallow fetch's cut): `shallow/<id in hex>`, with an empty value.
pub const SHALLOW: &[u8] = b"shallow/";

/// The metadata key recording `id` as stored without its parents.
pub fn shallow_key(id: &ObjectId) -> Vec<u8> {
    let mut key = SHALLOW.to_vec();
    key.extend_from_slice(id.to_hex().as_bytes());
    key
}

impl Repo {
    /// `head` and its first parents, newest first.
    pub fn first_parent_log(&self, head: ObjectId) -> FirstParentLog {
        FirstParentLog {
            repo: self.clone(),
            next: Some(head),
            child: None,
        }
    }

    /// The commits this store holds without their parents (see
    /// [`SHALLOW`]).
    pub fn shallow_commits(&self) -> Result<Vec<ObjectId>> {
        let mut out = Vec::new();
        for (key, _) in self.backend().scan_meta(SHALLOW)? {
            let hex = String::from_utf8_lossy(&key[SHALLOW.len()..]).into_owned();
            if let Ok(id) = hex.parse() {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// True if `id` is recorded as stored without its parents.
    pub fn is_shallow(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.backend().get_meta(&shallow_key(id))?.is_some())
    }

    /// `err`, met reading a parent of `child`, unless it is the parent's
    /// absence below a shallow cut (then `None`: history ends there).
    fn past_cut(&self, err: Error, child: Option<&ObjectId>) -> Option<Error> {
        match (&err, child) {
            (Error::UnknownCommit(_), Some(child)) => match self.is_shallow(child) {
                Ok(true) => None,
                Ok(false) => Some(err),
                Err(e) => Some(e),
            },
            _ => Some(err),
        }
    }

    /// Every commit reachable from `heads`, each once, newest first
    /// (greatest height first; among equal heights, latest time first,
    /// then greatest id).
    pub fn log(&self, heads: &[ObjectId]) -> Log {
        Log {
            repo: self.clone(),
            queue: BinaryHeap::new(),
            pending: heads.to_vec(),
            seen: HashSet::new(),
        }
    }
}

/// See [`Repo::first_parent_log`].
pub struct FirstParentLog {
    repo: Repo,
    next: Option<ObjectId>,
    /// The commit `next` is the first parent of.
    child: Option<ObjectId>,
}

impl Iterator for FirstParentLog {
    type Item = Result<(ObjectId, Commit)>;

    fn next(&mut self) -> Option<Self::Item> {
        let id = self.next.take()?;
        match self.repo.read_commit(&id) {
            Ok(commit) => {
                self.next = commit.parents.first().copied();
                self.child = Some(id);
                Some(Ok((id, commit)))
            }
            Err(e) => self.repo.past_cut(e, self.child.as_ref()).map(Err),
        }
    }
}

/// See [`Repo::log`].
pub struct Log {
    repo: Repo,
    queue: BinaryHeap<(u64, u64, ObjectId)>,
    pending: Vec<ObjectId>,
    seen: HashSet<ObjectId>,
}

impl Log {
    fn enqueue(&mut self, id: ObjectId) -> Result<()> {
        if self.seen.insert(id) {
            let c = self.repo.commit_ref(&id)?;
            self.queue.push((c.height, c.time_micros, id));
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<(ObjectId, Commit)>> {
        for id in std::mem::take(&mut self.pending) {
            self.enqueue(id)?;
        }
        let Some((_, _, id)) = self.queue.pop() else {
            return Ok(None);
        };
        let commit = self.repo.read_commit(&id)?;
        for p in &commit.parents {
            if let Err(e) = self.enqueue(*p) {
                if let Some(e) = self.repo.past_cut(e, Some(&id)) {
                    return Err(e);
                }
            }
        }
        Ok(Some((id, commit)))
    }
}

impl Iterator for Log {
    type Item = Result<(ObjectId, Commit)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(x)) => Some(Ok(x)),
            Ok(None) => None,
            Err(e) => {
                self.queue.clear();
                Some(Err(e))
            }
        }
    }
}
