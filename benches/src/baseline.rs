//! Putting a store back to a recorded state between measurements.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kvgit_core::{Backend, CasOutcome, ObjectId, Repo};

/// A store's objects and refs at one moment. The workloads that commit
/// record one before they start and go back to it now and then, outside
/// the timed region, so that a long measurement does not grow the store
/// without bound and every size is measured on the same store.
pub struct Baseline {
    objects: HashSet<ObjectId>,
    refs: BTreeMap<String, ObjectId>,
}

impl Baseline {
    /// Records every object id and every ref of `backend`.
    pub fn capture(backend: &Arc<dyn Backend>) -> Self {
        let mut objects = HashSet::new();
        backend
            .for_each_object(&mut |id, _| {
                objects.insert(id);
                Ok(true)
            })
            .expect("list objects");
        let refs = backend
            .list_refs("")
            .expect("list refs")
            .into_iter()
            .collect();
        Baseline { objects, refs }
    }

    /// The ids and sizes of the objects written since the capture.
    pub fn new_objects(&self, backend: &Arc<dyn Backend>) -> Vec<(ObjectId, u64)> {
        let mut new = Vec::new();
        backend
            .for_each_object(&mut |id, size| {
                if !self.objects.contains(&id) {
                    new.push((id, size));
                }
                Ok(true)
            })
            .expect("list objects");
        new
    }

    /// Puts `backend` back to the capture: deletes every object written
    /// since (evicting it from the caches of `repos`, every repo over the
    /// backend), moves every recorded ref back and deletes refs made since.
    /// Nothing may be writing meanwhile.
    pub fn restore(&self, backend: &Arc<dyn Backend>, repos: &[&Repo]) {
        let new: Vec<ObjectId> = self
            .new_objects(backend)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        backend.delete_objects(&new).expect("delete objects");
        for id in &new {
            for repo in repos {
                repo.evict_cached(id);
            }
        }
        for (name, current) in backend.list_refs("").expect("list refs") {
            let target = self.refs.get(&name);
            if target != Some(&current) {
                let outcome = backend.cas_ref(&name, Some(&current), target).expect("cas");
                assert_eq!(outcome, CasOutcome::Swapped, "ref {name} moved meanwhile");
            }
        }
        for (name, id) in &self.refs {
            if backend.get_ref(name).expect("get ref").is_none() {
                let outcome = backend.cas_ref(name, None, Some(id)).expect("cas");
                assert_eq!(outcome, CasOutcome::Swapped);
            }
        }
    }
}
