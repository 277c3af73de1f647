//! The facade on a real PostgreSQL server, with several OS processes
//! sharing one store:
//!
//! 1. four processes incrementing one counter (by merge, and by `update()`)
//!    lose no increment, with the default retry bound;
//! 2. a writer killed with SIGKILL mid-commit leaves a complete store whose
//!    branch holds a state the writer acknowledged (or the one after);
//! 3. sweeps (with a short grace period) running while a writer in another
//!    process is between writing its objects and moving its ref lose
//!    nothing, and still free garbage; the grace period is what protects;
//! 4. access recency is shared between separately opened `Db`s;
//! 5. a small version of the facade's model proptest (`model.rs`).
//!
//! Child processes are this test binary run again with
//! `--exact child_process` and [`CHILD_ENV`] naming their role; the
//! `child_process` test does nothing when that variable is not set.
//!
//! The server comes from `crates/postgres/tests/common` (never skipped).

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

#[path = "../../postgres/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::TestDb;
use kvgit::advanced::PgBackend;
use kvgit::merge::{Counter, Theirs};
use kvgit::PgOptions;
use kvgit::SweepOptions;
use kvgit::{CommitId, Db};
use kvgit_core::object::{decode_blob, Node, ValueRef};
use kvgit_core::{
    Backend, CasOutcome, Commit, CommitSpec, Durability, ObjectId, Repo, RepoOptions, SharedStore,
};

/// Set in a child process: its role.
const CHILD_ENV: &str = "KVGIT_PG_CHILD";
/// Set in a child process: the store's URL.
const CHILD_URL_ENV: &str = "KVGIT_PG_CHILD_URL";
/// The test a child process runs.
const CHILD_TEST: &str = "child_process";

type Edits = Vec<(Vec<u8>, Option<Vec<u8>>)>;
type State = BTreeMap<Vec<u8>, Vec<u8>>;

// ---------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------

/// The entry point of every child process; returns at once in a normal
/// test run.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let url = std::env::var(CHILD_URL_ENV).expect("the parent sets the URL");
    match role.as_str() {
        "counter" => child_counter(&url),
        "update-counter" => child_update_counter(&url),
        "crash" => child_crash_writer(&url),
        "sweep-writer" => child_sweep_writer(&url),
        other => panic!("unknown child role {other:?}"),
    }
}

/// Prints one line to the parent, flushed at once. The first line starts
/// with a newline: libtest has printed "test child_process ... " before.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
}

/// A child process and what it has printed.
struct ChildProc {
    role: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr_reader: Option<JoinHandle<String>>,
}

/// How a child process ended.
struct Finished {
    status: ExitStatus,
    lines: Vec<String>,
    stderr: String,
}

impl ChildProc {
    fn spawn(role: &str, url: &str) -> ChildProc {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, role)
            .env(CHILD_URL_ENV, url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the child starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        let stdout_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim().to_string()).is_err() {
                    break;
                }
            }
        });
        let stderr_reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        ChildProc {
            role: role.to_string(),
            child,
            lines,
            seen: Vec::new(),
            stdout_reader: Some(stdout_reader),
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Waits (at most `timeout`) for the line `want`.
    fn wait_for_line(&mut self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line == want;
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => {
                    let role = self.role.clone();
                    let f = self.kill();
                    panic!(
                        "child {role} did not print {want:?} within {timeout:?} ({:?}); \
                         stdout: {:?}; stderr:\n{}",
                        f.status, f.lines, f.stderr
                    );
                }
            }
        }
    }

    /// True while the process runs.
    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn collect(&mut self, status: ExitStatus) -> Finished {
        if let Some(r) = self.stdout_reader.take() {
            r.join().expect("the stdout reader");
        }
        let stderr = self
            .stderr_reader
            .take()
            .map(|r| r.join().expect("the stderr reader"))
            .unwrap_or_default();
        self.seen.extend(self.lines.try_iter());
        Finished {
            status,
            lines: std::mem::take(&mut self.seen),
            stderr,
        }
    }

    /// SIGKILL (no destructor, no flush, no exit).
    fn kill(&mut self) -> Finished {
        let _ = self.child.kill();
        let status = self.child.wait().expect("the child is reaped");
        self.collect(status)
    }

    /// Waits for the process to exit by itself and checks it succeeded.
    fn wait_success(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let f = self.kill();
                panic!(
                    "child {} still running after {timeout:?}; stdout: {:?}; stderr:\n{}",
                    self.role, f.lines, f.stderr
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let f = self.collect(status);
        assert!(
            f.status.success(),
            "child {} failed ({:?}); stdout: {:?}; stderr:\n{}",
            self.role,
            f.status,
            f.lines,
            f.stderr
        );
        f
    }
}

impl Drop for ChildProc {
    /// A child left running by a failed test dies with it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The multi-process tests run one at a time: on a small machine, running
/// them together would stretch the timing windows they depend on.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------
// Store verification
// ---------------------------------------------------------------------

/// Walks every commit reachable from every ref (all parents), every node
/// of their trees and every blob their leaves name, reading each from the
/// store itself (never a cache): each must be present and hash to its id,
/// and every internal node's entry must agree with its child. Returns how
/// many distinct objects it checked.
fn verify_store(repo: &Repo) -> Result<usize, String> {
    let refs = repo
        .backend()
        .list_refs("")
        .map_err(|e| format!("list refs: {e}"))?;
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut commits: Vec<(String, ObjectId)> = refs.into_iter().collect();
    let mut roots = Vec::new();
    while let Some((from, id)) = commits.pop() {
        if !seen.insert(id) {
            continue;
        }
        let bytes = repo
            .object_bytes(&id)
            .map_err(|e| format!("commit {id} (history of {from}): {e}"))?;
        let commit =
            Commit::decode(&id, &bytes).map_err(|e| format!("commit {id} (of {from}): {e}"))?;
        roots.push((from.clone(), id, commit.root));
        commits.extend(commit.parents.iter().map(|p| (from.clone(), *p)));
    }
    for (from, commit, root) in roots {
        walk_tree(repo, root, &mut seen)
            .map_err(|e| format!("tree of commit {commit} (history of {from}): {e}"))?;
    }
    Ok(seen.len())
}

fn load_node(repo: &Repo, id: &ObjectId) -> Result<Node, String> {
    let bytes = repo
        .object_bytes(id)
        .map_err(|e| format!("node {id}: {e}"))?;
    Node::decode_vec(id, bytes).map_err(|e| format!("node {id}: {e}"))
}

fn walk_tree(repo: &Repo, root: ObjectId, seen: &mut HashSet<ObjectId>) -> Result<(), String> {
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let node = load_node(repo, &id)?;
        for (key, value) in node.leaf_entries() {
            if let ValueRef::Blob { id: blob, len } = value {
                let bytes = repo.object_bytes(&blob).map_err(|e| {
                    format!("blob {blob} of key {}: {e}", String::from_utf8_lossy(key))
                })?;
                let v = decode_blob(&blob, &bytes).map_err(|e| format!("blob {blob}: {e}"))?;
                if v.len() as u64 != len {
                    return Err(format!("blob {blob} has {} bytes, not {len}", v.len()));
                }
                seen.insert(blob);
            }
        }
        for child in node.children() {
            if seen.contains(&child.id) {
                continue;
            }
            let sub = load_node(repo, &child.id)?;
            if sub.level() + 1 != node.level()
                || sub.count() != child.count
                || sub.value_bytes() != child.bytes
                || sub.first_key() != Some(child.key)
            {
                return Err(format!(
                    "node {} disagrees with its entry in {id}",
                    child.id
                ));
            }
            stack.push(child.id);
        }
    }
    Ok(())
}

/// Every stored object, reachable or not (a killed writer leaves objects
/// no ref reaches), hashes to its id.
fn check_every_object(repo: &Repo) -> Result<usize, String> {
    let mut ids = Vec::new();
    repo.backend()
        .for_each_object(&mut |id, _| {
            ids.push(id);
            Ok(true)
        })
        .map_err(|e| format!("list objects: {e}"))?;
    for id in &ids {
        let bytes = repo
            .object_bytes(id)
            .map_err(|e| format!("object {id}: {e}"))?;
        if ObjectId::hash(&bytes) != *id {
            return Err(format!("object {id} does not hash to its id"));
        }
    }
    Ok(ids.len())
}

/// The whole content of branch `name`.
fn content(db: &Db, name: &str) -> State {
    let branch = db.get_branch(name).unwrap().expect("the branch exists");
    branch.range(..).unwrap().map(|r| r.unwrap()).collect()
}

fn text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|v| String::from_utf8(v).expect("UTF-8"))
}

fn number(v: Option<Vec<u8>>, what: &str) -> u64 {
    text(v)
        .unwrap_or_else(|| panic!("{what} is missing"))
        .parse()
        .unwrap_or_else(|e| panic!("{what} is not a number: {e}"))
}

/// `len` bytes repeating `pattern`.
fn fill(pattern: &str, len: usize) -> Vec<u8> {
    pattern.bytes().cycle().take(len).collect()
}

/// SplitMix64: a small seeded generator.
struct Rng(u64);

impl Rng {
    fn from_clock() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        eprintln!("rng seed {seed:#x}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An `acked <n> <64 hex>` line (a line cut short by a kill is ignored).
fn parse_ack(line: &str) -> Option<(u64, ObjectId)> {
    let mut parts = line.strip_prefix("acked ")?.split(' ');
    let n = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((n, id))
}

// ---------------------------------------------------------------------
// 1. Many processes, one counter
// ---------------------------------------------------------------------

const COUNTER_PROCESSES: usize = 4;
const COUNTER_INCREMENTS: u64 = 500;

/// Opens the store with the counter merge function on `hits`.
fn counter_db(url: &str) -> Db {
    // The default retry bound (100): writer turns keep processes that
    // keep colliding from starving one another.
    let db = Db::open(url).expect("open");
    db.merge_fns().set("hits", Counter);
    db
}

/// A child: `COUNTER_INCREMENTS` transactions, each reading `hits`, adding
/// one and committing (merging with the counter on a lost race).
fn child_counter(url: &str) {
    let db = counter_db(url);
    let main = db.get_branch("main").unwrap().expect("main exists");
    say("\nready");
    let (mut retries, mut merged, mut most) = (0u64, 0u64, 0u32);
    for _ in 0..COUNTER_INCREMENTS {
        let mut tx = main.transaction().unwrap();
        let n = number(tx.get("hits").unwrap(), "hits");
        tx.put("hits", (n + 1).to_string());
        let outcome = tx.commit().unwrap();
        assert!(outcome.committed && outcome.commit.is_some());
        retries += u64::from(outcome.attempts - 1);
        most = most.max(outcome.attempts);
        merged += u64::from(outcome.resolved.iter().any(|k| k == b"hits"));
    }
    say(&format!("stats {retries} {merged} {most}"));
}

#[test]
fn many_processes_increment_one_counter() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let tdb = TestDb::new("counter");
    let db = counter_db(&tdb.url);
    let main = db.branch("main").unwrap();
    main.put("hits", "0").unwrap();
    let base = main.head().unwrap();

    let children: Vec<ChildProc> = (0..COUNTER_PROCESSES)
        .map(|_| ChildProc::spawn("counter", &tdb.url))
        .collect();
    let (mut retries, mut merged, mut most) = (0, 0, 0);
    for child in children {
        let f = child.wait_success(Duration::from_secs(120));
        let stats = f
            .lines
            .iter()
            .find_map(|l| l.strip_prefix("stats "))
            .unwrap_or_else(|| panic!("no stats line in {:?}", f.lines));
        let mut it = stats.split(' ').map(|s| s.parse::<u64>().unwrap());
        retries += it.next().unwrap();
        merged += it.next().unwrap();
        most = most.max(it.next().unwrap());
    }
    let total = COUNTER_PROCESSES as u64 * COUNTER_INCREMENTS;
    assert_eq!(number(main.get("hits").unwrap(), "hits"), total);

    // The processes really raced: commits lost the CAS and merged.
    assert!(
        retries > 0 && merged > 0,
        "no commit ever lost a race ({retries} retries, {merged} merges): the processes did \
         not overlap"
    );
    // History: one commit per increment, each adding exactly one, down to
    // the commit that set 0, every one readable.
    let mut expected = total;
    let mut commits = 0;
    for info in main.log().unwrap() {
        let info = info.unwrap();
        assert!(
            info.parents().len() <= 1,
            "a transaction commit has one parent"
        );
        let got = number(db.checkout(&info.id).unwrap().get("hits").unwrap(), "hits");
        assert_eq!(got, expected, "commit {} holds {got}", info.id);
        commits += 1;
        if info.id == base {
            break;
        }
        expected -= 1;
    }
    assert_eq!(expected, 0, "the log reaches the commit that set 0");
    assert_eq!(commits, total + 1);
    let objects = verify_store(kvgit::advanced::repo(&db)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{COUNTER_PROCESSES} processes x {COUNTER_INCREMENTS} increments in {:.1?}: {retries} \
         retries, {merged} counter merges, at most {most} attempts for one commit; {objects} \
         objects verified",
        started.elapsed()
    );
}

const UPDATE_INCREMENTS: u64 = 250;

/// A child: `UPDATE_INCREMENTS` increments of `plain` through
/// `Branch::update`, which re-runs the closure on a fresh head after a lost
/// race instead of merging (no merge function on `plain`).
fn child_update_counter(url: &str) {
    let db = Db::open(url).expect("open");
    let main = db.get_branch("main").unwrap().expect("main exists");
    say("\nready");
    let mut runs = 0u64;
    for _ in 0..UPDATE_INCREMENTS {
        main.update(|tx| {
            runs += 1;
            let n = number(tx.get("plain")?, "plain");
            tx.put("plain", (n + 1).to_string());
            Ok::<_, kvgit::Error>(())
        })
        .unwrap();
    }
    say(&format!("stats {runs}"));
}

/// The same race through `update()`: every increment lands exactly once.
#[test]
fn many_processes_update_one_counter() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let tdb = TestDb::new("update");
    let db = Db::open(&tdb.url).expect("open");
    let main = db.branch("main").unwrap();
    main.put("plain", "0").unwrap();
    let children: Vec<ChildProc> = (0..COUNTER_PROCESSES)
        .map(|_| ChildProc::spawn("update-counter", &tdb.url))
        .collect();
    let mut runs = 0;
    for child in children {
        let f = child.wait_success(Duration::from_secs(120));
        runs += f
            .lines
            .iter()
            .find_map(|l| l.strip_prefix("stats "))
            .unwrap_or_else(|| panic!("no stats line in {:?}", f.lines))
            .parse::<u64>()
            .unwrap();
    }
    let total = COUNTER_PROCESSES as u64 * UPDATE_INCREMENTS;
    assert_eq!(number(main.get("plain").unwrap(), "plain"), total);
    assert!(
        runs > total,
        "no closure ever ran twice: the processes did not overlap"
    );
    eprintln!(
        "{COUNTER_PROCESSES} processes x {UPDATE_INCREMENTS} updates in {:.1?}: {} closure \
         re-runs",
        started.elapsed(),
        runs - total
    );
}

/// Threads of one process race as processes do: 8 threads x 250 counter
/// increments through one `Db` on the shared store.
#[test]
fn many_threads_increment_one_counter() {
    const THREADS: u64 = 8;
    const EACH: u64 = 250;
    let _serial = one_at_a_time();
    let started = Instant::now();
    let tdb = TestDb::new("threads");
    let db = counter_db(&tdb.url);
    let main = db.branch("main").unwrap();
    main.put("hits", "0").unwrap();
    let most = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let main = main.clone();
                s.spawn(move || {
                    let mut most = 0;
                    for _ in 0..EACH {
                        let mut tx = main.transaction().unwrap();
                        let n = number(tx.get("hits").unwrap(), "hits");
                        tx.put("hits", (n + 1).to_string());
                        most = most.max(tx.commit().unwrap().attempts);
                    }
                    most
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    });
    assert_eq!(number(main.get("hits").unwrap(), "hits"), THREADS * EACH);
    eprintln!(
        "{THREADS} threads x {EACH} increments in {:.1?}: at most {most} attempts for one commit",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------
// 2. Killed mid-commit
// ---------------------------------------------------------------------

/// The content of `main` after the writer's commit `n`: a pure function of
/// `n`, so any acknowledged state can be checked whole.
fn crash_state(n: u64) -> State {
    let mut s = State::new();
    s.insert(b"n".to_vec(), n.to_string().into_bytes());
    for j in 0..3u64 {
        // Over 256 bytes: stored as blobs.
        let len = 300 + ((n * 37 + j * 101) % 1500) as usize;
        assert!(len > kvgit_core::INLINE_MAX);
        s.insert(
            format!("big/{j}").into_bytes(),
            fill(&format!("n={n};j={j};"), len),
        );
    }
    for j in 0..4 {
        s.insert(
            format!("small/{j}").into_bytes(),
            format!("{n}-{j}").into_bytes(),
        );
    }
    s.insert(format!("tmp/{n}").into_bytes(), b"x".to_vec());
    s
}

/// The writes that take `main` from `crash_state(n - 1)` to `crash_state(n)`.
fn crash_edits(n: u64) -> Edits {
    let mut edits: Edits = crash_state(n)
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    if n > 0 {
        edits.push((format!("tmp/{}", n - 1).into_bytes(), None));
    }
    edits
}

/// A child: commits `crash_edits(n)` for n = 1, 2, ... on top of whatever
/// `main` holds, printing `acked <n> <id>` after each commit returns and
/// moving `backup` to main's head now and then, until killed.
fn child_crash_writer(url: &str) {
    let db = Db::open(url).expect("open");
    let main = db.get_branch("main").unwrap().expect("main exists");
    let backup = db.get_branch("backup").unwrap().expect("backup exists");
    let mut n = number(main.get("n").unwrap(), "n");
    say("\nready");
    let give_up = Instant::now() + Duration::from_secs(60);
    while Instant::now() < give_up {
        n += 1;
        let mut tx = main.transaction().unwrap();
        for (k, v) in crash_edits(n) {
            match v {
                Some(v) => tx.put(k, v),
                None => tx.delete(k),
            };
        }
        let id = tx.commit().unwrap().commit.expect("a commit");
        say(&format!("acked {n} {id}"));
        if n % 5 == 0 {
            backup.reset_to(&id).unwrap();
        }
    }
    // Only reached if the parent died without killing us.
    std::process::exit(3);
}

/// What the parent has verified: main's head and the `n` it holds.
struct CrashVerified {
    head: CommitId,
    n: u64,
}

/// One round: start the writer, SIGKILL it after 100-600 ms, reopen the
/// store and check it (see the test). Returns how many commits the child
/// acknowledged.
fn kill_mid_commit_and_verify(
    url: &str,
    round: usize,
    rng: &mut Rng,
    verified: &mut CrashVerified,
) -> usize {
    let mut child = ChildProc::spawn("crash", url);
    child.wait_for_line("ready", Duration::from_secs(30));
    thread::sleep(Duration::from_millis(100 + rng.below(501)));
    let f = child.kill();
    assert_eq!(
        f.status.signal(),
        Some(9),
        "round {round}: the child should have died by SIGKILL, not {:?}; stderr:\n{}",
        f.status,
        f.stderr
    );
    let acked: Vec<(u64, ObjectId)> = f.lines.iter().filter_map(|l| parse_ack(l)).collect();
    for (i, (n, _)) in acked.iter().enumerate() {
        assert_eq!(
            *n,
            verified.n + 1 + i as u64,
            "round {round}: acks in order"
        );
    }

    // A fresh opener: nothing cached from before the crash.
    let db = Db::open(url).expect("the store reopens after the crash");
    let repo = kvgit::advanced::repo(&db);
    verify_store(repo).unwrap_or_else(|e| panic!("round {round}: {e}"));

    // main holds the last acknowledged state or the one after (the commit
    // whose acknowledgement the kill cut off), exactly.
    let main = db.get_branch("main").unwrap().expect("main");
    let head = main.head().unwrap();
    let n = number(main.get("n").unwrap(), "n");
    let last_acked = acked.last().map_or(verified.n, |a| a.0);
    assert!(
        n == last_acked || n == last_acked + 1,
        "round {round}: main holds n = {n}, the child acknowledged up to {last_acked}"
    );
    assert_eq!(
        content(&db, "main"),
        crash_state(n),
        "round {round}: main's content"
    );

    // History since the last verified head: one commit per n, each holding
    // exactly its state, every acknowledged commit among them.
    let mut chain: HashMap<CommitId, u64> = HashMap::new();
    let mut expect = n;
    for item in repo.first_parent_log(head) {
        let (id, commit) = item.unwrap_or_else(|e| panic!("round {round}: main's history: {e}"));
        let tree = repo.tree(commit.root).unwrap();
        let got = number(repo.get(&tree, b"n").unwrap(), "n");
        assert_eq!(got, expect, "round {round}: commit {id} on main's history");
        chain.insert(id, got);
        if got == verified.n {
            assert_eq!(
                id, verified.head,
                "round {round}: the verified head is on main's history"
            );
            break;
        }
        expect -= 1;
    }
    for (n, id) in &acked {
        assert_eq!(
            chain.get(id),
            Some(n),
            "round {round}: acknowledged commit {id} (n = {n}) is on main's history"
        );
    }
    let state = content(&db, "backup");
    let m = number(state.get(&b"n"[..]).cloned(), "backup's n");
    assert!(m <= n, "round {round}: backup is behind main");
    assert_eq!(state, crash_state(m), "round {round}: backup's content");

    *verified = CrashVerified { head, n };
    acked.len()
}

#[test]
fn writer_killed_mid_commit_leaves_an_acknowledged_state() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let tdb = TestDb::new("crash");
    let (head, n) = {
        let db = Db::open(&tdb.url).unwrap();
        let main = db.branch("main").unwrap();
        let mut tx = main.transaction().unwrap();
        for (k, v) in crash_edits(0) {
            tx.put(k, v.unwrap());
        }
        let head = tx.commit().unwrap().commit.unwrap();
        main.fork("backup").unwrap();
        (head, 0)
    };
    let mut verified = CrashVerified { head, n };
    let mut rng = Rng::from_clock();
    let rounds = 5;
    let mut acked = 0;
    for round in 0..rounds {
        acked += kill_mid_commit_and_verify(&tdb.url, round, &mut rng, &mut verified);
    }
    assert!(acked > 0, "no round acknowledged a commit");
    // The store accepts a new commit after the last crash.
    let db = Db::open(&tdb.url).unwrap();
    let main = db.get_branch("main").unwrap().unwrap();
    let mut tx = main.transaction().unwrap();
    for (k, v) in crash_edits(verified.n + 1) {
        match v {
            Some(v) => tx.put(k, v),
            None => tx.delete(k),
        };
    }
    tx.commit().unwrap();
    assert_eq!(content(&db, "main"), crash_state(verified.n + 1));
    verify_store(kvgit::advanced::repo(&db))
        .unwrap_or_else(|e| panic!("after the last round: {e}"));
    // Every object, reachable or left behind by a killed writer, is
    // intact (objects are never deleted here, so once at the end covers
    // every round).
    let objects = check_every_object(kvgit::advanced::repo(&db)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{rounds} kills in {:.1?}: {acked} acknowledged commits verified, main at n = {}, \
         {objects} objects hash-checked",
        started.elapsed(),
        verified.n + 1
    );
}

// ---------------------------------------------------------------------
// 3. Sweep with a concurrent writer in another process
// ---------------------------------------------------------------------

const SWEEP_WRITER_COMMITS: u64 = 45;
/// How long the writer waits between writing its objects and moving its
/// ref, on its slow commits.
const SLOW_COMMIT_PAUSE: Duration = Duration::from_millis(300);
const SWEEP_GRACE: Duration = Duration::from_secs(2);

fn w_blob(i: u64) -> Vec<u8> {
    fill(&format!("w{i};"), 400 + (i * 53 % 900) as usize)
}

/// The writes of the writer's commit `i` on branch `w`.
fn w_edits(i: u64) -> Edits {
    vec![
        (b"count".to_vec(), Some(i.to_string().into_bytes())),
        (format!("w/{}", i % 8).into_bytes(), Some(w_blob(i))),
    ]
}

/// What branch `w` holds after the writer's commit `i`.
fn w_state(i: u64) -> State {
    let mut s = State::new();
    for j in 1..=i {
        for (k, v) in w_edits(j) {
            s.insert(k, v.unwrap());
        }
    }
    s
}

/// A child: `SWEEP_WRITER_COMMITS` commits on `w`. Every third goes
/// through kvgit-core: write the tree and the commit, wait
/// `SLOW_COMMIT_PAUSE`, then move the ref: for that long its fresh objects
/// are reachable from nothing, and only the grace period keeps a sweep in
/// another process from deleting them. Every fourth also makes garbage (a
/// scratch branch with a blob, deleted at once).
fn child_sweep_writer(url: &str) {
    let db = Db::open(url).expect("open");
    let w = db.branch("w").unwrap();
    let repo = kvgit::advanced::repo(&db);
    say("\nready");
    for i in 1..=SWEEP_WRITER_COMMITS {
        let id = if i % 3 == 0 {
            let head = repo.get_ref("heads/w").unwrap().expect("w exists");
            let base = repo.tree(repo.read_commit(&head).unwrap().root).unwrap();
            let tree = repo.apply(&base, w_edits(i)).unwrap();
            let spec = CommitSpec {
                parents: vec![head],
                message: format!("slow {i}"),
                ..CommitSpec::default()
            };
            let id = repo.write_commit(&tree, &spec).unwrap();
            thread::sleep(SLOW_COMMIT_PAUSE);
            let moved = repo.move_ref("heads/w", Some(&head), Some(&id)).unwrap();
            assert_eq!(moved, CasOutcome::Swapped, "the only writer of w");
            id
        } else {
            let mut tx = w.transaction().unwrap();
            for (k, v) in w_edits(i) {
                tx.put(k, v.unwrap());
            }
            tx.commit().unwrap().commit.expect("a commit")
        };
        say(&format!("acked {i} {id}"));
        if i % 4 == 0 {
            let scratch = db.branch("scratch").unwrap();
            scratch
                .put("junk", fill(&format!("junk {i} "), 2000))
                .unwrap();
            db.delete_branch("scratch").unwrap();
        }
    }
    say("done");
}

#[test]
fn sweeps_beside_a_writer_in_another_process_lose_nothing() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let tdb = TestDb::new("sweep");
    let db = short_grace_db(&tdb.url, SWEEP_GRACE);
    let g = db.branch("g").unwrap();
    let mut writer = ChildProc::spawn("sweep-writer", &tdb.url);
    writer.wait_for_line("ready", Duration::from_secs(30));

    // Garbage of our own (rebased-away history of `g`), rebases and
    // sweeps, for as long as the writer runs.
    let (mut sweeps, mut found, mut deleted, mut kept_young, mut remarked) = (0, 0, 0, 0, 0);
    let mut rebases = 0;
    let mut round = 0u64;
    let mut tally = |r: kvgit::SweepReport| {
        sweeps += 1;
        assert_eq!(
            r.objects_unreachable,
            r.objects_freed + r.objects_kept_young
        );
        assert_eq!(r.bytes_unreachable, r.bytes_freed + r.bytes_kept_young);
        found += r.objects_unreachable;
        deleted += r.objects_freed;
        kept_young += r.objects_kept_young;
        remarked += r.remarked_refs;
    };
    while writer.running() {
        round += 1;
        let mut tx = g.transaction().unwrap();
        for j in 0..5 {
            tx.put(
                format!("g/{round}/{j}"),
                fill(&format!("g {round} {j} "), 1000),
            );
        }
        tx.commit().unwrap();
        if db.rebase("g", 3000, Some(1500)).unwrap().performed() {
            rebases += 1;
        }
        tally(db.sweep().unwrap());
    }
    let f = writer.wait_success(Duration::from_secs(5));
    assert!(
        f.lines.iter().any(|l| l == "done"),
        "the writer finished: {:?}",
        f.lines
    );
    tally(db.sweep().unwrap());

    // Nothing reachable was lost, and every commit the writer acknowledged
    // is on w's history with exactly what it wrote.
    let objects = verify_store(kvgit::advanced::repo(&db)).unwrap_or_else(|e| panic!("{e}"));
    let acked: Vec<(u64, ObjectId)> = f.lines.iter().filter_map(|l| parse_ack(l)).collect();
    assert_eq!(
        acked.iter().map(|a| a.0).collect::<Vec<_>>(),
        (1..=SWEEP_WRITER_COMMITS).collect::<Vec<_>>()
    );
    let w = db.get_branch("w").unwrap().expect("w");
    assert_eq!(w.head().unwrap(), acked.last().unwrap().1);
    assert_eq!(content(&db, "w"), w_state(SWEEP_WRITER_COMMITS));
    let history: Vec<CommitId> = w.log().unwrap().map(|c| c.unwrap().id).collect();
    for (i, id) in &acked {
        assert_eq!(
            history.get((SWEEP_WRITER_COMMITS - i) as usize),
            Some(id),
            "commit {i} is on w's history"
        );
        let snap = db.checkout(id).unwrap();
        assert_eq!(number(snap.get("count").unwrap(), "count"), *i);
        assert_eq!(
            snap.get(format!("w/{}", i % 8)).unwrap(),
            Some(w_blob(*i)),
            "commit {i}'s blob"
        );
    }
    assert_eq!(
        content(&db, "g").len(),
        1,
        "g was rebased down to its low water"
    );
    // The sweeps were not vacuous.
    assert!(rebases > 0, "no rebase of g happened");
    assert!(
        deleted > 0,
        "{sweeps} sweeps deleted nothing ({found} unreachable objects found, {kept_young} kept \
         as young)"
    );
    eprintln!(
        "{sweeps} sweeps and {rebases} rebases beside {SWEEP_WRITER_COMMITS} commits in another \
         process in {:.1?}: {deleted} objects deleted, {kept_young} kept as young, {remarked} \
         refs re-marked; {objects} reachable objects verified",
        started.elapsed()
    );
}

/// The ids of a tree's nodes and blobs, read from the store.
fn tree_objects(repo: &Repo, root: ObjectId) -> Vec<ObjectId> {
    let mut seen = HashSet::new();
    walk_tree(repo, root, &mut seen).unwrap();
    seen.into_iter().collect()
}

fn present(repo: &Repo, ids: &[ObjectId]) -> usize {
    ids.iter()
        .filter(|id| repo.backend().has_object(id).unwrap())
        .count()
}

#[test]
fn grace_period_keeps_unreferenced_objects_until_it_passes() {
    let tdb = TestDb::new("grace");
    let db = short_grace_db(&tdb.url, Duration::from_secs(60));
    let repo = kvgit::advanced::repo(&db);
    let main = db.branch("main").unwrap();
    main.put("kept", fill("kept ", 800)).unwrap();

    // What a writer in another process leaves between writing its objects
    // and moving its ref: a tree (with a blob) and a commit no ref reaches.
    let tree = repo
        .apply(
            &repo.empty_tree().unwrap(),
            vec![(b"pending".to_vec(), Some(fill("pending ", 1000)))],
        )
        .unwrap();
    let commit = repo.write_commit(&tree, &CommitSpec::default()).unwrap();
    let mut pending = tree_objects(repo, tree.root());
    pending.push(commit);
    assert!(pending.len() >= 3, "a commit, a node and a blob");
    // And what a deleted branch held: the ref log keeps it for the grace
    // period.
    let gone = db.branch("gone").unwrap();
    let gone_head = gone.put("gone", fill("gone ", 900)).unwrap();
    let gone_root = repo.read_commit(&gone_head).unwrap().root;
    let mut gone_objects = tree_objects(repo, gone_root);
    gone_objects.push(gone_head);
    db.delete_branch("gone").unwrap();

    let report = db.sweep().unwrap();
    assert_eq!(present(repo, &pending), pending.len(), "kept within 60 s");
    assert_eq!(present(repo, &gone_objects), gone_objects.len());
    assert!(
        report.objects_kept_young >= pending.len() as u64,
        "{report:?}"
    );
    assert!(report.ref_log_roots > 0, "{report:?}");
    verify_store(repo).unwrap();

    // Once the shortest grace period allowed has passed, a sweep with it
    // deletes them.
    let short = short_grace_db(&tdb.url, SHORT_GRACE);
    thread::sleep(SHORT_GRACE + Duration::from_millis(300));
    let report = short.sweep().unwrap();
    assert_eq!(present(repo, &pending), 0, "{report:?}");
    assert_eq!(present(repo, &gone_objects), 0, "{report:?}");
    assert_eq!(report.objects_kept_young, 0);
    assert!(report.objects_freed >= (pending.len() + gone_objects.len()) as u64);
    verify_store(repo).unwrap();
    assert_eq!(main.get("kept").unwrap(), Some(fill("kept ", 800)));
}

// ---------------------------------------------------------------------
// 3b. Sweeps against commits in flight (issue #15, item 13)
// ---------------------------------------------------------------------

/// The shortest grace period the tests below allow their stores.
const SHORT_GRACE: Duration = Duration::from_secs(1);

/// A `Db` on `url` whose sweeps use `grace`, which is also the store's
/// minimum (the default minimum, five minutes, is too long for a test).
fn short_grace_db(url: &str, grace: Duration) -> Db {
    Db::builder()
        .sweep_grace(grace)
        .postgres_options(PgOptions {
            min_grace: grace,
            ..PgOptions::default()
        })
        .open(url)
        .unwrap()
}

/// `kvgit sweep --grace 0` on a shared store: refused, saying the minimum,
/// and nothing is deleted; the minimum itself is accepted.
#[test]
fn a_grace_period_below_the_minimum_is_refused() {
    let tdb = TestDb::new("min_grace");
    let db = Db::builder()
        .sweep_grace(Duration::ZERO)
        .open(&tdb.url)
        .unwrap();
    let main = db.branch("main").unwrap();
    main.put("k", fill("k ", 900)).unwrap();
    let scratch = db.branch("scratch").unwrap();
    scratch.put("junk", fill("junk ", 900)).unwrap();
    db.delete_branch("scratch").unwrap();
    let count = |db: &Db| {
        let mut n = 0;
        kvgit::advanced::repo(db)
            .backend()
            .for_each_object(&mut |_, _| {
                n += 1;
                Ok(true)
            })
            .unwrap();
        n
    };
    let before = count(&db);

    let err = db.sweep().unwrap_err().to_string();
    assert!(
        err.contains("a grace period of 0 s is below this store's minimum of 300 s"),
        "{err}"
    );
    let options = |secs| SweepOptions {
        grace: Some(Duration::from_secs(secs)),
        ..SweepOptions::default()
    };
    let err = kvgit_gc::sweep(kvgit::advanced::repo(&db), &options(299)).unwrap_err();
    assert!(
        matches!(err, kvgit_gc::SweepError::GraceTooShort { min, .. } if min == Duration::from_secs(300)),
        "{err}"
    );
    assert_eq!(count(&db), before, "a refused sweep deletes nothing");
    // The minimum is accepted (and, everything being young, frees nothing).
    let report = kvgit_gc::sweep(kvgit::advanced::repo(&db), &options(300)).unwrap();
    assert_eq!(report.objects_freed, 0);
    // A store may lower its minimum, never below one second.
    let lowered = Db::builder()
        .sweep_grace(Duration::from_millis(500))
        .postgres_options(PgOptions {
            min_grace: Duration::ZERO,
            ..PgOptions::default()
        })
        .open(&tdb.url)
        .unwrap();
    let err = lowered.sweep().unwrap_err().to_string();
    assert!(err.contains("minimum of 1 s"), "{err}");
    verify_store(kvgit::advanced::repo(&db)).unwrap();
}

/// Garbage a slow writer builds on: a deleted branch `old` of `keys` keys,
/// each with a blob, whose objects (and ref-log entry) are then older than
/// [`SHORT_GRACE`]. Returns its tree, read while it was still there (the
/// writer's snapshot).
fn old_garbage(db: &Db, keys: usize) -> kvgit_core::Tree {
    let repo = kvgit::advanced::repo(db);
    let old = db.branch("old").unwrap();
    let mut tx = old.transaction().unwrap();
    for i in 0..keys {
        tx.put(format!("old/{i:04}"), fill(&format!("old {i} "), 300));
    }
    let head = tx.commit().unwrap().commit.expect("a commit");
    let tree = repo.tree(repo.read_commit(&head).unwrap().root).unwrap();
    db.delete_branch("old").unwrap();
    thread::sleep(SHORT_GRACE + Duration::from_millis(400));
    tree
}

/// Sweep first, swap second: a writer whose snapshot is older than the
/// grace period builds on objects a sweep then deletes. Its swap must fail
/// naming a missing object, and its ref must stay where it was (before the
/// fix, the swap succeeded and the branch pointed at deleted objects).
#[test]
fn a_swap_after_a_sweep_deleted_what_it_refers_to_fails() {
    let tdb = TestDb::new("swept_first");
    let writer = short_grace_db(&tdb.url, SHORT_GRACE);
    let sweeper = short_grace_db(&tdb.url, SHORT_GRACE);
    let repo = kvgit::advanced::repo(&writer);
    writer.branch("main").unwrap().put("base", "b").unwrap();
    let snapshot = old_garbage(&writer, 1);
    let head = repo.get_ref("heads/main").unwrap().expect("main");

    // The new tree: one key more on the old one, reusing its blob.
    let (tree, unwritten) = repo
        .apply_unwritten(&snapshot, vec![(b"new".to_vec(), Some(b"n".to_vec()))])
        .unwrap();
    let report = sweeper.sweep().unwrap();
    assert!(report.objects_freed >= 3, "{report:?}");
    let spec = CommitSpec {
        parents: vec![head],
        message: "slow".into(),
        ..CommitSpec::default()
    };
    let err = repo
        .commit_with("heads/main", Some(&head), &tree, unwritten, &spec)
        .unwrap_err();
    assert!(
        matches!(err, kvgit_core::Error::MissingObject(_)),
        "expected a missing object, got {err}"
    );
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(head));
    verify_store(repo).unwrap();

    // A ref moved to a commit the sweep deleted is refused too.
    let old_commit = repo
        .write_commit(&snapshot, &CommitSpec::default())
        .unwrap();
    thread::sleep(SHORT_GRACE + Duration::from_millis(400));
    sweeper.sweep().unwrap();
    let err = repo
        .move_ref("heads/main", Some(&head), Some(&old_commit))
        .unwrap_err();
    assert!(matches!(err, kvgit_core::Error::MissingObject(_)), "{err}");
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(head));
    verify_store(repo).unwrap();
}

/// A backend that runs a hook once, right after a sweep has listed the
/// store (between its marking and its deletes): the place where another
/// process's commit can slip in.
struct ListingHook {
    inner: Arc<PgBackend>,
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Backend for ListingHook {
    fn get_object(&self, id: &ObjectId) -> kvgit_core::Result<Option<Vec<u8>>> {
        self.inner.get_object(id)
    }
    fn has_object(&self, id: &ObjectId) -> kvgit_core::Result<bool> {
        self.inner.has_object(id)
    }
    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> kvgit_core::Result<()> {
        self.inner.put_objects(objects)
    }
    fn delete_objects(&self, ids: &[ObjectId]) -> kvgit_core::Result<()> {
        self.inner.delete_objects(ids)
    }
    fn for_each_object(
        &self,
        visit: &mut dyn FnMut(ObjectId, u64) -> kvgit_core::Result<bool>,
    ) -> kvgit_core::Result<()> {
        self.inner.for_each_object(visit)?;
        if let Some(hook) = self.hook.lock().unwrap().take() {
            hook();
        }
        Ok(())
    }
    fn get_ref(&self, name: &str) -> kvgit_core::Result<Option<ObjectId>> {
        self.inner.get_ref(name)
    }
    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> kvgit_core::Result<CasOutcome> {
        self.inner.cas_ref(name, expected, new)
    }
    fn list_refs(&self, prefix: &str) -> kvgit_core::Result<Vec<(String, ObjectId)>> {
        self.inner.list_refs(prefix)
    }
    fn get_meta(&self, key: &[u8]) -> kvgit_core::Result<Option<Vec<u8>>> {
        self.inner.get_meta(key)
    }
    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> kvgit_core::Result<()> {
        self.inner.put_meta(entries)
    }
    fn scan_meta(&self, prefix: &[u8]) -> kvgit_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan_meta(prefix)
    }
    fn flush(&self, durability: Durability) -> kvgit_core::Result<()> {
        self.inner.flush(durability)
    }
    fn size_on_disk(&self) -> kvgit_core::Result<u64> {
        self.inner.size_on_disk()
    }
    fn shared(&self) -> Option<&dyn SharedStore> {
        self.inner.shared()
    }
}

/// Swap second... the other way round: a sweep lists the store, then a
/// writer (another process) swaps a commit that reuses old garbage, then
/// the sweep deletes. The swap wins, and the sweep keeps everything the
/// new commit reaches: the old leaves it refers to directly (refreshed by
/// the swap) and the blobs below them (kept because a kept node refers to
/// them).
#[test]
fn a_swap_during_a_sweep_keeps_what_it_refers_to() {
    let tdb = TestDb::new("swap_first");
    let writer = short_grace_db(&tdb.url, SHORT_GRACE);
    let repo = kvgit::advanced::repo(&writer).clone();
    writer.branch("main").unwrap().put("base", "b").unwrap();
    let snapshot = old_garbage(&writer, 400);
    assert!(
        repo.node(&snapshot.root()).unwrap().level() > 0,
        "the old tree has several leaves"
    );
    let head = repo.get_ref("heads/main").unwrap().expect("main");

    let options = PgOptions {
        min_grace: SHORT_GRACE,
        ..PgOptions::default()
    };
    let inner = Arc::new(PgBackend::open_with(&tdb.url, options).unwrap());
    let hooked = Arc::new(ListingHook {
        inner,
        hook: Mutex::new(None),
    });
    let sweeper = Repo::new(hooked.clone(), RepoOptions::default());
    let swapped = Arc::new(Mutex::new(None));
    {
        let repo = repo.clone();
        let swapped = swapped.clone();
        *hooked.hook.lock().unwrap() = Some(Box::new(move || {
            // One key changed: a new leaf and a new root; every other old
            // leaf is reused as it is.
            let (tree, unwritten) = repo
                .apply_unwritten(
                    &snapshot,
                    vec![(b"old/0000".to_vec(), Some(b"new".to_vec()))],
                )
                .unwrap();
            let spec = CommitSpec {
                parents: vec![head],
                ..CommitSpec::default()
            };
            let (id, outcome) = repo
                .commit_with("heads/main", Some(&head), &tree, unwritten, &spec)
                .unwrap();
            *swapped.lock().unwrap() = Some((id, outcome));
        }));
    }
    let report = kvgit_gc::sweep(
        &sweeper,
        &SweepOptions {
            grace: Some(SHORT_GRACE),
            ..SweepOptions::default()
        },
    )
    .unwrap();
    let (id, outcome) = swapped.lock().unwrap().take().expect("the hook ran");
    assert_eq!(outcome, CasOutcome::Swapped);
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(id));
    assert!(report.objects_kept_young > 400, "{report:?}");
    assert!(
        report.objects_freed >= 2,
        "the old root and commit: {report:?}"
    );
    verify_store(&repo).unwrap_or_else(|e| panic!("{e}"));
    let main = content(&writer, "main");
    assert_eq!(main.len(), 400);
    assert_eq!(main.get(b"old/0000".as_slice()), Some(&b"new".to_vec()));
    assert_eq!(
        main.get(b"old/0399".as_slice()),
        Some(&fill("old 399 ", 300))
    );
}

/// Commits in threads (each with a `Db` of its own, as separate processes
/// would be) while sweeps with the shortest grace period allowed run in a
/// loop and garbage keeps appearing. Some transactions take longer than
/// the grace period; such a commit may be refused (a missing object), but
/// no commit is acknowledged whose objects are not all in the store.
#[test]
fn commits_beside_sweeps_in_a_loop_are_complete_or_refused() {
    let _serial = one_at_a_time();
    let tdb = TestDb::new("sweep_loop");
    const WRITERS: usize = 3;
    const COMMITS: usize = 24;
    let done = Arc::new(AtomicUsize::new(0));
    let acked: Arc<Mutex<Vec<(String, ObjectId, State)>>> = Arc::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (url, done, acked, refused) = (
            tdb.url.clone(),
            done.clone(),
            acked.clone(),
            refused.clone(),
        );
        handles.push(thread::spawn(move || {
            let db = short_grace_db(&url, SHORT_GRACE);
            let name = format!("w{w}");
            let branch = db.branch(&name).unwrap();
            for i in 0..COMMITS {
                // Garbage: a scratch branch with a blob, deleted at once.
                let scratch = db.branch(&format!("scratch{w}")).unwrap();
                scratch
                    .put("junk", fill(&format!("junk {w} {i} "), 900))
                    .unwrap();
                db.delete_branch(&format!("scratch{w}")).unwrap();
                // Every third transaction holds its snapshot past the
                // grace period; every fourth rewrites the branch (its
                // old history becomes garbage).
                let mut tx = branch.transaction().unwrap();
                tx.put(format!("k{}", i % 5), fill(&format!("{w} {i} "), 700));
                if i % 3 == 1 {
                    thread::sleep(SHORT_GRACE + Duration::from_millis(200));
                }
                match tx.commit() {
                    Ok(outcome) => {
                        if let Some(id) = outcome.commit {
                            acked
                                .lock()
                                .unwrap()
                                .push((name.clone(), id, content(&db, &name)));
                        }
                    }
                    Err(kvgit::Error::MissingObject(_)) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("writer {w}, commit {i}: {e}"),
                }
                if i % 4 == 3 {
                    let _ = db.rebase(&name, 1500, Some(700));
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let sweeper = short_grace_db(&tdb.url, SHORT_GRACE);
    let mut freed = 0;
    while done.load(Ordering::SeqCst) < WRITERS {
        freed += sweeper.sweep().unwrap().objects_freed;
        thread::sleep(Duration::from_millis(50));
    }
    for h in handles {
        h.join().unwrap();
    }
    freed += sweeper.sweep().unwrap().objects_freed;
    verify_store(kvgit::advanced::repo(&sweeper)).unwrap_or_else(|e| panic!("{e}"));
    // Every branch holds what its last acknowledged commit wrote, and
    // that state reads back in full.
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    for w in 0..WRITERS {
        let name = format!("w{w}");
        let head = sweeper
            .get_branch(&name)
            .unwrap()
            .expect("w")
            .head()
            .unwrap();
        if let Some((_, _, state)) = acked.iter().rev().find(|a| a.0 == name && a.1 == head) {
            assert_eq!(&content(&sweeper, &name), state, "{name}");
        }
    }
    assert!(freed > 0, "the sweeps freed nothing");
    eprintln!(
        "{} commits acknowledged, {} refused, {freed} objects freed",
        acked.len(),
        refused.load(Ordering::SeqCst)
    );
}

// ---------------------------------------------------------------------
// 4. Shared access recency
// ---------------------------------------------------------------------

/// On branch `name`: `writer` writes k1, k2, k3 (equal sizes); `other`
/// reads k1; `writer` reads k2; both flush. Then `rebaser` drops one key:
/// it must be k3, which holds only the writer's old write; without the
/// other's read of k1, k1 would be the coldest.
fn coldest_is_untouched(name: &str, writer: &Db, other: &Db, rebaser: &Db) {
    let pause = || thread::sleep(Duration::from_millis(3));
    let branch = writer.branch(name).unwrap();
    for k in ["k1", "k2", "k3"] {
        branch.put(k, fill(k, 1000)).unwrap();
        pause();
    }
    let theirs = other.get_branch(name).unwrap().unwrap();
    assert_eq!(theirs.get("k1").unwrap(), Some(fill("k1", 1000)));
    pause();
    assert_eq!(branch.get("k2").unwrap(), Some(fill("k2", 1000)));
    writer.flush().unwrap();
    other.flush().unwrap();
    let report = rebaser.rebase(name, 2500, Some(2000)).unwrap();
    assert!(report.performed(), "{report:?}");
    assert_eq!(report.dropped, vec![b"k3".to_vec()], "branch {name}");
    let left: Vec<Vec<u8>> = content(rebaser, name).into_keys().collect();
    assert_eq!(left, vec![b"k1".to_vec(), b"k2".to_vec()]);
}

#[test]
fn access_recency_is_shared_between_openers() {
    let tdb = TestDb::new("access");
    // Recency is recorded by default only with water marks: ask for it.
    let open = || Db::builder().track_access(true).open(&tdb.url).unwrap();
    let a = open();
    let b = open();
    // a rebases and sees b's touch; then the other way round.
    coldest_is_untouched("x", &a, &b, &a);
    coldest_is_untouched("y", &b, &a, &b);
    // A third opener, which touched nothing, sees both.
    coldest_is_untouched("z", &a, &b, &open());
}

/// A commit on a branch that lost a race moments ago takes the writer turn
/// before its first try and merges onto the head another opener moved
/// meanwhile. Its new nodes are not stored yet then (they go with the
/// commit object), and with no node cache the merge must still find them.
#[test]
fn a_merge_before_the_first_try_reads_stored_nodes() {
    let tdb = TestDb::new("unwritten");
    let a = Db::builder().cache_bytes(0).open(&tdb.url).unwrap();
    let b = Db::open(&tdb.url).unwrap();
    a.merge_fns().set("n", Counter);
    let main_a = a.branch("main").unwrap();
    let main_b = b.branch("main").unwrap();
    // A tree of several levels, so the merge reads inner nodes.
    let mut fill = main_b.transaction().unwrap();
    for i in 0..6000u32 {
        fill.put(format!("k{i:05}"), [b'v'; 40]);
    }
    fill.put("n", "0");
    fill.commit().unwrap();
    // a loses a race on main: it is contended for a moment.
    let mut lost = main_a.transaction().unwrap();
    lost.put("n", "1");
    main_b.put("k00001", "b").unwrap();
    assert!(lost.commit().unwrap().attempts >= 2);
    // Within that moment: b moves the head under a's next transaction.
    let mut tx = main_a.transaction().unwrap();
    tx.put("n", "3").put("k05999", "a");
    main_b.put("k00002", "b").unwrap();
    let outcome = tx.commit().unwrap();
    assert!(outcome.committed);
    assert_eq!(main_b.get("n").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(main_b.get("k05999").unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(main_b.get("k00002").unwrap().as_deref(), Some(&b"b"[..]));
    verify_store(kvgit::advanced::repo(&b)).unwrap();
}

// ---------------------------------------------------------------------
// 5. The model proptest, smaller, on PostgreSQL
// ---------------------------------------------------------------------

mod model {
    //! A compact copy of `model.rs` (whose helpers are private to its own
    //! test crate): random transactions, racing commits, forks and merges
    //! on several branches against a model of maps, with the default merge
    //! function `Theirs`. Every case runs in one database, under branch
    //! names of its own.

    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    type ModelEdits = Vec<(u8, Option<u8>)>;

    #[derive(Clone, Debug)]
    enum Op {
        Tx(usize, ModelEdits),
        Race(usize, ModelEdits, ModelEdits),
        Fork(usize),
        Merge(usize, usize),
    }

    fn edits() -> impl Strategy<Value = ModelEdits> {
        proptest::collection::vec((0u8..8, proptest::option::weighted(0.75, 0u8..4)), 1..5)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..4, edits()).prop_map(|(b, e)| Op::Tx(b, e)),
            2 => (0usize..4, edits(), edits()).prop_map(|(b, x, y)| Op::Race(b, x, y)),
            1 => (0usize..4).prop_map(Op::Fork),
            2 => (0usize..4, 0usize..4).prop_map(|(a, b)| Op::Merge(a, b)),
        ]
    }

    fn key(k: u8) -> Vec<u8> {
        format!("key{k}").into_bytes()
    }

    fn apply(state: &State, edits: &ModelEdits) -> State {
        let mut s = state.clone();
        for (k, v) in edits {
            match v {
                Some(v) => s.insert(key(*k), vec![*v]),
                None => s.remove(&key(*k)),
            };
        }
        s
    }

    fn merge3(base: &State, ours: &State, theirs: &State) -> State {
        let keys: std::collections::BTreeSet<&Vec<u8>> = base
            .keys()
            .chain(ours.keys())
            .chain(theirs.keys())
            .collect();
        let mut out = State::new();
        for k in keys {
            let (b, o, t) = (base.get(k), ours.get(k), theirs.get(k));
            if let Some(v) = if o == t || t == b { o } else { t } {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    fn stage(tx: &mut kvgit::Transaction, edits: &ModelEdits) {
        for (k, v) in edits {
            match v {
                Some(v) => tx.put(key(*k), [*v]),
                None => tx.delete(key(*k)),
            };
        }
    }

    fn run_case(db: &Db, case: usize, ops: Vec<Op>) {
        let main = db.branch(&format!("m{case}/main")).unwrap();
        let mut names = vec![format!("m{case}/main")];
        let mut states: HashMap<CommitId, State> = HashMap::new();
        states.insert(main.head().unwrap(), State::new());
        let branch =
            |names: &[String], i: usize| db.get_branch(&names[i % names.len()]).unwrap().unwrap();
        for op in ops {
            match op {
                Op::Tx(b, e) => {
                    let branch = branch(&names, b);
                    let before = states[&branch.head().unwrap()].clone();
                    let mut tx = branch.transaction().unwrap();
                    stage(&mut tx, &e);
                    let head = tx.commit().unwrap().commit.unwrap();
                    states.insert(head, apply(&before, &e));
                }
                Op::Race(b, x, y) => {
                    let branch = branch(&names, b);
                    let snapshot = states[&branch.head().unwrap()].clone();
                    let mut first = branch.transaction().unwrap();
                    let mut second = branch.transaction().unwrap();
                    stage(&mut first, &x);
                    stage(&mut second, &y);
                    let after_first = apply(&snapshot, &x);
                    states.insert(first.commit().unwrap().commit.unwrap(), after_first.clone());
                    let h2 = second.commit().unwrap().commit.unwrap();
                    states.insert(h2, merge3(&snapshot, &apply(&snapshot, &y), &after_first));
                }
                Op::Fork(b) => {
                    if names.len() < 4 {
                        let name = format!("m{case}/b{}", names.len());
                        branch(&names, b).fork(&name).unwrap();
                        names.push(name);
                    }
                }
                Op::Merge(a, b) => {
                    let from = branch(&names, a);
                    let into = branch(&names, b);
                    let (ours, theirs) = (into.head().unwrap(), from.head().unwrap());
                    let base =
                        kvgit_merge::merge_base(kvgit::advanced::repo(db), &ours, &theirs).unwrap();
                    let base_state = base.map(|b| states[&b].clone()).unwrap_or_default();
                    let expected = merge3(&base_state, &states[&ours], &states[&theirs]);
                    let out = into.merge_from(&from).unwrap();
                    states.insert(out.head, expected);
                }
            }
            for name in &names {
                let head = db.get_branch(name).unwrap().unwrap().head().unwrap();
                assert_eq!(&content(db, name), &states[&head], "branch {name}");
            }
        }
    }

    #[test]
    fn branches_match_the_model_on_postgres() {
        let tdb = TestDb::new("model");
        let db = Db::open(&tdb.url).unwrap();
        db.merge_fns().set_default(Theirs);
        let cases = std::env::var("KVGIT_PG_MODEL_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let case = AtomicUsize::new(0);
        runner
            .run(&proptest::collection::vec(op(), 1..30), |ops| {
                run_case(&db, case.fetch_add(1, Ordering::Relaxed), ops);
                Ok(())
            })
            .unwrap();
        verify_store(kvgit::advanced::repo(&db)).unwrap();
    }
}

// ---------------------------------------------------------------------
// 6. Remotes between sled and PostgreSQL
// ---------------------------------------------------------------------

/// Clone, push and clone back across backends: sled to PostgreSQL (the
/// source a path), PostgreSQL to sled (the source a `postgres://` URL).
/// Commit ids are content: the same history has the same ids on both.
#[cfg(feature = "remote")]
#[test]
fn clones_and_pushes_between_sled_and_postgres() {
    use kvgit::remote::PushOptions;
    let tdb = TestDb::new("clone");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let (main_head, dev_head) = {
        let db = Db::open(&source).unwrap();
        let main = db.branch("main").unwrap();
        let mut tx = main.transaction().unwrap();
        for i in 0..300 {
            tx.put(format!("k{i:03}"), format!("value {i}"));
        }
        tx.commit().unwrap();
        let dev = main.fork("dev").unwrap();
        dev.put("only-on-dev", "1").unwrap();
        (main.head().unwrap(), dev.head().unwrap())
    };
    let source_url = source.to_string_lossy().into_owned();

    // sled -> PostgreSQL.
    let (pg, report) = Db::clone_from(&source_url, &tdb.url).unwrap();
    assert!(report.objects_received > 0);
    assert_eq!(pg.resolve("main").unwrap(), main_head);
    assert_eq!(pg.resolve("dev").unwrap(), dev_head);
    assert_eq!(pg.resolve("origin/dev").unwrap(), dev_head);
    assert!(pg.verify().unwrap().is_ok());
    let pg_main = pg.branch("main").unwrap();
    assert_eq!(pg_main.len().unwrap(), 300);
    assert_eq!(
        text(pg_main.get("k042").unwrap()).as_deref(),
        Some("value 42")
    );

    // A commit made on PostgreSQL, pushed back to the sled store.
    let pushed = pg_main.put("k042", "changed on postgres").unwrap();
    pg_main.push("origin", PushOptions::default()).unwrap();
    {
        let db = Db::open_existing(&source).unwrap();
        assert_eq!(db.resolve("main").unwrap(), pushed);
        assert!(db.verify().unwrap().is_ok());
    }

    // PostgreSQL -> a new sled store.
    let back = dir.path().join("back");
    let (copy, report) = Db::clone_from(&tdb.url, &back).unwrap();
    assert!(report.objects_received > 0);
    assert_eq!(copy.resolve("main").unwrap(), pushed);
    assert_eq!(copy.resolve("dev").unwrap(), dev_head);
    let copy_main = copy.branch("main").unwrap();
    assert_eq!(
        text(copy_main.get("k042").unwrap()).as_deref(),
        Some("changed on postgres")
    );
    assert!(copy.verify().unwrap().is_ok());
}
