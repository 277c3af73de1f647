//! kvgit on PostgreSQL beside kvgit on sled, through the `kvgit` facade,
//! in one run: a durable single-key commit (`pg_commit`), a point read at
//! the head with a warm node cache (`pg_get`), the same read from a
//! snapshot taken once (`pg_get_snapshot`: no ref read), and the read with
//! the node cache off (`pg_get_cold`: every node fetched from the store).
//! Ids are `workload/backend/N`, backend `sled` or `postgres`; see
//! `benches/README.md`.
//!
//! The server: `KVGIT_BENCH_PG_URL` if set, otherwise the throwaway cluster
//! of `scripts/pg-test-server.sh` (started if needed, with fsync on unless
//! `KVGIT_PG_FSYNC` says otherwise). Each size gets a fresh database on it,
//! created with `CREATE DATABASE` and dropped when the size is done.

mod common;

use std::cell::OnceCell;
use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput};
use kvgit::{Branch, CommitId, Db, Durability, Snapshot};
use kvgit_benches::baseline::Baseline;
use kvgit_benches::{
    entries, key, logical_bytes, parse_size, size_label, temp_dir, XorShift, KEY_LEN, REF,
    RESET_EVERY,
};
use kvgit_core::{Backend, CasOutcome, CommitSpec, ObjectId, SharedStore};
use tempfile::TempDir;

use common::{small_group, test_mode};

/// Prefix of the lines this target prints besides criterion's own.
const TAG: &str = "kvgit-benches:";

/// Seeds of the workloads' random choices (the data set has its own).
const COMMIT_SEED: u64 = 11;
const GET_SEED: u64 = 12;
const PROBE_SEED: u64 = 13;

/// Operations of each kind counted by the probe printed after a store is
/// built.
const PROBE_OPS: usize = 64;

/// The facade's name of [`REF`].
const BRANCH: &str = "main";

/// Sizes run when `KVGIT_BENCH_SIZES` is not set (test mode: 10k only).
const DEFAULT_SIZES: [usize; 2] = [10_000, 100_000];

/// Where a store lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// kvgit on sled (`Db::open(dir)`, default options).
    Sled,
    /// kvgit on PostgreSQL (`Db::open("postgres://...")`).
    Postgres,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Sled, Kind::Postgres];

    fn name(self) -> &'static str {
        match self {
            Kind::Sled => "sled",
            Kind::Postgres => "postgres",
        }
    }
}

/// The backends to run: those of `KVGIT_BENCH_BACKENDS` this target knows
/// (`sled`, `postgres`; the suite's `memory` and `raw_sled` are ignored
/// here), or both.
fn kinds_from_env() -> Vec<Kind> {
    match std::env::var("KVGIT_BENCH_BACKENDS") {
        Ok(list) if !list.trim().is_empty() => {
            let mut kinds = Vec::new();
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match Kind::ALL.into_iter().find(|k| k.name() == name) {
                    Some(kind) => kinds.push(kind),
                    None if name == "memory" || name == "raw_sled" => {}
                    None => panic!(
                        "KVGIT_BENCH_BACKENDS: unknown backend {name:?} \
                         (memory, sled, raw_sled, postgres)"
                    ),
                }
            }
            kinds
        }
        _ => Kind::ALL.to_vec(),
    }
}

/// `KVGIT_BENCH_SIZES` if set; otherwise 10k in test mode, else
/// [`DEFAULT_SIZES`].
fn sizes() -> Vec<usize> {
    match std::env::var("KVGIT_BENCH_SIZES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                parse_size(s).unwrap_or_else(|| {
                    panic!("KVGIT_BENCH_SIZES: {s:?} is not a size like 10k, 100k, 1M or 5000")
                })
            })
            .collect(),
        _ if test_mode() => vec![10_000],
        _ => DEFAULT_SIZES.to_vec(),
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let kinds = kinds_from_env();
    let server = OnceCell::new();
    for n in sizes() {
        let fx = Fixtures::new(n, &server);
        pg_get(&mut c, &fx, &kinds);
        pg_get_snapshot(&mut c, &fx, &kinds);
        pg_get_cold(&mut c, &fx, &kinds);
        pg_commit(&mut c, &fx, &kinds);
        fx.close();
    }
    c.final_summary();
    if let Some(server) = server.get() {
        server.farewell();
    }
}

// ---------------------------------------------------------------------------
// The server and its databases.

/// The PostgreSQL server the run uses.
struct PgServer {
    /// A URL of the server (its database is used only to create and drop
    /// the bench's databases).
    admin_url: String,
    /// True if it came from `scripts/pg-test-server.sh`.
    from_script: bool,
}

impl PgServer {
    /// `KVGIT_BENCH_PG_URL`, or the throwaway cluster of
    /// `scripts/pg-test-server.sh` (started if it is not running). Prints
    /// the server's version and whether commits are durable on it.
    fn get() -> Self {
        let (admin_url, from_script) = match std::env::var("KVGIT_BENCH_PG_URL") {
            Ok(url) if !url.trim().is_empty() => (url.trim().to_string(), false),
            _ => (start_test_server(), true),
        };
        let server = PgServer {
            admin_url,
            from_script,
        };
        let mut client = server.admin();
        let show = |client: &mut postgres::Client, what: &str| -> String {
            client
                .query_one(&format!("SHOW {what}"), &[])
                .and_then(|row| row.try_get::<_, String>(0))
                .unwrap_or_else(|e| format!("unknown ({e})"))
        };
        let version = show(&mut client, "server_version");
        let fsync = show(&mut client, "fsync");
        let sync_commit = show(&mut client, "synchronous_commit");
        let durable = fsync == "on" && sync_commit != "off";
        eprintln!(
            "{TAG} postgres: server {} ({}), PostgreSQL {version}, fsync={fsync}, \
             synchronous_commit={sync_commit}: durable commits {}",
            kvgit::advanced::redact_url(&server.admin_url),
            if from_script {
                "scripts/pg-test-server.sh"
            } else {
                "KVGIT_BENCH_PG_URL"
            },
            if durable {
                "are durable (WAL flushed to disk before the commit returns)"
            } else {
                "are NOT durable against a power loss (fsync off on this server): \
                 pg_commit/postgres is faster than it would be in production"
            }
        );
        server
    }

    fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.admin_url, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "cannot connect to PostgreSQL at {}: {e}",
                kvgit::advanced::redact_url(&self.admin_url)
            )
        })
    }

    /// A fresh, empty database for the store of `n` keys.
    fn create_database(&self, n: usize) -> PgDatabase {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!(
            "kvgit_bench_{}_{}_{stamp}",
            std::process::id(),
            size_label(n).to_lowercase()
        );
        let mut client = self.admin();
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| {
                panic!("cannot create the bench's database {name}: {e} (the role needs CREATEDB)")
            });
        PgDatabase {
            admin_url: self.admin_url.clone(),
            url: with_database(&self.admin_url, &name),
            name,
        }
    }

    fn farewell(&self) {
        if self.from_script {
            eprintln!(
                "{TAG} postgres: the throwaway server is left running \
                 (`bash scripts/pg-test-server.sh stop` stops it)"
            );
        }
    }
}

/// Runs `scripts/pg-test-server.sh start` (idempotent) with
/// `KVGIT_PG_FSYNC=on` unless the environment sets it, and returns the URL
/// it prints. Its log lines go to stderr.
fn start_test_server() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("pg-test-server.sh");
    let fsync = std::env::var("KVGIT_PG_FSYNC").unwrap_or_else(|_| "on".to_string());
    eprintln!(
        "{TAG} postgres: KVGIT_BENCH_PG_URL is not set: bash {} start (KVGIT_PG_FSYNC={fsync})",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .env("KVGIT_PG_FSYNC", &fsync)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} start failed ({}); set KVGIT_BENCH_PG_URL to use another server, \
         or KVGIT_BENCH_BACKENDS=sled to run without PostgreSQL",
        script.display(),
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_else(|| panic!("{} start printed no URL", script.display()))
        .to_string()
}

/// `url` naming database `db` instead of its own: the path of a
/// `postgres://` URL is replaced; a `key=value` string gets `dbname=db`.
fn with_database(url: &str, db: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return format!("{url} dbname={db}");
    };
    let query_start = url[scheme_end..]
        .find('?')
        .map_or(url.len(), |i| scheme_end + i);
    let path_start = url[scheme_end..query_start]
        .find('/')
        .map_or(query_start, |i| scheme_end + i);
    format!("{}/{db}{}", &url[..path_start], &url[query_start..])
}

/// A database made for the run; dropped (`DROP DATABASE ... WITH (FORCE)`)
/// with this value.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let dropped =
            postgres::Client::connect(&self.admin_url, postgres::NoTls).and_then(|mut c| {
                let name = &self.name;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .or_else(|_| c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\"")))
            });
        match dropped {
            Ok(()) => eprintln!("{TAG} postgres: dropped database {}", self.name),
            Err(e) => eprintln!(
                "{TAG} postgres: could not drop database {}: {e} (drop it by hand)",
                self.name
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// Stores.

/// A store holding the data set committed on branch `main`.
struct Store {
    kind: Kind,
    n: usize,
    /// The `Db` that loaded it (durable, default options). Declared before
    /// the directory and the database so it is dropped (closing its
    /// connections) first.
    db: Db,
    /// The commit `main` points at.
    head: CommitId,
    _dir: Option<TempDir>,
    _database: Option<PgDatabase>,
}

impl Store {
    /// Opens a new store through `Db::builder().open(..)` (a temporary
    /// directory for sled, a fresh database for PostgreSQL) and loads the
    /// data set as facade.rs's stores are loaded: `Repo::build_tree` of the
    /// sorted entries (one `put_objects` batch; on PostgreSQL one insert
    /// statement per 8 MB), one commit on `heads/main`, the durable
    /// barrier. Prints what it cost.
    fn build(kind: Kind, data: &[(Vec<u8>, Vec<u8>)], server: &OnceCell<PgServer>) -> Self {
        let (target, dir, database) = match kind {
            Kind::Sled => {
                let dir = temp_dir();
                (dir.path().display().to_string(), Some(dir), None)
            }
            Kind::Postgres => {
                let database = server
                    .get_or_init(PgServer::get)
                    .create_database(data.len());
                (database.url.clone(), None, Some(database))
            }
        };
        let db = Db::builder()
            .durability(Durability::Durable)
            .open(&target)
            .unwrap_or_else(|e| panic!("cannot open a {} store: {e}", kind.name()));
        let repo = kvgit::advanced::repo(&db);
        let start = Instant::now();
        let tree = repo.build_tree(data.iter().cloned()).expect("bulk load");
        let spec = CommitSpec {
            message: "base".into(),
            ..CommitSpec::default()
        };
        let (head, outcome) = repo.commit(REF, None, &tree, &spec).expect("commit");
        assert_eq!(outcome, CasOutcome::Swapped);
        repo.backend().flush(Durability::Durable).expect("flush");
        let built = start.elapsed();
        let logical = logical_bytes(data.len());
        let disk = repo.backend().size_on_disk().expect("size on disk");
        eprintln!(
            "{TAG} {}/{}: built in {:.3} s; tree level {} (depth {}); keys+values {:.2} MB, \
             on disk {:.2} MB ({:.2}x)",
            kind.name(),
            size_label(data.len()),
            built.as_secs_f64(),
            tree.level(),
            u32::from(tree.level()) + 1,
            logical as f64 / 1e6,
            disk as f64 / 1e6,
            disk as f64 / logical as f64
        );
        let store = Store {
            kind,
            n: data.len(),
            db,
            head,
            _dir: dir,
            _database: database,
        };
        store.probe();
        store
    }

    fn backend(&self) -> &Arc<dyn Backend> {
        kvgit::advanced::repo(&self.db).backend()
    }

    /// A `Db` over this store's backend (sharing its objects, refs and, for
    /// PostgreSQL, its connection pool; with its own node cache), durable,
    /// default options except the node cache's budget when given.
    fn db_over(&self, cache_bytes: Option<usize>) -> Db {
        self.db_on(self.backend().clone(), cache_bytes)
    }

    fn db_on(&self, backend: Arc<dyn Backend>, cache_bytes: Option<usize>) -> Db {
        let mut builder = Db::builder().durability(Durability::Durable);
        if let Some(bytes) = cache_bytes {
            builder = builder.cache_bytes(bytes);
        }
        builder.backend(backend).expect("open a Db over the store")
    }

    fn label(&self) -> String {
        format!("{}/{}", self.kind.name(), size_label(self.n))
    }

    /// Prints how many backend calls (for PostgreSQL: round trips to the
    /// server) one operation of each workload makes, counted over
    /// [`PROBE_OPS`] operations through a counting wrapper, untimed. Puts
    /// the store back afterwards.
    fn probe(&self) {
        let counting = Arc::new(Counting::new(self.backend().clone()));
        let dyn_counting: Arc<dyn Backend> = counting.clone();
        let baseline = Baseline::capture(self.backend());
        let mut lines = Vec::new();
        {
            let mut warm = Reader::new(self, self.db_on(dyn_counting.clone(), None), ReadAt::Head);
            warm.warm();
            counting.take();
            warm.run(PROBE_OPS as u64);
            lines.push(("pg_get", counting.take()));
            let mut snap = Reader::new(self, warm.branch.db().clone(), ReadAt::Snapshot);
            counting.take();
            snap.run(PROBE_OPS as u64);
            lines.push(("pg_get_snapshot", counting.take()));
        }
        {
            let db = self.db_on(dyn_counting.clone(), Some(0));
            let mut cold = Reader::new(self, db, ReadAt::Head);
            counting.take();
            cold.run(PROBE_OPS as u64);
            lines.push(("pg_get_cold", counting.take()));
        }
        {
            let db = self.db_on(dyn_counting.clone(), None);
            Reader::new(self, db.clone(), ReadAt::Head).warm();
            let branch = db.get_branch(BRANCH).expect("branch").expect("main exists");
            let mut rng = XorShift::new(PROBE_SEED);
            counting.take();
            for _ in 0..PROBE_OPS {
                let k = key(rng.below(self.n as u64));
                branch.put(k, rng.value()).expect("put");
            }
            lines.push(("pg_commit", counting.take()));
            drop(branch);
            baseline.restore(
                self.backend(),
                &[kvgit::advanced::repo(&db), kvgit::advanced::repo(&self.db)],
            );
        }
        for (workload, calls) in lines {
            eprintln!(
                "{TAG} {workload}/{}: backend calls per operation: {}",
                self.label(),
                calls.per_op(PROBE_OPS)
            );
        }
    }
}

/// The stores of one size, each built on first use (a filtered run builds
/// only what it measures) and dropped by [`Fixtures::close`].
struct Fixtures<'s> {
    n: usize,
    server: &'s OnceCell<PgServer>,
    entries: OnceCell<Vec<(Vec<u8>, Vec<u8>)>>,
    sled: OnceCell<Store>,
    postgres: OnceCell<Store>,
}

impl<'s> Fixtures<'s> {
    fn new(n: usize, server: &'s OnceCell<PgServer>) -> Self {
        Fixtures {
            n,
            server,
            entries: OnceCell::new(),
            sled: OnceCell::new(),
            postgres: OnceCell::new(),
        }
    }

    fn store(&self, kind: Kind) -> &Store {
        let cell = match kind {
            Kind::Sled => &self.sled,
            Kind::Postgres => &self.postgres,
        };
        cell.get_or_init(|| {
            let data = self.entries.get_or_init(|| entries(self.n));
            Store::build(kind, data, self.server)
        })
    }

    /// Drops the stores: the `Db`s, then the temporary directory or the
    /// database.
    fn close(self) {
        drop(self.sled);
        drop(self.postgres);
    }
}

fn bench_id(kind: Kind, n: usize) -> BenchmarkId {
    BenchmarkId::new(kind.name(), size_label(n))
}

// ---------------------------------------------------------------------------
// Workloads.

/// Where a [`Reader`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadAt {
    /// `Branch::get`: the head's ref read, then the tree walk.
    Head,
    /// `Snapshot::get` on a snapshot taken once: the tree walk alone.
    Snapshot,
}

/// Point reads of random keys of `main`.
struct Reader {
    branch: Branch,
    snapshot: Option<Snapshot>,
    n: u64,
    rng: XorShift,
}

impl Reader {
    fn new(store: &Store, db: Db, at: ReadAt) -> Self {
        let branch = db.get_branch(BRANCH).expect("branch").expect("main exists");
        assert_eq!(branch.head().expect("head"), store.head);
        let snapshot = (at == ReadAt::Snapshot).then(|| branch.snapshot().expect("snapshot"));
        Reader {
            branch,
            snapshot,
            n: store.n as u64,
            rng: XorShift::new(GET_SEED),
        }
    }

    /// Reads every entry once, through the node cache.
    fn warm(&self) {
        let mut count = 0u64;
        for item in self.branch.range(..).expect("range") {
            black_box(item.expect("scan"));
            count += 1;
        }
        assert_eq!(count, self.n);
    }

    fn get(&self, k: &[u8; KEY_LEN]) -> Option<Vec<u8>> {
        match &self.snapshot {
            Some(snapshot) => snapshot.get(k).expect("get"),
            None => self.branch.get(k).expect("get"),
        }
    }

    /// Runs `iters` reads and returns the time they took, leaving out
    /// choosing the keys.
    fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            let chunk = left.min(RESET_EVERY);
            let keys: Vec<_> = (0..chunk).map(|_| key(self.rng.below(self.n))).collect();
            let start = Instant::now();
            for k in &keys {
                black_box(self.get(k)).expect("every key is present");
            }
            total += start.elapsed();
            left -= chunk;
        }
        total
    }
}

/// Durable single-key commits through the facade: `Branch::put` of one
/// random key to a fresh 100-byte value on `main`. Each commit builds on
/// the last; the store goes back to its base every [`RESET_EVERY`] commits
/// and when the runner is dropped, untimed.
struct Committer<'a> {
    store: &'a Store,
    db: Db,
    branch: Branch,
    baseline: Baseline,
    rng: XorShift,
    since_reset: usize,
}

impl<'a> Committer<'a> {
    fn new(store: &'a Store) -> Self {
        let db = store.db_over(None);
        Reader::new(store, db.clone(), ReadAt::Head).warm();
        let branch = db.get_branch(BRANCH).expect("branch").expect("main exists");
        let baseline = Baseline::capture(store.backend());
        Committer {
            store,
            db,
            branch,
            baseline,
            rng: XorShift::new(COMMIT_SEED),
            since_reset: 0,
        }
    }

    /// Runs `iters` commits and returns the time they took, leaving out
    /// generating keys and values and the periodic resets.
    fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        let n = self.store.n as u64;
        while left > 0 {
            if self.since_reset >= RESET_EVERY {
                self.reset();
            }
            let chunk = left.min(RESET_EVERY - self.since_reset);
            let edits: Vec<_> = (0..chunk)
                .map(|_| (key(self.rng.below(n)), self.rng.value()))
                .collect();
            let start = Instant::now();
            for (k, v) in edits {
                self.branch.put(k, v).expect("put");
            }
            total += start.elapsed();
            self.since_reset += chunk;
            left -= chunk;
        }
        total
    }

    fn reset(&mut self) {
        if self.since_reset > 0 {
            self.baseline.restore(
                self.store.backend(),
                &[
                    kvgit::advanced::repo(&self.db),
                    kvgit::advanced::repo(&self.store.db),
                ],
            );
            self.since_reset = 0;
        }
    }
}

impl Drop for Committer<'_> {
    fn drop(&mut self) {
        self.reset();
    }
}

/// `pg_get/*/N`: `Branch::get` of a random key at the head on a `Db` with
/// the default node cache, warmed by one full scan: the tree walk is served
/// from the decoded-node cache; the head's ref is read from the store on
/// every call (PostgreSQL: one round trip).
fn pg_get(c: &mut Criterion, fx: &Fixtures<'_>, kinds: &[Kind]) {
    let mut group = small_group(c, "pg_get");
    group.throughput(Throughput::Elements(1));
    for &kind in kinds {
        let mut reader: Option<Reader> = None;
        group.bench_function(bench_id(kind, fx.n), |b| {
            let reader = reader.get_or_insert_with(|| {
                let store = fx.store(kind);
                let reader = Reader::new(store, store.db_over(None), ReadAt::Head);
                reader.warm();
                reader
            });
            b.iter_custom(|iters| reader.run(iters))
        });
    }
    group.finish();
}

/// `pg_get_snapshot/*/N`: `Snapshot::get` of a random key on a snapshot of
/// the head taken once, node cache warm: no call to the store at all.
fn pg_get_snapshot(c: &mut Criterion, fx: &Fixtures<'_>, kinds: &[Kind]) {
    let mut group = small_group(c, "pg_get_snapshot");
    group.throughput(Throughput::Elements(1));
    for &kind in kinds {
        let mut reader: Option<Reader> = None;
        group.bench_function(bench_id(kind, fx.n), |b| {
            let reader = reader.get_or_insert_with(|| {
                let store = fx.store(kind);
                let reader = Reader::new(store, store.db_over(None), ReadAt::Snapshot);
                reader.warm();
                reader
            });
            b.iter_custom(|iters| reader.run(iters))
        });
    }
    group.finish();
}

/// `pg_get_cold/*/N`: `Branch::get` of a random key at the head on a `Db`
/// opened with `cache_bytes(0)`: the ref, then every node on the path from
/// the root, read from the store (and hash-checked and decoded) on every
/// call. Commits stay in the repo's small decoded-commit cache.
fn pg_get_cold(c: &mut Criterion, fx: &Fixtures<'_>, kinds: &[Kind]) {
    let mut group = small_group(c, "pg_get_cold");
    group.throughput(Throughput::Elements(1));
    for &kind in kinds {
        let mut reader: Option<Reader> = None;
        group.bench_function(bench_id(kind, fx.n), |b| {
            let reader = reader.get_or_insert_with(|| {
                let store = fx.store(kind);
                Reader::new(store, store.db_over(Some(0)), ReadAt::Head)
            });
            b.iter_custom(|iters| reader.run(iters))
        });
    }
    group.finish();
}

/// `pg_commit/*/N`: durable `Branch::put` of one random key on a `Db`
/// whose node cache was warmed by one full scan: the head's ref read and a
/// transaction on it, `Repo::apply_unwritten` (the new nodes, kept for
/// the commit), the new nodes, the commit object and the ref's
/// compare-and-swap in one `put_objects_and_cas` (PostgreSQL: one
/// `kvgit_commit` call; sled: one batch, then the swap), the durability
/// barrier (sled: flush and fsync; PostgreSQL: nothing, each
/// statement is committed by the server before it returns).
fn pg_commit(c: &mut Criterion, fx: &Fixtures<'_>, kinds: &[Kind]) {
    let mut group = small_group(c, "pg_commit");
    group.throughput(Throughput::Elements(1));
    for &kind in kinds {
        let mut committer: Option<Committer<'_>> = None;
        group.bench_function(bench_id(kind, fx.n), |b| {
            let committer = committer.get_or_insert_with(|| Committer::new(fx.store(kind)));
            b.iter_custom(|iters| committer.run(iters))
        });
        // Dropping the runner puts the store back to its base.
        drop(committer);
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Counting backend calls (for the probe).

/// Backend calls by kind.
#[derive(Default)]
struct Calls {
    get_object: u64,
    put_objects: u64,
    put_and_cas: u64,
    get_ref: u64,
    cas_ref: u64,
    meta: u64,
    flush: u64,
    other: u64,
}

impl Calls {
    fn per_op(&self, ops: usize) -> String {
        let total = self.get_object
            + self.put_objects
            + self.put_and_cas
            + self.get_ref
            + self.cas_ref
            + self.meta
            + self.flush
            + self.other;
        let per = |x: u64| x as f64 / ops as f64;
        format!(
            "{:.2} (get_ref {:.2}, get_object {:.2}, put_objects {:.2}, \
             put_objects_and_cas {:.2}, cas_ref {:.2}, metadata {:.2}, flush {:.2}, other {:.2})",
            per(total),
            per(self.get_ref),
            per(self.get_object),
            per(self.put_objects),
            per(self.put_and_cas),
            per(self.cas_ref),
            per(self.meta),
            per(self.flush),
            per(self.other)
        )
    }
}

/// A backend forwarding every call to another and counting them.
struct Counting {
    inner: Arc<dyn Backend>,
    get_object: AtomicU64,
    put_objects: AtomicU64,
    put_and_cas: AtomicU64,
    get_ref: AtomicU64,
    cas_ref: AtomicU64,
    meta: AtomicU64,
    flush: AtomicU64,
    other: AtomicU64,
}

impl Counting {
    fn new(inner: Arc<dyn Backend>) -> Self {
        Counting {
            inner,
            get_object: AtomicU64::new(0),
            put_objects: AtomicU64::new(0),
            put_and_cas: AtomicU64::new(0),
            get_ref: AtomicU64::new(0),
            cas_ref: AtomicU64::new(0),
            meta: AtomicU64::new(0),
            flush: AtomicU64::new(0),
            other: AtomicU64::new(0),
        }
    }

    /// The counts so far, zeroing them.
    fn take(&self) -> Calls {
        let take = |a: &AtomicU64| a.swap(0, Ordering::Relaxed);
        Calls {
            get_object: take(&self.get_object),
            put_objects: take(&self.put_objects),
            put_and_cas: take(&self.put_and_cas),
            get_ref: take(&self.get_ref),
            cas_ref: take(&self.cas_ref),
            meta: take(&self.meta),
            flush: take(&self.flush),
            other: take(&self.other),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Backend for Counting {
    fn get_object(&self, id: &ObjectId) -> kvgit_core::Result<Option<Vec<u8>>> {
        bump(&self.get_object);
        self.inner.get_object(id)
    }

    fn has_object(&self, id: &ObjectId) -> kvgit_core::Result<bool> {
        bump(&self.other);
        self.inner.has_object(id)
    }

    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> kvgit_core::Result<()> {
        bump(&self.put_objects);
        self.inner.put_objects(objects)
    }

    fn delete_objects(&self, ids: &[ObjectId]) -> kvgit_core::Result<()> {
        bump(&self.other);
        self.inner.delete_objects(ids)
    }

    fn for_each_object(
        &self,
        visit: &mut dyn FnMut(ObjectId, u64) -> kvgit_core::Result<bool>,
    ) -> kvgit_core::Result<()> {
        bump(&self.other);
        self.inner.for_each_object(visit)
    }

    fn get_ref(&self, name: &str) -> kvgit_core::Result<Option<ObjectId>> {
        bump(&self.get_ref);
        self.inner.get_ref(name)
    }

    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> kvgit_core::Result<CasOutcome> {
        bump(&self.cas_ref);
        self.inner.cas_ref(name, expected, new)
    }

    fn put_objects_and_cas(
        &self,
        objects: Vec<(ObjectId, Vec<u8>)>,
        refs: &[ObjectId],
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> kvgit_core::Result<CasOutcome> {
        bump(&self.put_and_cas);
        self.inner
            .put_objects_and_cas(objects, refs, name, expected, new)
    }

    fn list_refs(&self, prefix: &str) -> kvgit_core::Result<Vec<(String, ObjectId)>> {
        bump(&self.other);
        self.inner.list_refs(prefix)
    }

    fn get_meta(&self, key: &[u8]) -> kvgit_core::Result<Option<Vec<u8>>> {
        bump(&self.meta);
        self.inner.get_meta(key)
    }

    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> kvgit_core::Result<()> {
        bump(&self.meta);
        self.inner.put_meta(entries)
    }

    fn scan_meta(&self, prefix: &[u8]) -> kvgit_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        bump(&self.meta);
        self.inner.scan_meta(prefix)
    }

    fn flush(&self, durability: Durability) -> kvgit_core::Result<()> {
        bump(&self.flush);
        self.inner.flush(durability)
    }

    fn size_on_disk(&self) -> kvgit_core::Result<u64> {
        self.inner.size_on_disk()
    }

    fn shared(&self) -> Option<&dyn SharedStore> {
        self.inner.shared()
    }
}
