//! Walking history: first-parent chains and whole ancestries, newest first.

use std::collections::{BinaryHeap, HashSet};

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::Commit;
use crate::repo::Repo;

impl Repo {
    /// `head` and its first parents, newest first.
    pub fn first_parent_log(&self, head: ObjectId) -> FirstParentLog {
        FirstParentLog {
            repo: self.clone(),
            next: Some(head),
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
}

impl Iterator for FirstParentLog {
    type Item = Result<(ObjectId, Commit)>;

    fn next(&mut self) -> Option<Self::Item> {
        let id = self.next.take()?;
        match self.repo.read_commit(&id) {
            Ok(commit) => {
                self.next = commit.parents.first().copied();
                Some(Ok((id, commit)))
            }
            Err(e) => Some(Err(e)),
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
            self.enqueue(*p)?;
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
