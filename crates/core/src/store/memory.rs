//! The in-memory backend, for tests, fuzzing and benchmarks.

use std::collections::{BTreeMap, HashMap};

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::{Backend, CasOutcome, Durability};
use crate::cache::IdHasher;
use crate::error::Result;
use crate::id::ObjectId;

type ObjectMap = HashMap<ObjectId, Vec<u8>, std::hash::BuildHasherDefault<IdHasher>>;

/// A backend holding everything in memory; nothing survives the process.
#[derive(Default)]
pub struct MemoryBackend {
    objects: RwLock<ObjectMap>,
    refs: RwLock<BTreeMap<String, ObjectId>>,
    meta: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// See [`Backend::ref_version`].
    ref_version: AtomicU64,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for MemoryBackend {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        Ok(self.objects.read().get(id).cloned())
    }

    fn has_object(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.objects.read().contains_key(id))
    }

    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        let mut map = self.objects.write();
        for (id, bytes) in objects {
            map.entry(id).or_insert(bytes);
        }
        Ok(())
    }

    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()> {
        let mut map = self.objects.write();
        for id in ids {
            map.remove(id);
        }
        Ok(())
    }

    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        let mut all: Vec<(ObjectId, u64)> = self
            .objects
            .read()
            .iter()
            .map(|(id, b)| (*id, b.len() as u64))
            .collect();
        all.sort_unstable();
        for (id, size) in all {
            if !visit(id, size)? {
                break;
            }
        }
        Ok(())
    }

    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        Ok(self.refs.read().get(name).copied())
    }

    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        let mut refs = self.refs.write();
        let actual = refs.get(name).copied();
        if actual.as_ref() != expected {
            return Ok(CasOutcome::Mismatch { actual });
        }
        match new {
            Some(id) => refs.insert(name.to_string(), *id),
            None => refs.remove(name),
        };
        // Under the lock: no reader sees the new value with the old version.
        self.ref_version.fetch_add(1, Ordering::SeqCst);
        Ok(CasOutcome::Swapped)
    }

    fn ref_version(&self) -> Option<u64> {
        Some(self.ref_version.load(Ordering::SeqCst))
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        Ok(self
            .refs
            .read()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.read().get(key).cloned())
    }

    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let mut meta = self.meta.write();
        for (k, v) in entries {
            match v {
                Some(v) => meta.insert(k, v),
                None => meta.remove(&k),
            };
        }
        Ok(())
    }

    fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .meta
            .read()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self, _durability: Durability) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(0)
    }
}
