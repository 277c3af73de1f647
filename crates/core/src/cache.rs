//! A byte-budgeted cache of decoded objects (tree nodes and blob values),
//! shared by every reader.
//!
//! Objects are immutable and named by their content hash, so an entry never
//! needs invalidation: the cache only has to decide what to forget. It is
//! split into shards, each a CLOCK (second-chance FIFO) over its entries.
//! Nodes and blobs share one budget.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::id::ObjectId;
use crate::object::Node;

const SHARDS: usize = 16;

/// A hasher for [`ObjectId`] keys: ids are already uniform hashes, so the
/// first eight bytes serve as the hash.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `ObjectId` hashes as its 32-byte array: a length prefix, then the
        // bytes. Keep a rolling mix so any other use stays correct.
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(w);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }
}

type IdMap<V> = HashMap<ObjectId, V, BuildHasherDefault<IdHasher>>;

/// What a slot holds.
#[derive(Clone)]
enum Cached {
    Node(Arc<Node>),
    /// A blob's value (its bytes without the object header).
    Blob(Arc<[u8]>),
}

struct Slot {
    object: Cached,
    size: usize,
    referenced: bool,
}

#[derive(Default)]
struct Shard {
    map: IdMap<Slot>,
    order: VecDeque<ObjectId>,
    bytes: usize,
}

/// The shared cache of decoded objects.
pub struct NodeCache {
    shards: Vec<Mutex<Shard>>,
    budget_per_shard: usize,
}

impl NodeCache {
    /// A cache holding roughly `budget` bytes of decoded objects.
    pub fn new(budget: usize) -> Self {
        NodeCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            budget_per_shard: budget / SHARDS,
        }
    }

    fn shard(&self, id: &ObjectId) -> &Mutex<Shard> {
        &self.shards[usize::from(id.0[31]) % SHARDS]
    }

    /// The cached node, if present.
    pub fn get(&self, id: &ObjectId) -> Option<Arc<Node>> {
        match self.get_object(id)? {
            Cached::Node(node) => Some(node),
            Cached::Blob(_) => None,
        }
    }

    /// The cached value of blob `id`, if present.
    pub fn get_blob(&self, id: &ObjectId) -> Option<Arc<[u8]>> {
        match self.get_object(id)? {
            Cached::Blob(value) => Some(value),
            Cached::Node(_) => None,
        }
    }

    fn get_object(&self, id: &ObjectId) -> Option<Cached> {
        let mut shard = self.shard(id).lock();
        let slot = shard.map.get_mut(id)?;
        slot.referenced = true;
        Some(slot.object.clone())
    }

    /// Caches a node (a no-op if it is larger than a shard's budget).
    pub fn insert(&self, id: ObjectId, node: Arc<Node>) {
        let size = node.footprint();
        self.insert_object(id, Cached::Node(node), size);
    }

    /// Caches the value of blob `id` (a no-op if it is larger than a
    /// shard's budget).
    pub fn insert_blob(&self, id: ObjectId, value: Arc<[u8]>) {
        let size = value.len() + 64;
        self.insert_object(id, Cached::Blob(value), size);
    }

    fn insert_object(&self, id: ObjectId, object: Cached, size: usize) {
        if size > self.budget_per_shard {
            return;
        }
        let mut shard = self.shard(&id).lock();
        if shard.map.contains_key(&id) {
            return;
        }
        shard.bytes += size;
        shard.map.insert(
            id,
            Slot {
                object,
                size,
                referenced: false,
            },
        );
        shard.order.push_back(id);
        while shard.bytes > self.budget_per_shard {
            let Some(victim) = shard.order.pop_front() else {
                break;
            };
            let second_chance = match shard.map.get_mut(&victim) {
                Some(slot) if slot.referenced => {
                    slot.referenced = false;
                    true
                }
                Some(_) => false,
                None => continue,
            };
            if second_chance {
                shard.order.push_back(victim);
            } else if let Some(slot) = shard.map.remove(&victim) {
                shard.bytes -= slot.size;
            }
        }
    }

    /// Forgets an object (used by garbage collection after deleting it).
    pub fn remove(&self, id: &ObjectId) {
        let mut shard = self.shard(id).lock();
        if let Some(slot) = shard.map.remove(id) {
            shard.bytes -= slot.size;
        }
    }

    /// Bytes currently held (approximate).
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_within_budget() {
        let cache = NodeCache::new(16 * 4096);
        let entries: Vec<(Vec<u8>, crate::Value)> = (0..10u8)
            .map(|i| (vec![i], crate::Value::Inline(vec![i; 100])))
            .collect();
        for i in 0..1000u32 {
            let node = Arc::new(Node::from_leaf_entries(&entries));
            cache.insert(ObjectId::hash(&i.to_le_bytes()), node);
        }
        assert!(cache.bytes() <= 16 * 4096);
        let id = ObjectId::hash(b"keep");
        cache.insert(id, Arc::new(Node::from_leaf_entries(&[])));
        assert!(cache.get(&id).is_some());
    }

    #[test]
    fn blobs_share_the_budget_and_keep_their_kind() {
        let cache = NodeCache::new(16 * 4096);
        let blob = ObjectId::hash(b"blob");
        cache.insert_blob(blob, Arc::from(vec![7u8; 1000]));
        assert_eq!(cache.get_blob(&blob).as_deref(), Some(&[7u8; 1000][..]));
        assert!(cache.get(&blob).is_none(), "a blob is not a node");
        let node = ObjectId::hash(b"node");
        cache.insert(node, Arc::new(Node::from_leaf_entries(&[])));
        assert!(cache.get_blob(&node).is_none(), "a node is not a blob");
        for i in 0..1000u32 {
            cache.insert_blob(ObjectId::hash(&i.to_le_bytes()), Arc::from(vec![0u8; 1000]));
        }
        assert!(cache.bytes() <= 16 * 4096);
        // Larger than a shard's budget: not cached at all.
        let huge = ObjectId::hash(b"huge");
        cache.insert_blob(huge, Arc::from(vec![0u8; 8192]));
        assert!(cache.get_blob(&huge).is_none());
        cache.remove(&blob);
        assert!(cache.get_blob(&blob).is_none());
    }
}
