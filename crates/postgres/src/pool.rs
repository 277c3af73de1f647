//! A small blocking connection pool with a prepared-statement set per
//! connection.
//!
//! Connections are opened on demand up to a maximum; a thread that finds
//! none idle and the maximum reached waits for one to come back. A
//! connection that the server closed (or that broke mid-statement) is
//! dropped instead of returned, and the next request opens a fresh one, so
//! a restarted server costs one failed call per broken connection.

use std::time::Duration;

use kvgit_core::{Error, Result};
use parking_lot::{Condvar, Mutex};
use postgres::{Client, NoTls, Statement};

use crate::errors::{connect_error, storage};

/// The statements every operation uses, prepared once per connection.
pub(crate) struct Statements {
    pub get_object: Statement,
    pub has_object: Statement,
    pub put_objects: Statement,
    pub delete_objects: Statement,
    pub delete_written_before: Statement,
    pub list_objects: Statement,
    pub list_objects_in: Statement,
    pub get_ref: Statement,
    pub cas_ref: Statement,
    pub commit: Statement,
    pub object_kinds: Statement,
    pub list_refs: Statement,
    pub get_meta: Statement,
    pub put_meta: Statement,
    pub put_meta_max: Statement,
    pub scan_meta: Statement,
    pub recent_ref_targets: Statement,
    pub prune_ref_log: Statement,
    pub size: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> std::result::Result<Self, postgres::Error> {
        Ok(Statements {
            get_object: client.prepare("SELECT bytes FROM kvgit_objects WHERE id = $1")?,
            has_object: client.prepare("SELECT 1 FROM kvgit_objects WHERE id = $1")?,
            // Ids arrive sorted and distinct: concurrent batches lock rows
            // in the same order (no deadlock), and no row is hit twice.
            put_objects: client.prepare(
                "INSERT INTO kvgit_objects (id, kind, bytes) \
                 SELECT * FROM unnest($1::bytea[], $2::int2[], $3::bytea[]) \
                 ON CONFLICT (id) DO UPDATE SET written = now()",
            )?,
            delete_objects: client.prepare("DELETE FROM kvgit_objects WHERE id = ANY($1::bytea[])")?,
            delete_written_before: client.prepare(
                "DELETE FROM kvgit_objects WHERE id = ANY($1::bytea[]) \
                 AND written < now() - $2::int8 * interval '1 microsecond' RETURNING id",
            )?,
            list_objects: client.prepare(
                "SELECT id, octet_length(bytes)::int8 FROM kvgit_objects ORDER BY id",
            )?,
            list_objects_in: client.prepare(
                "SELECT id, octet_length(bytes)::int8 FROM kvgit_objects \
                 WHERE id >= $1 AND id < $2 ORDER BY id",
            )?,
            get_ref: client.prepare("SELECT target FROM kvgit_refs WHERE name = $1")?,
            cas_ref: client.prepare(
                "SELECT swapped, actual FROM kvgit_cas_ref($1, $2, $3, $4::int8)",
            )?,
            // Ids sorted and distinct, as for put_objects.
            // Refs (the fourth) sorted and distinct too.
            commit: client.prepare(
                "SELECT swapped, actual FROM kvgit_commit(\
                 $1::bytea[], $2::int2[], $3::bytea[], $4::bytea[], $5::int8, \
                 $6, $7, $8, $9::int8)",
            )?,
            object_kinds: client
                .prepare("SELECT id, kind FROM kvgit_objects WHERE id = ANY($1::bytea[])")?,
            list_refs: client.prepare(
                "SELECT name, target FROM kvgit_refs WHERE starts_with(name, $1) ORDER BY name",
            )?,
            get_meta: client.prepare("SELECT value FROM kvgit_meta WHERE key = $1")?,
            put_meta: client.prepare(
                "WITH gone AS (DELETE FROM kvgit_meta WHERE key = ANY($3::bytea[])) \
                 INSERT INTO kvgit_meta (key, value) \
                 SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            )?,
            put_meta_max: client.prepare(
                "INSERT INTO kvgit_meta (key, value) \
                 SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = GREATEST(kvgit_meta.value, EXCLUDED.value)",
            )?,
            scan_meta: client.prepare(
                "SELECT key, value FROM kvgit_meta \
                 WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key",
            )?,
            recent_ref_targets: client.prepare(
                "SELECT DISTINCT target FROM kvgit_reflog \
                 WHERE moved >= now() - $1::int8 * interval '1 microsecond'",
            )?,
            prune_ref_log: client.prepare(
                "DELETE FROM kvgit_reflog WHERE moved < now() - $1::int8 * interval '1 microsecond'",
            )?,
            size: client.prepare(
                "SELECT (pg_total_relation_size('kvgit_objects') + pg_total_relation_size('kvgit_refs') \
                 + pg_total_relation_size('kvgit_reflog') + pg_total_relation_size('kvgit_meta'))::int8",
            )?,
        })
    }
}

/// One connection and its prepared statements.
pub(crate) struct Conn {
    pub client: Client,
    pub st: Statements,
}

struct State {
    idle: Vec<Conn>,
    /// Connections open, idle or lent out.
    open: usize,
}

pub(crate) struct Pool {
    config: postgres::Config,
    /// The store's address for messages (no password).
    store: String,
    max: usize,
    state: Mutex<State>,
    returned: Condvar,
}

impl Pool {
    pub fn new(config: postgres::Config, store: String, max: usize, first: Conn) -> Self {
        Pool {
            config,
            store,
            max: max.max(1),
            state: Mutex::new(State {
                idle: vec![first],
                open: 1,
            }),
            returned: Condvar::new(),
        }
    }

    /// Opens a connection and prepares its statements.
    pub fn connect(config: &postgres::Config, store: &str) -> Result<Client> {
        config.connect(NoTls).map_err(|e| connect_error(store, &e))
    }

    /// A new connection outside the pool (for writer turns, which hold one
    /// while their writer borrows pooled ones).
    pub fn connect_unpooled(&self) -> Result<Client> {
        Self::connect(&self.config, &self.store)
    }

    /// Prepares the statement set on a connection whose schema is in place.
    pub fn ready(client: Client) -> Result<Conn> {
        let mut client = client;
        let st =
            Statements::prepare(&mut client).map_err(|e| storage("preparing statements", &e))?;
        Ok(Conn { client, st })
    }

    /// An idle connection, a new one, or (at the maximum) the next one
    /// returned.
    pub fn get(&self) -> Result<Pooled<'_>> {
        let mut state = self.state.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.max {
                state.open += 1;
                break;
            }
            // Bounded wait, so a lost wake-up can never hang a caller.
            self.returned
                .wait_for(&mut state, Duration::from_millis(100));
        }
        drop(state);
        let opened = Self::connect(&self.config, &self.store).and_then(Self::ready);
        match opened {
            Ok(conn) => Ok(Pooled {
                pool: self,
                conn: Some(conn),
            }),
            Err(e) => {
                self.state.lock().open -= 1;
                self.returned.notify_one();
                Err(e)
            }
        }
    }

    /// Closes every idle connection (lent-out ones close when returned
    /// after the pool is dropped).
    pub fn clear(&self) {
        let mut state = self.state.lock();
        let n = state.idle.len();
        state.idle.clear();
        state.open -= n;
    }
}

/// A connection lent out by the pool; returned when dropped.
pub(crate) struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut state = self.pool.state.lock();
        if conn.client.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        drop(state);
        self.pool.returned.notify_one();
    }
}

/// Errors that only a bug or a hostile server produce.
pub(crate) fn bad_row(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Storage(format!(
        "PostgreSQL returned an unexpected {what}: {detail}"
    ))
}
