//! Access recency: a per-branch, per-key "last touched" tick, kept outside
//! the content-addressed objects.
//!
//! A tick is a number from one counter per store that grows by one on every
//! touch, so ticks order accesses without depending on clocks. A key that
//! was never touched has tick 0: the coldest possible.
//!
//! Touches are recorded in memory and written to the backend's metadata
//! space in batches (every [`AccessOptions::flush_every`] touches, on
//! [`AccessTracker::flush`], and when the last clone of the tracker is
//! dropped). Reading a key therefore never writes a commit or a tree node,
//! and costs a hash-map update, not a write. Touches not yet flushed when
//! the process dies are lost, which only makes those keys look colder.
//!
//! # Metadata layout
//!
//! ```text
//! gc/tick                 -> u64 big-endian: the last tick handed out
//! gc/access/<branch>:<key> -> u64 big-endian: the key's last tick
//! ```
//!
//! `<branch>` is the short branch name (`main`, `dev/alice`): `:` cannot
//! occur in a branch name, so the entries of one branch are exactly those
//! under the prefix `gc/access/<branch>:` (a `/` separator would mix the
//! entries of `dev` with those of `dev/alice`). A batch writes the counter
//! and its entries together, so the stored counter is never below a stored
//! tick.
//!
//! One tracker per store and process: two trackers on the same embedded
//! store would hand out the same ticks.
//!
//! # Shared stores
//!
//! On a store shared by several processes ([`Backend::shared`], e.g.
//! PostgreSQL) every process has its own tracker, and recency is shared
//! through the metadata table. Ticks then come from the wall clock
//! (microseconds since the Unix epoch, never less than the last tick plus
//! one), so that touches in different processes compare, and batches are
//! written with [`SharedStore::put_meta_max`], so that a process flushing an
//! older touch never moves an entry (or the counter) backwards. Hosts whose
//! clocks disagree by a few milliseconds only blur recency by as much.
//!
//! [`Backend::shared`]: kvgit_core::Backend::shared
//! [`SharedStore::put_meta_max`]: kvgit_core::SharedStore::put_meta_max

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use kvgit_core::{refs, Backend, Repo};
use parking_lot::{Mutex, MutexGuard};

/// The metadata key of the tick counter.
pub const TICK_KEY: &[u8] = b"gc/tick";

/// The prefix of every access entry.
pub const ACCESS_PREFIX: &[u8] = b"gc/access/";

/// Options of an [`AccessTracker`].
#[derive(Clone, Debug)]
pub struct AccessOptions {
    /// Write the recorded touches to the backend after this many touches
    /// (at least 1). Default: 4096.
    pub flush_every: usize,
}

impl Default for AccessOptions {
    fn default() -> Self {
        AccessOptions { flush_every: 4096 }
    }
}

/// What can go wrong when recording or reading access recency.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A stored tick is not 8 bytes long.
    #[error("access metadata entry {key:?} holds {len} bytes, not an 8-byte tick")]
    Corrupt {
        /// The metadata key (lossily shown as text).
        key: String,
        /// The length found.
        len: usize,
    },
    /// The branch name is invalid or the backend failed.
    #[error(transparent)]
    Core(#[from] kvgit_core::Error),
}

/// Per-branch, per-key access recency, shared by every thread that reads
/// or writes the store. Cheap to clone; clones share everything.
///
/// A touch costs an atomic increment (the tick) and an update of one of
/// 16 small maps, chosen by the key's hash, under that map's own
/// lock: threads touching different keys rarely wait for one another.
///
/// ```
/// use kvgit_core::Repo;
/// use kvgit_gc::{AccessOptions, AccessTracker};
///
/// let repo = Repo::memory();
/// let access = AccessTracker::open(&repo, AccessOptions::default())?;
/// access.touch("main", b"a")?;
/// access.touch("main", b"b")?;
/// assert!(access.tick("main", b"b")? > access.tick("main", b"a")?);
/// assert_eq!(access.tick("main", b"never")?, 0);
/// access.flush()?; // also done every 4096 touches and on drop
/// # Ok::<(), kvgit_gc::AccessError>(())
/// ```
#[derive(Clone)]
pub struct AccessTracker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AccessTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTracker")
            .field("tick", &self.inner.tick.load(Ordering::Relaxed))
            .field("pending", &self.inner.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// How many independently locked maps hold the touches not yet written.
const SHARDS: usize = 16;

/// Branch -> key -> tick.
type Ticks = HashMap<String, HashMap<Vec<u8>, u64>>;

struct Inner {
    backend: Arc<dyn Backend>,
    options: AccessOptions,
    /// The last tick handed out.
    tick: AtomicU64,
    /// Ticks follow the wall clock (a shared store).
    wall_clock: bool,
    /// Touches recorded since the last flush began (counting repeats), for
    /// `flush_every`.
    pending: AtomicUsize,
    /// The touches not yet in the backend, by the hash of their key.
    shards: Box<[Mutex<Shard>]>,
    /// Held while a batch is being written (and by [`AccessTracker::forget`]),
    /// so batches reach the backend in the order their ticks were given.
    flushing: Mutex<()>,
}

#[derive(Default)]
struct Shard {
    /// Touches not yet handed to a flush.
    dirty: Ticks,
    /// Touches being written by a flush right now (still visible to
    /// readers until the backend has them).
    in_flight: Arc<Ticks>,
}

impl AccessTracker {
    /// A tracker over `repo`'s metadata, continuing the stored tick
    /// counter.
    pub fn open(repo: &Repo, options: AccessOptions) -> Result<Self, AccessError> {
        let backend = repo.backend().clone();
        let tick = match backend.get_meta(TICK_KEY)? {
            Some(bytes) => decode_tick(TICK_KEY, &bytes)?,
            None => 0,
        };
        Ok(AccessTracker {
            inner: Arc::new(Inner {
                backend,
                options,
                tick: AtomicU64::new(tick),
                wall_clock: repo.backend().shared().is_some(),
                pending: AtomicUsize::new(0),
                shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
                flushing: Mutex::new(()),
            }),
        })
    }

    /// Records a read or write of `key` on branch `branch` (a short name
    /// such as `main`) and returns its new tick. May write a batch to the
    /// backend (see [`AccessOptions::flush_every`]); an invalid branch name
    /// is an error.
    pub fn touch(&self, branch: &str, key: &[u8]) -> Result<u64, AccessError> {
        // Checked here, not at flush time, so that a bad name cannot wedge
        // every later batch.
        refs::validate_name(branch)?;
        let tick = self.inner.next_tick();
        self.inner.shard(key).lock().record(branch, key, tick);
        self.count_and_maybe_flush(1)?;
        Ok(tick)
    }

    /// Records accesses of several keys of one branch, in order (the last
    /// is the warmest).
    pub fn touch_many<'k, I>(&self, branch: &str, keys: I) -> Result<(), AccessError>
    where
        I: IntoIterator<Item = &'k [u8]>,
    {
        refs::validate_name(branch)?;
        let mut n = 0;
        for key in keys {
            let tick = self.inner.next_tick();
            self.inner.shard(key).lock().record(branch, key, tick);
            n += 1;
        }
        self.count_and_maybe_flush(n)
    }

    /// Counts `n` touches; writes a batch once [`AccessOptions::flush_every`]
    /// have gathered.
    fn count_and_maybe_flush(&self, n: usize) -> Result<(), AccessError> {
        let before = self.inner.pending.fetch_add(n, Ordering::Relaxed);
        if before + n >= self.inner.options.flush_every.max(1) {
            self.flush_unless_busy()?;
        }
        Ok(())
    }

    /// The last tick handed out (0 before the first touch of the store).
    pub fn current_tick(&self) -> u64 {
        self.inner.tick.load(Ordering::SeqCst)
    }

    /// The tick of `key` on `branch`: 0 if it was never touched.
    pub fn tick(&self, branch: &str, key: &[u8]) -> Result<u64, AccessError> {
        if let Some(t) = self.inner.shard(key).lock().lookup(branch, key) {
            return Ok(t);
        }
        let meta_key = entry_key(branch, key)?;
        let stored = match self.inner.backend.get_meta(&meta_key)? {
            Some(bytes) => decode_tick(&meta_key, &bytes)?,
            None => 0,
        };
        // A touch that was flushed between the two looks is newer still.
        let shard = self.inner.shard(key).lock();
        Ok(shard.lookup(branch, key).unwrap_or(0).max(stored))
    }

    /// Every touched key of `branch` with its tick, sorted by key (keys
    /// never touched are absent: their tick is 0).
    pub fn ticks(&self, branch: &str) -> Result<Vec<(Vec<u8>, u64)>, AccessError> {
        let prefix = branch_prefix(branch)?;
        // With `flushing` held no batch moves from memory to the backend
        // between the scan and the overlay below.
        let _flushing = self.inner.flushing.lock();
        let stored = self.inner.backend.scan_meta(&prefix)?;
        let mut persisted = Vec::with_capacity(stored.len());
        for (meta_key, bytes) in stored {
            let tick = decode_tick(&meta_key, &bytes)?;
            let key = meta_key
                .get(prefix.len()..)
                .expect("scan_meta returns keys that start with the prefix")
                .to_vec();
            persisted.push((key, tick));
        }
        // Overlay what is in memory (newer than anything stored). A key
        // lives in one shard, so shards never share a key.
        let mut recent: Vec<(Vec<u8>, u64)> = Vec::new();
        for shard in self.inner.shards.iter() {
            let shard = shard.lock();
            let mut merged: HashMap<&[u8], u64> = HashMap::new();
            for map in [shard.in_flight.get(branch), shard.dirty.get(branch)]
                .into_iter()
                .flatten()
            {
                for (k, &t) in map {
                    let e = merged.entry(k.as_slice()).or_insert(0);
                    *e = (*e).max(t);
                }
            }
            recent.extend(merged.into_iter().map(|(k, t)| (k.to_vec(), t)));
        }
        recent.sort_unstable();
        Ok(merge_sorted(persisted, recent))
    }

    /// Writes every recorded touch to the backend (one batch).
    pub fn flush(&self) -> Result<(), AccessError> {
        let flushing = self.inner.flushing.lock();
        self.flush_locked(flushing)
    }

    /// A flush triggered by a touch: skipped if another thread is writing a
    /// batch right now (touches stay pending, and a later touch flushes
    /// them), so that touching threads do not queue up behind the I/O.
    fn flush_unless_busy(&self) -> Result<(), AccessError> {
        match self.inner.flushing.try_lock() {
            Some(flushing) => self.flush_locked(flushing),
            None => Ok(()),
        }
    }

    fn flush_locked(&self, _flushing: MutexGuard<'_, ()>) -> Result<(), AccessError> {
        self.inner.pending.store(0, Ordering::Relaxed);
        let mut batches = Vec::with_capacity(SHARDS);
        for shard in self.inner.shards.iter() {
            let mut shard = shard.lock();
            let batch = Arc::new(std::mem::take(&mut shard.dirty));
            shard.in_flight = batch.clone();
            batches.push(batch);
        }
        if batches.iter().all(|b| b.is_empty()) {
            return Ok(());
        }
        // Read after every batched tick was handed out: the stored counter
        // is never below a stored tick.
        let tick = self.current_tick();
        let result = self.write_batch(&batches, tick);
        for (shard, batch) in self.inner.shards.iter().zip(&batches) {
            let mut shard = shard.lock();
            if result.is_err() {
                // Keep the touches for the next attempt (newer ones win).
                for (branch, keys) in batch.iter() {
                    for (key, &t) in keys {
                        shard.record(branch, key, t);
                    }
                }
            }
            shard.in_flight = Arc::default();
        }
        result
    }

    fn write_batch(&self, batches: &[Arc<Ticks>], tick: u64) -> Result<(), AccessError> {
        let mut entries = Vec::new();
        for batch in batches {
            for (branch, keys) in batch.iter() {
                for (key, t) in keys {
                    entries.push((entry_key(branch, key)?, t.to_be_bytes().to_vec()));
                }
            }
        }
        entries.push((TICK_KEY.to_vec(), tick.to_be_bytes().to_vec()));
        put_entries(&*self.inner.backend, entries)
    }

    /// Forgets the recency of `keys` on `branch`, each only if its tick is
    /// still at most the tick given with it (a key touched since keeps its
    /// entry). A rebase calls this for the keys it dropped.
    pub fn forget<'k, I>(&self, branch: &str, keys: I) -> Result<(), AccessError>
    where
        I: IntoIterator<Item = (&'k [u8], u64)>,
    {
        // With `flushing` held no batch is in flight, so the backend's
        // entries only change here.
        let _flushing = self.inner.flushing.lock();
        let mut deletes = Vec::new();
        let mut check_stored = Vec::new();
        for (key, seen) in keys {
            let mut shard = self.inner.shard(key).lock();
            if let Some(d) = shard.dirty.get_mut(branch) {
                match d.get(key) {
                    Some(&t) if t > seen => continue,
                    Some(_) => {
                        d.remove(key);
                    }
                    None => {}
                }
            }
            check_stored.push((key, seen));
        }
        for (key, seen) in check_stored {
            let meta_key = entry_key(branch, key)?;
            if let Some(bytes) = self.inner.backend.get_meta(&meta_key)? {
                if decode_tick(&meta_key, &bytes)? <= seen {
                    deletes.push((meta_key, None));
                }
            }
        }
        self.inner.backend.put_meta(deletes)?;
        Ok(())
    }

    /// Forgets every entry of `branch` (after deleting the branch).
    pub fn forget_branch(&self, branch: &str) -> Result<(), AccessError> {
        let _flushing = self.inner.flushing.lock();
        for shard in self.inner.shards.iter() {
            shard.lock().dirty.remove(branch);
        }
        let prefix = branch_prefix(branch)?;
        let deletes = self
            .inner
            .backend
            .scan_meta(&prefix)?
            .into_iter()
            .map(|(k, _)| (k, None))
            .collect();
        self.inner.backend.put_meta(deletes)?;
        Ok(())
    }
}

/// Writes access entries: on a shared store never moving one backwards.
fn put_entries(backend: &dyn Backend, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), AccessError> {
    match backend.shared() {
        Some(shared) => shared.put_meta_max(entries)?,
        None => backend.put_meta(entries.into_iter().map(|(k, v)| (k, Some(v))).collect())?,
    }
    Ok(())
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Best effort: an error cannot be reported from here; the touches
        // lost only make their keys look colder.
        let mut entries = Vec::new();
        for shard in self.shards.iter_mut() {
            for (branch, keys) in &shard.get_mut().dirty {
                for (key, t) in keys {
                    if let Ok(k) = entry_key(branch, key) {
                        entries.push((k, t.to_be_bytes().to_vec()));
                    }
                }
            }
        }
        if entries.is_empty() {
            return;
        }
        let tick = *self.tick.get_mut();
        entries.push((TICK_KEY.to_vec(), tick.to_be_bytes().to_vec()));
        let _ = put_entries(&*self.backend, entries);
    }
}

impl Inner {
    fn next_tick(&self) -> u64 {
        if !self.wall_clock {
            return self.tick.fetch_add(1, Ordering::SeqCst) + 1;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut current = self.tick.load(Ordering::SeqCst);
        loop {
            let next = current.saturating_add(1).max(now);
            match self
                .tick
                .compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(seen) => current = seen,
            }
        }
    }

    /// The shard of `key` (the same on every branch).
    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        // FNV-1a: keys are short, and only the spread over shards matters.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        &self.shards[(h >> 32) as usize % SHARDS]
    }
}

impl Shard {
    /// Records `tick` for `key`, unless a newer touch (from a thread that
    /// took its tick later but got here first) is already there.
    fn record(&mut self, branch: &str, key: &[u8], tick: u64) {
        let keys = match self.dirty.get_mut(branch) {
            Some(keys) => keys,
            None => self.dirty.entry(branch.to_string()).or_default(),
        };
        match keys.get_mut(key) {
            Some(t) => *t = (*t).max(tick),
            None => {
                keys.insert(key.to_vec(), tick);
            }
        }
    }

    /// The tick of a key touched since the last completed flush.
    fn lookup(&self, branch: &str, key: &[u8]) -> Option<u64> {
        let dirty = self.dirty.get(branch).and_then(|m| m.get(key)).copied();
        let in_flight = self.in_flight.get(branch).and_then(|m| m.get(key)).copied();
        dirty.max(in_flight)
    }
}

fn branch_prefix(branch: &str) -> Result<Vec<u8>, AccessError> {
    refs::validate_name(branch)?;
    let mut prefix = Vec::with_capacity(ACCESS_PREFIX.len() + branch.len() + 1);
    prefix.extend_from_slice(ACCESS_PREFIX);
    prefix.extend_from_slice(branch.as_bytes());
    prefix.push(b':');
    Ok(prefix)
}

fn entry_key(branch: &str, key: &[u8]) -> Result<Vec<u8>, AccessError> {
    let mut k = branch_prefix(branch)?;
    k.extend_from_slice(key);
    Ok(k)
}

fn decode_tick(meta_key: &[u8], bytes: &[u8]) -> Result<u64, AccessError> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| AccessError::Corrupt {
        key: String::from_utf8_lossy(meta_key).into_owned(),
        len: bytes.len(),
    })?;
    Ok(u64::from_be_bytes(raw))
}

/// Merges two key-sorted lists, keeping the larger tick of a key in both.
fn merge_sorted(a: Vec<(Vec<u8>, u64)>, b: Vec<(Vec<u8>, u64)>) -> Vec<(Vec<u8>, u64)> {
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    let (k, t1) = a.next().expect("peeked");
                    let (_, t2) = b.next().expect("peeked");
                    Some((k, t1.max(t2)))
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_do_not_mix_nested_branches() {
        let dev = branch_prefix("dev").unwrap();
        let nested = entry_key("dev/alice", b"k").unwrap();
        assert!(!nested.starts_with(&dev));
        assert_eq!(entry_key("dev", b"a/b").unwrap(), b"gc/access/dev:a/b");
        assert!(branch_prefix("bad:name").is_err());
    }

    #[test]
    fn merge_keeps_the_larger_tick() {
        let a = vec![(b"a".to_vec(), 1), (b"c".to_vec(), 5)];
        let b = vec![(b"b".to_vec(), 2), (b"c".to_vec(), 7)];
        assert_eq!(
            merge_sorted(a, b),
            vec![(b"a".to_vec(), 1), (b"b".to_vec(), 2), (b"c".to_vec(), 7)]
        );
    }
}
