//! The schema, created on first use and versioned.
//!
//! ```text
//! kvgit_schema  (version int)                         one row: the schema version
//! kvgit_objects (id bytea PK, kind int2, bytes bytea,  content-addressed objects
//!                written timestamptz)                  and when each was last written
//! kvgit_refs    (name text COLLATE "C" PK, target bytea)
//! kvgit_reflog  (seq bigserial PK, name text, target bytea, moved timestamptz)
//!                                                     what a ref held until it moved
//! kvgit_meta    (key bytea PK, value bytea)           bookkeeping (access recency)
//! kvgit_cas_ref(name, expected, new, turn) -> (swapped, actual)
//!                                                     the ref compare-and-swap
//! kvgit_commit(ids, kinds, bytes, refs, fresh, name, expected, new, turn)
//!   -> (swapped, actual)                              a commit's objects, the check
//!                                                     of what they refer to, then
//!                                                     the swap, in one transaction
//! kvgit_hold_objects(refs, fresh)                     that check: lock, refresh,
//!                                                     raise KV001 if one is missing
//! ```
//!
//! Versions: 1 had a three-argument `kvgit_cas_ref`; 2 adds the `turn`
//! argument (writers let the holder of a ref's writer turn go first, see
//! [`kvgit_core::SharedStore::writer_turn`]); 3 adds `kvgit_commit` (a
//! commit's objects and its swap in one round trip) and `kvgit_wait_turn`;
//! 4 adds `kvgit_hold_objects` and the nine-argument `kvgit_commit`, which
//! checks that every object a commit refers to is present (and keeps a
//! concurrent sweep from deleting it) before it swaps.
//! Opening an older store upgrades it in place (which needs the CREATE
//! privilege once); the old functions stay, so processes of an older build
//! keep working until they restart.
//!
//! The tables live in the first schema of the connection's `search_path`
//! (normally `public`); give each store its own database, or its own
//! schema through the URL (`?options=-csearch_path%3Dmy_store`).

use kvgit_core::{Error, Result};
use postgres::Client;

use crate::errors::{connect_error, describe, is_permission, is_undefined_table};

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i32 = 4;

/// A key for `pg_advisory_xact_lock`, so that two processes creating the
/// schema at once take turns (`CREATE ... IF NOT EXISTS` alone can still
/// fail on a concurrent creation).
const SCHEMA_LOCK: i64 = 0x6b76_6769_7400_0001;

const CREATE: &str = r#"
CREATE TABLE IF NOT EXISTS kvgit_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS kvgit_objects (
    id      bytea PRIMARY KEY,
    kind    smallint NOT NULL,
    bytes   bytea NOT NULL,
    written timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS kvgit_refs (
    name   text COLLATE "C" PRIMARY KEY,
    target bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS kvgit_reflog (
    seq    bigserial PRIMARY KEY,
    name   text COLLATE "C" NOT NULL,
    target bytea NOT NULL,
    moved  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS kvgit_reflog_moved ON kvgit_reflog (moved);
CREATE TABLE IF NOT EXISTS kvgit_meta (
    key   bytea PRIMARY KEY,
    value bytea NOT NULL
);
-- The ref compare-and-swap, one statement for the client. The row lock
-- (FOR UPDATE) serialises racing swaps on one ref, and under READ COMMITTED
-- each statement here sees the latest committed state, so a loser reports
-- the value that beat it. A successful swap logs what the ref held.
--
-- p_turn: the advisory-lock key of the ref's writer turn, or NULL. A writer
-- holding the turn holds that lock exclusively and passes NULL; everyone
-- else waits here (at most two seconds, then goes on) until the holder has
-- swapped, so a writer that lost races and took the turn cannot lose again.
CREATE OR REPLACE FUNCTION kvgit_wait_turn(p_turn bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    timeout text;
BEGIN
    -- The fast path takes the shared lock without waiting; only when a
    -- holder is there does the wait (a subtransaction) begin.
    IF p_turn IS NOT NULL AND NOT pg_try_advisory_xact_lock_shared(p_turn) THEN
        timeout := current_setting('lock_timeout');
        PERFORM set_config('lock_timeout', '2s', true);
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(p_turn);
        EXCEPTION WHEN lock_not_available THEN
            NULL; -- the holder is stuck: go on without waiting for it
        END;
        PERFORM set_config('lock_timeout', timeout, true);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION kvgit_cas_ref(
    p_name text, p_expected bytea, p_new bytea, p_turn bigint)
RETURNS TABLE (swapped boolean, actual bytea)
LANGUAGE plpgsql AS $$
DECLARE
    cur bytea;
BEGIN
    PERFORM kvgit_wait_turn(p_turn);
    LOOP
        SELECT r.target INTO cur FROM kvgit_refs r WHERE r.name = p_name FOR UPDATE;
        IF FOUND THEN
            IF cur IS DISTINCT FROM p_expected THEN
                RETURN QUERY SELECT false, cur;
                RETURN;
            END IF;
            IF p_new IS NULL THEN
                DELETE FROM kvgit_refs WHERE name = p_name;
            ELSE
                UPDATE kvgit_refs SET target = p_new WHERE name = p_name;
            END IF;
            INSERT INTO kvgit_reflog (name, target) VALUES (p_name, cur);
            RETURN QUERY SELECT true, p_new;
            RETURN;
        END IF;
        -- The ref does not exist.
        IF p_expected IS NOT NULL THEN
            RETURN QUERY SELECT false, NULL::bytea;
            RETURN;
        END IF;
        IF p_new IS NULL THEN
            RETURN QUERY SELECT true, NULL::bytea;
            RETURN;
        END IF;
        INSERT INTO kvgit_refs (name, target) VALUES (p_name, p_new)
            ON CONFLICT (name) DO NOTHING;
        IF FOUND THEN
            RETURN QUERY SELECT true, p_new;
            RETURN;
        END IF;
        -- A concurrent creator won: go round and report its value.
    END LOOP;
END
$$;
-- A commit's last step in one call and one transaction: write its objects
-- (sorted, distinct ids), then swap the ref as kvgit_cas_ref does. The
-- objects are written whether or not the swap succeeds (a loser merges
-- onto the new head from them). Locks are taken in one order: the turn
-- (waited for holding nothing), the ref's row, then the objects' rows in
-- id order; so a commit never holds an object's row while it waits for a
-- turn, whose holder may need that row.
CREATE OR REPLACE FUNCTION kvgit_commit(
    p_ids bytea[], p_kinds smallint[], p_bytes bytea[],
    p_name text, p_expected bytea, p_new bytea, p_turn bigint)
RETURNS TABLE (swapped boolean, actual bytea)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kvgit_wait_turn(p_turn);
    PERFORM 1 FROM kvgit_refs r WHERE r.name = p_name FOR UPDATE;
    INSERT INTO kvgit_objects (id, kind, bytes)
        SELECT * FROM unnest(p_ids, p_kinds, p_bytes)
        ON CONFLICT (id) DO UPDATE SET written = now();
    RETURN QUERY SELECT * FROM kvgit_cas_ref(p_name, p_expected, p_new, NULL);
END
$$;
-- What a commit refers to without containing it must be present when its
-- ref moves, and stay so: a sweep in another process may be deleting it
-- right now. Every present row of p_refs is locked (FOR KEY SHARE, in id
-- order) so that a concurrent DELETE waits for this transaction; those
-- last written more than p_fresh microseconds ago get a new write time, so
-- that a waiting sweep's DELETE (READ COMMITTED: it re-checks the row it
-- waited for) finds them young and keeps them. A row that a sweep deleted
-- first is gone once the lock is had: KV001, naming it, and the whole
-- transaction (objects and swap) rolls back. p_fresh is half the store's
-- minimum grace period, so a row left as it was is young for any sweep.
CREATE OR REPLACE FUNCTION kvgit_hold_objects(p_refs bytea[], p_fresh bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    missing bytea;
BEGIN
    IF p_refs IS NULL OR cardinality(p_refs) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM kvgit_objects o WHERE o.id = ANY(p_refs) ORDER BY o.id FOR KEY SHARE;
    UPDATE kvgit_objects SET written = clock_timestamp()
        WHERE id = ANY(p_refs)
        AND written < clock_timestamp() - p_fresh * interval '1 microsecond';
    SELECT r INTO missing FROM unnest(p_refs) r
        WHERE NOT EXISTS (SELECT 1 FROM kvgit_objects o WHERE o.id = r) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'KV001',
            MESSAGE = 'an object the commit refers to is missing (swept)',
            DETAIL = encode(missing, 'hex');
    END IF;
END
$$;
-- kvgit_commit with the check: the turn, the ref's row, the new objects,
-- then what they refer to (kvgit_hold_objects), then the swap.
CREATE OR REPLACE FUNCTION kvgit_commit(
    p_ids bytea[], p_kinds smallint[], p_bytes bytea[], p_refs bytea[], p_fresh bigint,
    p_name text, p_expected bytea, p_new bytea, p_turn bigint)
RETURNS TABLE (swapped boolean, actual bytea)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kvgit_wait_turn(p_turn);
    PERFORM 1 FROM kvgit_refs r WHERE r.name = p_name FOR UPDATE;
    INSERT INTO kvgit_objects (id, kind, bytes)
        SELECT * FROM unnest(p_ids, p_kinds, p_bytes)
        ON CONFLICT (id) DO UPDATE SET written = now();
    PERFORM kvgit_hold_objects(p_refs, p_fresh);
    RETURN QUERY SELECT * FROM kvgit_cas_ref(p_name, p_expected, p_new, NULL);
END
$$;
"#;

/// Makes sure the schema exists and is one this build understands.
/// Read-only when it is already in place, so a role with only
/// SELECT/INSERT/UPDATE/DELETE privileges can open an existing store.
pub(crate) fn ensure(client: &mut Client, store: &str, may_create: bool) -> Result<()> {
    match stored_version(client) {
        Ok(Some(v)) if (1..SCHEMA_VERSION).contains(&v) => {
            return upgrade(client, store, v);
        }
        Ok(Some(v)) => return check(v, store),
        Ok(None) => {}
        Err(e) if is_undefined_table(&e) => {}
        Err(e) => return Err(open_error(store, "reading the schema version", &e)),
    }
    if !may_create {
        return Err(Error::Unavailable {
            store: store.to_string(),
            detail: "no kvgit store in this database (its tables are missing); create one \
                     with `kvgit init` or `Db::open`"
                .to_string(),
        });
    }
    create(client).map_err(|e| open_error(store, "creating kvgit's tables", &e))?;
    match stored_version(client) {
        Ok(Some(v)) => check(v, store),
        Ok(None) => Err(Error::Unavailable {
            store: store.to_string(),
            detail: "the schema was created but records no version".to_string(),
        }),
        Err(e) => Err(open_error(store, "reading the schema version", &e)),
    }
}

/// Brings a store of an older version up to this one (the creation script
/// is idempotent and only adds).
fn upgrade(client: &mut Client, store: &str, from: i32) -> Result<()> {
    if let Err(e) = create(client) {
        let mut err = open_error(store, "upgrading the schema", &e);
        if let Error::Unavailable { detail, .. } = &mut err {
            *detail = format!(
                "the store has schema version {from} and needs upgrading to {SCHEMA_VERSION} \
                 (open it once as a role that may create functions): {detail}"
            );
        }
        return Err(err);
    }
    match stored_version(client) {
        Ok(Some(v)) => check(v, store),
        Ok(None) => Err(Error::Unavailable {
            store: store.to_string(),
            detail: "the schema records no version".to_string(),
        }),
        Err(e) => Err(open_error(store, "reading the schema version", &e)),
    }
}

fn stored_version(client: &mut Client) -> std::result::Result<Option<i32>, postgres::Error> {
    let row = client.query_one("SELECT max(version) FROM kvgit_schema", &[])?;
    row.try_get::<_, Option<i32>>(0)
}

fn create(client: &mut Client) -> std::result::Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    tx.batch_execute(CREATE)?;
    let version: Option<i32> = tx
        .query_one("SELECT max(version) FROM kvgit_schema", &[])?
        .try_get(0)?;
    if version.is_none_or(|v| v < SCHEMA_VERSION) {
        tx.execute(
            "INSERT INTO kvgit_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )?;
    }
    tx.commit()
}

fn check(version: i32, store: &str) -> Result<()> {
    if version == SCHEMA_VERSION {
        Ok(())
    } else if version > SCHEMA_VERSION {
        Err(Error::Unavailable {
            store: store.to_string(),
            detail: format!(
                "the store has schema version {version}, newer than this build's \
                 {SCHEMA_VERSION}: upgrade kvgit"
            ),
        })
    } else {
        Err(Error::Unavailable {
            store: store.to_string(),
            detail: format!(
                "the store has schema version {version}, which this build \
                 ({SCHEMA_VERSION}) cannot read"
            ),
        })
    }
}

fn open_error(store: &str, doing: &str, e: &postgres::Error) -> Error {
    if is_permission(e) {
        Error::Unavailable {
            store: store.to_string(),
            detail: format!("permission denied while {doing}: {}", describe(e)),
        }
    } else {
        let mut err = connect_error(store, e);
        if let Error::Unavailable { detail, .. } = &mut err {
            *detail = format!("{doing}: {detail}");
        }
        err
    }
}
