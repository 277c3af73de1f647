//! The sled backend (stub; being written).

use std::path::Path;

use super::{Backend, CasOutcome, Durability};
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// Options for opening a sled store.
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// sled's page cache size in bytes.
    pub cache_capacity: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_capacity: 256 << 20,
        }
    }
}

/// The embedded default backend: one sled database.
pub struct SledBackend {
    _db: sled::Db,
}

impl SledBackend {
    /// Opens (creating if missing) the store at `path`.
    pub fn open(path: impl AsRef<Path>, _options: SledOptions) -> Result<Self> {
        let _ = path;
        Err(Error::Storage("not yet".into()))
    }
}

impl Backend for SledBackend {
    fn get_object(&self, _id: &ObjectId) -> Result<Option<Vec<u8>>> {
        todo!()
    }
    fn has_object(&self, _id: &ObjectId) -> Result<bool> {
        todo!()
    }
    fn put_objects(&self, _objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        todo!()
    }
    fn delete_objects(&self, _ids: &[ObjectId]) -> Result<()> {
        todo!()
    }
    fn for_each_object(&self, _visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        todo!()
    }
    fn get_ref(&self, _name: &str) -> Result<Option<ObjectId>> {
        todo!()
    }
    fn cas_ref(
        &self,
        _name: &str,
        _expected: Option<&ObjectId>,
        _new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        todo!()
    }
    fn list_refs(&self, _prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        todo!()
    }
    fn get_meta(&self, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        todo!()
    }
    fn put_meta(&self, _entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        todo!()
    }
    fn scan_meta(&self, _prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        todo!()
    }
    fn flush(&self, _durability: Durability) -> Result<()> {
        todo!()
    }
    fn size_on_disk(&self) -> Result<u64> {
        todo!()
    }
}
