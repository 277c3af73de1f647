//! A PostgreSQL backend for kvgit: one store shared by many processes and
//! hosts, with PostgreSQL as the engine.
//!
//! [`PgBackend`] implements kvgit-core's [`Backend`] trait, so the tree,
//! merge and GC code run on it unchanged, and processes racing on one branch
//! reconcile by three-way merge exactly as threads do on the embedded store.
//!
//! - **Objects** are rows `(id, kind, bytes, written)`, written in batches
//!   (a multi-row `INSERT ... SELECT unnest(..) ON CONFLICT`), idempotent:
//!   writing an object that exists only refreshes its write time.
//! - **Refs** change by compare-and-swap, one statement
//!   (`kvgit_cas_ref`), which reports the actual value when it loses and
//!   logs what the ref held when it wins.
//! - **A commit** is one round trip and one transaction: its new objects
//!   and the swap of its ref go in one call (`kvgit_commit`,
//!   [`Backend::put_objects_and_cas`]); the objects stay written when the
//!   swap loses, for the merge that follows.
//! - **Writer turns** ([`SharedStore::writer_turn`]): a session-level
//!   advisory lock per ref, which a commit takes after losing a race so
//!   that processes colliding on one branch queue up instead of starving
//!   one another; other processes' swaps of that ref wait for the holder.
//! - **Reads** of immutable objects go to the server once; the repo's cache
//!   of decoded nodes and blob values serves them after that.
//! - **Durability** is the server's: every write is committed when its call
//!   returns (with the server's default `synchronous_commit = on`, durable
//!   on disk), so [`Backend::flush`] has nothing left to do, and objects are
//!   always committed before the ref that needs them.
//! - **Garbage collection across processes**: a sweep in one process cannot
//!   see another's in-flight writers, so this backend offers
//!   [`SharedStore`]: object write times and a ref log, by the server's
//!   clock, for kvgit-gc's grace period (default: one hour, see
//!   [`PgOptions::default_grace`]; never less than [`PgOptions::min_grace`],
//!   five minutes by default). A commit's swap checks, in its transaction,
//!   that every object it refers to is present and locks it against a
//!   concurrent sweep (`kvgit_hold_objects`): it fails with
//!   [`Error::MissingObject`] rather than move a ref onto a swept object.
//!
//! See the [`schema`] module for the tables.
//!
//! ```no_run
//! use kvgit_core::{Repo, RepoOptions};
//! use kvgit_postgres::PgBackend;
//! use std::sync::Arc;
//!
//! # fn main() -> kvgit_core::Result<()> {
//! let backend = PgBackend::open("postgres://kv:secret@db.internal/kvgit")?;
//! let repo = Repo::new(Arc::new(backend), RepoOptions::default());
//! # let _ = repo;
//! # Ok(())
//! # }
//! ```
//!
//! Most users open it through the facade, `kvgit::Db::open("postgres://...")`.
//!
//! TLS is not built in: connect over a trusted network or a local socket,
//! or through a TLS tunnel.

mod errors;
mod pool;
pub mod schema;

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, Instant};

use kvgit_core::tree::prefix_successor;
use kvgit_core::{
    Backend, CasOutcome, Durability, Error, ObjectId, Result, SharedStore, WriterTurn,
};
use parking_lot::{Condvar, Mutex};

use crate::errors::{is_retryable, redact, storage};
use crate::pool::{bad_row, Pool, Pooled};

pub use crate::schema::SCHEMA_VERSION;

/// `url` with its password (if any) replaced by `***`: what to show in
/// messages and logs.
pub fn redact_url(url: &str) -> String {
    redact(url)
}

/// At most this many bytes of objects go in one insert statement; a larger
/// batch (a bulk load) is split, each part committed on its own (an
/// interrupted load leaves only unreachable objects behind).
const MAX_BATCH_BYTES: usize = 8 << 20;

/// How many times a statement that PostgreSQL aborted for a deadlock or a
/// serialization failure is run again.
const RETRIES: usize = 5;

/// Options of [`PgBackend::open_with`].
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// The most connections this backend opens at once; callers beyond
    /// that wait for one to come back. Default: 16.
    pub max_connections: usize,
    /// The grace period sweeps use when not given one: objects written,
    /// and ref values held, within it are never swept. Default: one hour.
    /// Every transaction must finish within it.
    pub default_grace: Duration,
    /// How long to wait for a connection to the server. Default: 10 s
    /// (unless the URL sets `connect_timeout`).
    pub connect_timeout: Duration,
    /// Create kvgit's tables when the database has none (default: true).
    /// When false, opening a database without them is
    /// [`Error::Unavailable`] ("no kvgit store in this database").
    pub create: bool,
    /// How long a writer waits for its turn on a branch (see
    /// [`SharedStore::writer_turn`]) before it goes on without it. Default:
    /// 5 s.
    pub turn_wait: Duration,
    /// The shortest grace period a sweep may use on this store
    /// ([`SharedStore::min_grace`]); a sweep asked for less is refused.
    /// Default: [`MIN_GRACE`] (five minutes); never less than one second,
    /// whatever is set here. Every commit must move its ref within it of
    /// reading its snapshot; lower it only where every transaction is
    /// known to be short (tests).
    pub min_grace: Duration,
}

/// The default [`PgOptions::min_grace`]: five minutes. A commit's snapshot
/// to swap takes milliseconds when nothing waits, and what it can wait for
/// is bounded in seconds: a writer turn (5 s), the holder of one inside the
/// swap (2 s), a connection (10 s), merge-and-retry rounds, and the object
/// batches of a large commit (8 MiB each) written before its final call.
/// Five minutes leaves an order of magnitude beyond that, and still frees
/// garbage soon after it became garbage.
pub const MIN_GRACE: Duration = Duration::from_secs(300);

/// The floor of [`PgOptions::min_grace`]: one second.
const MIN_GRACE_FLOOR: Duration = Duration::from_secs(1);

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            default_grace: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(10),
            create: true,
            turn_wait: Duration::from_secs(5),
            min_grace: MIN_GRACE,
        }
    }
}

/// True if `s` names a PostgreSQL store (`postgres://` or
/// `postgresql://`), as opposed to a directory.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// A kvgit store in a PostgreSQL database. `Send + Sync`: share it (in an
/// `Arc`) between threads; each call borrows a pooled connection.
pub struct PgBackend {
    pool: Pool,
    store: String,
    options: PgOptions,
    turns: Turns,
}

/// The in-process side of writer turns (see [`SharedStore::writer_turn`]).
#[derive(Default)]
struct Turns {
    /// Refs whose turn a thread of this process holds or waits for on the
    /// server: one at a time per ref, so the others queue here and do not
    /// each tie up a connection.
    busy: Mutex<HashSet<String>>,
    freed: Condvar,
    /// Idle connections for turns. A turn holds its connection while its
    /// writer borrows pooled ones, so turns never take from the pool, which
    /// they could otherwise drain.
    idle: Mutex<Vec<postgres::Client>>,
}

/// The advisory-lock key of the writer turn on ref `name`: the first eight
/// bytes of a hash (a collision only makes two refs share turns).
fn turn_key(name: &str) -> i64 {
    let hash = ObjectId::hash(&[b"kvgit writer turn\0".as_slice(), name.as_bytes()].concat());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    i64::from_be_bytes(first)
}

/// A writer turn held: this process's claim on the ref, and the server
/// session holding the advisory lock.
struct PgTurn<'a> {
    turns: &'a Turns,
    name: String,
    key: i64,
    client: Option<postgres::Client>,
}

impl WriterTurn for PgTurn<'_> {}

impl Drop for PgTurn<'_> {
    fn drop(&mut self) {
        if let Some(mut client) = self.client.take() {
            let unlock = format!("SELECT pg_advisory_unlock({})", self.key);
            // If unlocking fails the connection is dropped, and closing the
            // session releases the lock.
            if client.batch_execute(&unlock).is_ok() {
                self.turns.idle.lock().push(client);
            }
        }
        self.turns.busy.lock().remove(&self.name);
        self.turns.freed.notify_all();
    }
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBackend")
            .field("store", &self.store)
            .finish()
    }
}

impl PgBackend {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// or libpq's `key=value` form) and creates kvgit's tables if they are
    /// missing. A bad URL, a refused connection, failed authentication or
    /// missing permissions give [`Error::Unavailable`] with one line saying
    /// which.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, PgOptions::default())
    }

    /// [`PgBackend::open`] with options.
    pub fn open_with(url: &str, options: PgOptions) -> Result<Self> {
        let store = redact(url);
        let mut config = postgres::Config::from_str(url).map_err(|e| Error::Unavailable {
            store: store.clone(),
            detail: format!(
                "not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:port/database"
            ),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("kvgit");
        }
        let mut client = Pool::connect(&config, &store)?;
        schema::ensure(&mut client, &store, options.create)?;
        let first = Pool::ready(client)?;
        Ok(PgBackend {
            pool: Pool::new(config, store.clone(), options.max_connections, first),
            store,
            options,
            turns: Turns::default(),
        })
    }

    /// The store's address, without its password.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// Closes the idle connections (they reopen on demand).
    pub fn close_idle(&self) {
        self.pool.clear();
    }

    /// The writer turn a swap of ref `name` waits for, if another process
    /// holds it: never one held (or awaited) in this process, since a
    /// thread here may be the holder, and waiting for it could close a
    /// cycle with in-process locks.
    fn turn_to_wait_for(&self, name: &str) -> Option<i64> {
        match self.turns.busy.lock().contains(name) {
            true => None,
            false => Some(turn_key(name)),
        }
    }

    /// Inserts `objects` (sorted, distinct ids) in statements of at most
    /// [`MAX_BATCH_BYTES`], each committed on its own.
    fn insert_sorted(&self, objects: &[(ObjectId, Vec<u8>)]) -> Result<()> {
        let mut start = 0;
        while start < objects.len() {
            let end = start + batch_len(&objects[start..]);
            let (ids, kinds, blobs) = columns(&objects[start..end]);
            self.run("writing objects", |c| {
                let st = c.st.put_objects.clone();
                c.client.execute(&st, &[&ids, &kinds, &blobs])
            })?;
            start = end;
        }
        Ok(())
    }

    /// Runs `f` on a pooled connection, again (on a fresh statement) when
    /// PostgreSQL aborted it for a deadlock or a serialization failure.
    fn run<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Pooled<'_>) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        // Every statement passes here: one span per backend call.
        #[cfg(feature = "tracing")]
        let _span = tracing::debug_span!("kvgit.pg", call = what).entered();
        let mut conn = self.pool.get()?;
        let mut attempt = 0;
        loop {
            match f(&mut conn) {
                Ok(v) => return Ok(v),
                Err(e) if is_retryable(&e) && attempt < RETRIES => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(attempt, error = %e, "retrying after a deadlock or serialization failure");
                    attempt += 1
                }
                Err(e) => return Err(storage(what, &e)),
            }
        }
    }
}

fn id_from(bytes: &[u8], what: &str) -> Result<ObjectId> {
    ObjectId::from_slice(bytes)
        .ok_or_else(|| bad_row(what, format!("{} bytes, not a 32-byte id", bytes.len())))
}

/// The ids in the first column of `rows` (`doing`: what the statement
/// did, `what`: what the ids are, for errors).
fn ids_from_rows(rows: &[postgres::Row], doing: &str, what: &str) -> Result<Vec<ObjectId>> {
    rows.iter()
        .map(|row| {
            let id: &[u8] = row.try_get(0).map_err(|e| storage(doing, &e))?;
            id_from(id, what)
        })
        .collect()
}

/// Sorts objects by id and drops repeated ids: concurrent batches then
/// lock rows in one order (no deadlock), and no statement hits a row
/// twice.
fn sort_distinct(objects: &mut Vec<(ObjectId, Vec<u8>)>) {
    objects.sort_unstable_by_key(|o| o.0);
    objects.dedup_by(|a, b| a.0 == b.0);
}

/// How many of `objects` (at least one, if any) fit in one statement.
fn batch_len(objects: &[(ObjectId, Vec<u8>)]) -> usize {
    let mut end = 0;
    let mut bytes = 0;
    while end < objects.len() && (end == 0 || bytes + objects[end].1.len() <= MAX_BATCH_BYTES) {
        bytes += objects[end].1.len();
        end += 1;
    }
    end
}

type Columns<'a> = (Vec<&'a [u8]>, Vec<i16>, Vec<&'a [u8]>);

/// The id, kind and bytes columns of an insert of `objects`.
fn columns(objects: &[(ObjectId, Vec<u8>)]) -> Columns<'_> {
    let ids = objects
        .iter()
        .map(|(id, _)| id.as_bytes().as_slice())
        .collect();
    let kinds = objects
        .iter()
        .map(|(_, b)| b.get(1).copied().map_or(0, i16::from))
        .collect();
    let blobs = objects.iter().map(|(_, b)| b.as_slice()).collect();
    (ids, kinds, blobs)
}

/// The `(swapped, actual)` row of a swap as a [`CasOutcome`].
fn cas_outcome(row: &postgres::Row, what: &str) -> Result<CasOutcome> {
    let swapped: bool = row.try_get(0).map_err(|e| storage(what, &e))?;
    if swapped {
        return Ok(CasOutcome::Swapped);
    }
    let actual: Option<&[u8]> = row.try_get(1).map_err(|e| storage(what, &e))?;
    let actual = actual.map(|a| id_from(a, "ref target")).transpose()?;
    Ok(CasOutcome::Mismatch { actual })
}

/// Feeds `(id, size)` rows to `visit` until they end or it says stop.
fn visit_object_rows(
    mut rows: postgres::RowIter<'_>,
    visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
) -> Result<()> {
    use postgres::fallible_iterator::FallibleIterator;
    while let Some(row) = rows.next().map_err(|e| storage("listing objects", &e))? {
        let id: &[u8] = row.try_get(0).map_err(|e| storage("listing objects", &e))?;
        let size: i64 = row.try_get(1).map_err(|e| storage("listing objects", &e))?;
        let id = id_from(id, "object id")?;
        if !visit(id, u64::try_from(size).unwrap_or(0))? {
            break;
        }
    }
    Ok(())
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Backend for PgBackend {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        let key: &[u8] = id.as_bytes();
        let row = self.run("reading an object", |c| {
            let st = c.st.get_object.clone();
            c.client.query_opt(&st, &[&key])
        })?;
        match row {
            None => Ok(None),
            Some(row) => row
                .try_get::<_, Vec<u8>>(0)
                .map(Some)
                .map_err(|e| storage("reading an object", &e)),
        }
    }

    fn has_object(&self, id: &ObjectId) -> Result<bool> {
        let key: &[u8] = id.as_bytes();
        let row = self.run("looking up an object", |c| {
            let st = c.st.has_object.clone();
            c.client.query_opt(&st, &[&key])
        })?;
        Ok(row.is_some())
    }

    fn put_objects(&self, mut objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        sort_distinct(&mut objects);
        self.insert_sorted(&objects)
    }

    fn put_objects_and_cas(
        &self,
        mut objects: Vec<(ObjectId, Vec<u8>)>,
        refs: &[ObjectId],
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        sort_distinct(&mut objects);
        // Every part but the last (a bulk load has several) goes first, on
        // its own; the last travels with the swap.
        let mut last = 0;
        loop {
            let end = last + batch_len(&objects[last..]);
            if end >= objects.len() {
                break;
            }
            last = end;
        }
        self.insert_sorted(&objects[..last])?;
        // The final call checks what the commit refers to, and the parts
        // written before it: a sweep may have deleted any of them since.
        let mut held: Vec<&[u8]> = refs
            .iter()
            .chain(objects[..last].iter().map(|(id, _)| id))
            .map(|id| id.as_bytes().as_slice())
            .collect();
        held.sort_unstable();
        held.dedup();
        let fresh = micros(self.min_grace() / 2);
        let (ids, kinds, blobs) = columns(&objects[last..]);
        let expected: Option<&[u8]> = expected.map(|id| id.as_bytes().as_slice());
        let new: Option<&[u8]> = new.map(|id| id.as_bytes().as_slice());
        let turn = self.turn_to_wait_for(name);
        let row = self.run("committing", |c| {
            let st = c.st.commit.clone();
            c.client.query_one(
                &st,
                &[
                    &ids, &kinds, &blobs, &held, &fresh, &name, &expected, &new, &turn,
                ],
            )
        })?;
        cas_outcome(&row, "committing")
    }

    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
        sorted.sort_unstable();
        self.run("deleting objects", |c| {
            let st = c.st.delete_objects.clone();
            c.client.execute(&st, &[&sorted])
        })?;
        Ok(())
    }

    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        let mut conn = self.pool.get()?;
        let st = conn.st.list_objects.clone();
        let params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
        let rows = conn
            .client
            .query_raw(&st, params)
            .map_err(|e| storage("listing objects", &e))?;
        visit_object_rows(rows, visit)
    }

    fn for_each_object_in(
        &self,
        start: &ObjectId,
        end: Option<&ObjectId>,
        visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
    ) -> Result<()> {
        // Past every 32-byte id: bytea compares bytewise, then by length.
        const PAST_ALL: [u8; 33] = [0xff; 33];
        let start: &[u8] = start.as_bytes();
        let end: &[u8] = end.map_or(PAST_ALL.as_slice(), |e| e.as_bytes().as_slice());
        let mut conn = self.pool.get()?;
        let st = conn.st.list_objects_in.clone();
        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&start, &end];
        let rows = conn
            .client
            .query_raw(&st, params)
            .map_err(|e| storage("listing objects", &e))?;
        visit_object_rows(rows, visit)
    }

    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        let row = self.run("reading a ref", |c| {
            let st = c.st.get_ref.clone();
            c.client.query_opt(&st, &[&name])
        })?;
        match row {
            None => Ok(None),
            Some(row) => {
                let target: &[u8] = row.try_get(0).map_err(|e| storage("reading a ref", &e))?;
                id_from(target, "ref target").map(Some)
            }
        }
    }

    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        let expected: Option<&[u8]> = expected.map(|id| id.as_bytes().as_slice());
        let new: Option<&[u8]> = new.map(|id| id.as_bytes().as_slice());
        let turn = self.turn_to_wait_for(name);
        let row = self.run("moving a ref", |c| {
            let st = c.st.cas_ref.clone();
            c.client.query_one(&st, &[&name, &expected, &new, &turn])
        })?;
        cas_outcome(&row, "moving a ref")
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        let rows = self.run("listing refs", |c| {
            let st = c.st.list_refs.clone();
            c.client.query(&st, &[&prefix])
        })?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get(0).map_err(|e| storage("listing refs", &e))?;
                let target: &[u8] = row.try_get(1).map_err(|e| storage("listing refs", &e))?;
                Ok((name, id_from(target, "ref target")?))
            })
            .collect()
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let row = self.run("reading metadata", |c| {
            let st = c.st.get_meta.clone();
            c.client.query_opt(&st, &[&key])
        })?;
        row.map(|r| {
            r.try_get::<_, Vec<u8>>(0)
                .map_err(|e| storage("reading metadata", &e))
        })
        .transpose()
    }

    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // The last write of a key wins; sorted keys lock in one order.
        let mut latest: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = Default::default();
        for (k, v) in entries {
            latest.insert(k, v);
        }
        let mut keys: Vec<&[u8]> = Vec::new();
        let mut values: Vec<&[u8]> = Vec::new();
        let mut deletes: Vec<&[u8]> = Vec::new();
        for (k, v) in &latest {
            match v {
                Some(v) => {
                    keys.push(k);
                    values.push(v);
                }
                None => deletes.push(k),
            }
        }
        self.run("writing metadata", |c| {
            let st = c.st.put_meta.clone();
            c.client.execute(&st, &[&keys, &values, &deletes])
        })?;
        Ok(())
    }

    fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_successor(prefix);
        let end: Option<&[u8]> = end.as_deref();
        let rows = self.run("scanning metadata", |c| {
            let st = c.st.scan_meta.clone();
            c.client.query(&st, &[&prefix, &end])
        })?;
        rows.iter()
            .map(|row| {
                let k: Vec<u8> = row
                    .try_get(0)
                    .map_err(|e| storage("scanning metadata", &e))?;
                let v: Vec<u8> = row
                    .try_get(1)
                    .map_err(|e| storage("scanning metadata", &e))?;
                Ok((k, v))
            })
            .collect()
    }

    fn flush(&self, _durability: Durability) -> Result<()> {
        // Every statement committed before its call returned.
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        let row = self.run("measuring the store", |c| {
            let st = c.st.size.clone();
            c.client.query_one(&st, &[])
        })?;
        let size: i64 = row
            .try_get(0)
            .map_err(|e| storage("measuring the store", &e))?;
        Ok(u64::try_from(size).unwrap_or(0))
    }

    fn shared(&self) -> Option<&dyn SharedStore> {
        Some(self)
    }
}

impl SharedStore for PgBackend {
    fn default_grace(&self) -> Duration {
        self.options.default_grace
    }

    fn min_grace(&self) -> Duration {
        self.options.min_grace.max(MIN_GRACE_FLOOR)
    }

    fn object_kinds(&self, ids: &[ObjectId]) -> Result<Vec<(ObjectId, u8)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
        let rows = self.run("reading object kinds", |c| {
            let st = c.st.object_kinds.clone();
            c.client.query(&st, &[&keys])
        })?;
        rows.iter()
            .map(|row| {
                let id: &[u8] = row
                    .try_get(0)
                    .map_err(|e| storage("reading object kinds", &e))?;
                let kind: i16 = row
                    .try_get(1)
                    .map_err(|e| storage("reading object kinds", &e))?;
                Ok((id_from(id, "object id")?, u8::try_from(kind).unwrap_or(0)))
            })
            .collect()
    }

    fn delete_objects_written_before(
        &self,
        ids: &[ObjectId],
        age: Duration,
    ) -> Result<Vec<ObjectId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sorted: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
        sorted.sort_unstable();
        let age = micros(age);
        let rows = self.run("deleting objects", |c| {
            let st = c.st.delete_written_before.clone();
            c.client.query(&st, &[&sorted, &age])
        })?;
        ids_from_rows(&rows, "deleting objects", "object id")
    }

    fn recent_ref_targets(&self, within: Duration) -> Result<Vec<ObjectId>> {
        let within = micros(within);
        let rows = self.run("reading the ref log", |c| {
            let st = c.st.recent_ref_targets.clone();
            c.client.query(&st, &[&within])
        })?;
        ids_from_rows(&rows, "reading the ref log", "ref log target")
    }

    fn prune_ref_log(&self, older_than: Duration) -> Result<u64> {
        let age = micros(older_than);
        self.run("pruning the ref log", |c| {
            let st = c.st.prune_ref_log.clone();
            c.client.execute(&st, &[&age])
        })
    }

    fn put_meta_max(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut latest: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
        for (k, v) in entries {
            let e = latest.entry(k).or_default();
            if v > *e {
                *e = v;
            }
        }
        let keys: Vec<&[u8]> = latest.keys().map(Vec::as_slice).collect();
        let values: Vec<&[u8]> = latest.values().map(Vec::as_slice).collect();
        self.run("writing metadata", |c| {
            let st = c.st.put_meta_max.clone();
            c.client.execute(&st, &[&keys, &values])
        })?;
        Ok(())
    }

    fn writer_turn(&self, name: &str) -> Result<Option<Box<dyn WriterTurn + '_>>> {
        let deadline = Instant::now() + self.options.turn_wait;
        {
            let mut busy = self.turns.busy.lock();
            while busy.contains(name) {
                if self.turns.freed.wait_until(&mut busy, deadline).timed_out() {
                    return Ok(None);
                }
            }
            busy.insert(name.to_owned());
        }
        // From here the claim is released by the guard's drop, whatever
        // happens.
        let mut turn = PgTurn {
            turns: &self.turns,
            name: name.to_owned(),
            key: turn_key(name),
            client: None,
        };
        let idle = self.turns.idle.lock().pop();
        let mut client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => self.pool.connect_unpooled()?,
        };
        // Rounded up: the server counts whole milliseconds.
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .as_micros()
            .div_ceil(1000);
        // Waits in the server's queue (first come, first served) for at
        // most the rest of the wait limit.
        let lock = format!(
            "SET lock_timeout = {}; SELECT pg_advisory_lock({})",
            wait.max(1),
            turn.key
        );
        match client.batch_execute(&lock) {
            Ok(()) => {
                turn.client = Some(client);
                Ok(Some(Box::new(turn)))
            }
            Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                self.turns.idle.lock().push(client);
                Ok(None)
            }
            Err(e) => Err(storage("waiting for a writer turn", &e)),
        }
    }
}
