//! Crash safety: a child process commits to a store on disk (sled, and the
//! journal backend) in a loop and is killed with SIGKILL at a random
//! moment; the parent reopens the store and checks it, over many rounds on
//! the same store.
//!
//! After every kill:
//! - every ref points at a commit whose whole tree is readable: every node
//!   and blob is present and hashes to its id (the decoders check), and the
//!   aggregates of every internal node agree with its children;
//! - the first-parent history of `heads/main` is readable down to the root,
//!   and every commit on it holds exactly the content its writer put there
//!   (the parent replays the writer's operations on a `BTreeMap`);
//! - every commit the child acknowledged (`ACK <id>` on stdout, printed
//!   after [`Repo::commit`] returned) is present and is an ancestor of, or
//!   equal to, the head of `heads/main`, in both durability modes: a
//!   process crash keeps what a flush handed to the operating system (a
//!   backend without such a flush may lose only a suffix of them, which
//!   `verify` can check with `lossy`);
//! - the store accepts a new commit.
//!
//! `KVGIT_CRASH_ROUNDS` sets the number of rounds (default 8, which runs in
//! a few seconds); `KVGIT_CRASH_KILL_IN_OPEN=1` also kills the child while
//! it opens the store.

#![cfg(unix)]

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvgit_core::object::Node;
use kvgit_core::{
    Backend, CasOutcome, CommitSpec, Durability, Error, JournalBackend, JournalOptions, ObjectId,
    Repo, RepoOptions, SledBackend, SledOptions, Tree, Value,
};

/// The store on disk a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Sled,
    Journal,
}

impl Engine {
    fn open(self, path: &Path) -> kvgit_core::Result<Arc<dyn Backend>> {
        Ok(match self {
            Engine::Sled => Arc::new(SledBackend::open(path, SledOptions::default())?),
            Engine::Journal => Arc::new(JournalBackend::open(path, JournalOptions::default())?),
        })
    }
}

/// Set in the child: the store's path.
const CHILD_PATH_ENV: &str = "KVGIT_CRASH_CHILD_STORE";
/// Set in the child: the seed of its operations.
const CHILD_SEED_ENV: &str = "KVGIT_CRASH_CHILD_SEED";
/// The child's line once the store is open and it starts committing.
const READY: &str = "kvgit-crash-child-ready";
/// The ref the child commits to.
const MAIN: &str = "heads/main";
/// A second ref the child moves now and then to main's head.
const BACKUP: &str = "heads/backup";
/// Keys are `k00000` .. `k02999`.
const KEY_SPACE: u64 = 3000;

#[test]
fn sigkill_during_durable_commits() {
    crash_test(
        "sigkill_during_durable_commits",
        Engine::Sled,
        Durability::Durable,
        0xd0_4ab1e,
    );
}

#[test]
fn sigkill_during_eventual_commits() {
    crash_test(
        "sigkill_during_eventual_commits",
        Engine::Sled,
        Durability::Eventual,
        0xe7e_4a11,
    );
}

#[test]
fn sigkill_during_durable_commits_to_a_journal() {
    crash_test(
        "sigkill_during_durable_commits_to_a_journal",
        Engine::Journal,
        Durability::Durable,
        0x10_4ab1e,
    );
}

#[test]
fn sigkill_during_eventual_commits_to_a_journal() {
    crash_test(
        "sigkill_during_eventual_commits_to_a_journal",
        Engine::Journal,
        Durability::Eventual,
        0x1e7_4a11,
    );
}

fn crash_test(test_name: &str, engine: Engine, durability: Durability, seed: u64) {
    if let Ok(path) = std::env::var(CHILD_PATH_ENV) {
        let seed = std::env::var(CHILD_SEED_ENV)
            .expect("the parent sets the seed")
            .parse()
            .expect("a u64 seed");
        child(Path::new(&path), engine, durability, seed);
    }
    let rounds = rounds();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("store");
    let mut rng = Rng(seed);
    let mut state = Verified::default();
    let mut totals = Totals::default();
    let start = Instant::now();
    for round in 0..rounds {
        let outcome = run_child(test_name, dir.path(), &path, rng.next(), round, &mut rng);
        let repo = reopen(&path, engine, durability).unwrap_or_else(|e| {
            let kept = keep_store(&path, test_name);
            panic!(
                "round {round} (child killed {} its ready line): the store does not reopen \
                 after the crash: {e}; the damaged store is kept at {}",
                if outcome.ready { "after" } else { "before" },
                kept.display()
            )
        });
        let full = rounds <= 20 || round % 10 == 9 || round + 1 == rounds;
        // A process crash keeps what a flush handed to the operating system,
        // so acknowledged commits survive in both modes (what `Durable`
        // adds, the fsync, matters only for a power loss).
        let lossy = false;
        if let Err(e) = verify(&repo, &mut state, &outcome.acked, full, lossy) {
            drop(repo);
            let kept = keep_store(&path, test_name);
            panic!(
                "round {round}: the store is damaged: {e}; it is kept at {}",
                kept.display()
            );
        }
        // The store accepts a new commit, which the next round builds on.
        let ops_seed = rng.next();
        let id = commit_ops(&repo, ops_seed).expect("a commit after recovery");
        verify(&repo, &mut state, &[id], false, false)
            .unwrap_or_else(|e| panic!("round {round}: after a new commit: {e}"));
        drop(repo);
        totals.acked += outcome.acked.len();
        totals.rounds_with_acks += usize::from(!outcome.acked.is_empty());
        totals.killed_before_ready += usize::from(!outcome.ready);
    }
    eprintln!(
        "{test_name}: {rounds} rounds in {:.1?}: {} acknowledged commits verified \
         ({} rounds acknowledged some; {} kills before the child was ready); \
         main is at height {} with {} keys",
        start.elapsed(),
        totals.acked,
        totals.rounds_with_acks,
        totals.killed_before_ready,
        state.height,
        state.model.len(),
    );
    assert!(
        totals.acked > 0 || rounds < 4,
        "no round acknowledged a commit: the child never got going"
    );
}

fn rounds() -> usize {
    match std::env::var("KVGIT_CRASH_ROUNDS") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("KVGIT_CRASH_ROUNDS={s:?} is not a number")),
        Err(_) => 8,
    }
}

fn kill_in_open() -> bool {
    std::env::var_os("KVGIT_CRASH_KILL_IN_OPEN").is_some_and(|v| v == "1")
}

#[derive(Default)]
struct Totals {
    acked: usize,
    rounds_with_acks: usize,
    killed_before_ready: usize,
}

/// What one child run printed before it was killed.
struct ChildOutcome {
    ready: bool,
    acked: Vec<ObjectId>,
}

/// Starts the child, kills it after a random delay (most rounds counted
/// from its ready line, some from its start, to hit the open and sled's
/// recovery too) and collects its acknowledgements.
fn run_child(
    test_name: &str,
    dir: &Path,
    path: &Path,
    child_seed: u64,
    round: usize,
    rng: &mut Rng,
) -> ChildOutcome {
    let stderr_path = dir.join("child-stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).expect("the stderr file");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_PATH_ENV, path)
        .env(CHILD_SEED_ENV, child_seed.to_string())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut lines = Vec::new();
    // With KVGIT_CRASH_KILL_IN_OPEN=1, a quarter of the kills come a few
    // ms after the start: during the open and sled's recovery of the
    // previous crash, or the first commits. Off by default until the bug
    // `partial_snapshot_left_by_a_crash_does_not_block_open` pins is
    // fixed: it fails about one such round in 60.
    let from_start = kill_in_open() && rng.below(4) == 0;
    let delay = Duration::from_millis(if from_start {
        rng.below(15)
    } else {
        2 + rng.below(100)
    });
    let deadline = if from_start {
        Instant::now() + delay
    } else {
        // Wait for the ready line (bounded: a slow machine gets the kill
        // late, not never).
        let give_up = Instant::now() + Duration::from_secs(20);
        loop {
            let now = Instant::now();
            assert!(now < give_up, "round {round}: the child never got ready");
            match rx.recv_timeout(give_up - now) {
                Ok(line) => {
                    let ready = line.trim_end().ends_with(READY);
                    lines.push(line);
                    if ready {
                        break Instant::now() + delay;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "round {round}: the child exited before it got ready: {}",
                        std::fs::read_to_string(&stderr_path).unwrap_or_default()
                    );
                }
            }
        }
    };
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    // `kill` sends SIGKILL on unix: no destructor, no flush, no exit.
    let _ = child.kill();
    let status = child.wait().expect("the child is reaped");
    reader.join().expect("the reader thread");
    lines.extend(rx.try_iter());
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the child was meant to die by SIGKILL, not {status:?}; its stderr:\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );

    let ready = lines.iter().any(|l| l.trim_end().ends_with(READY));
    let acked = lines.iter().filter_map(|l| parse_ack(l)).collect();
    ChildOutcome { ready, acked }
}

/// An `ACK <64 hex>` line (a line cut short by the kill is ignored).
fn parse_ack(line: &str) -> Option<ObjectId> {
    let hex = line.trim().strip_prefix("ACK ")?;
    hex.parse().ok()
}

/// Opens the store, retrying while the dead child's lock lingers (the
/// kernel releases a dead process's `flock` when it is reaped, so this
/// should succeed at once).
fn reopen(path: &Path, engine: Engine, durability: Durability) -> kvgit_core::Result<Repo> {
    let start = Instant::now();
    loop {
        match engine.open(path) {
            Ok(backend) => {
                return Ok(Repo::new(
                    backend,
                    RepoOptions {
                        durability,
                        ..RepoOptions::default()
                    },
                ))
            }
            Err(Error::Locked { .. }) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Copies a store that failed a check out of the temporary directory (which
/// is removed when the test fails) and returns where it is.
fn keep_store(path: &Path, test_name: &str) -> std::path::PathBuf {
    let kept = std::env::temp_dir().join(format!("kvgit-{test_name}-{}", std::process::id()));
    copy_dir(path, &kept);
    kept
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::create_dir_all(to);
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            copy_dir(&entry.path(), &target);
        } else {
            let _ = std::fs::copy(entry.path(), target);
        }
    }
}

/// sled 0.34 writes its snapshot (at open, after recovery, and every
/// million operations) to `snap.<lsn>.generating`, then renames it; a
/// process killed before the rename leaves the partial file behind, and
/// sled's next open takes it for the newest snapshot and fails with
/// "Read corrupted data at file offset None" (sled issues #1527, #1533),
/// so the store never opens again. The crash test hit this about once in
/// 60 kills during an open. Deleting the partial file (safe: a complete
/// snapshot is always renamed, and sled can recover from the log alone)
/// makes the store open with all of its commits.
#[test]
fn partial_snapshot_left_by_a_crash_does_not_block_open() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("store");
    let mut ids = Vec::new();
    {
        let repo = reopen(&path, Engine::Sled, Durability::Durable).expect("a new store");
        for seed in 0..20 {
            ids.push(commit_ops(&repo, seed).expect("commit"));
        }
    }
    // What a kill in the middle of `write_snapshot` leaves: a partial file
    // named after the newest snapshot (or LSN 0 if there is none).
    let newest = std::fs::read_dir(&path)
        .expect("the store directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("snap.") && !name.ends_with(".generating"))
        .max()
        .unwrap_or_else(|| "snap.0000000000000000".to_string());
    std::fs::write(path.join(format!("{newest}.generating")), [0u8; 7]).expect("write");

    let repo = reopen(&path, Engine::Sled, Durability::Durable)
        .unwrap_or_else(|e| panic!("a partial snapshot file blocks the open: {e}"));
    assert_eq!(repo.get_ref(MAIN).expect("read main"), ids.last().copied());
    for id in &ids {
        repo.read_commit(id).expect("every commit survives");
    }
}

/// The child: commits random operations to `heads/main` until killed.
fn child(path: &Path, engine: Engine, durability: Durability, seed: u64) -> ! {
    let backend = engine.open(path).expect("the child opens");
    let repo = Repo::new(
        backend,
        RepoOptions {
            durability,
            ..RepoOptions::default()
        },
    );
    let mut rng = Rng(seed);
    let mut out = std::io::stdout();
    // libtest has already printed "test <name> ... " without a newline.
    writeln!(out, "\n{READY}").expect("stdout");
    out.flush().expect("stdout");
    let give_up = Instant::now() + Duration::from_secs(60);
    while Instant::now() < give_up {
        let id = commit_ops(&repo, rng.next()).expect("the child commits");
        writeln!(out, "ACK {id}").expect("stdout");
        out.flush().expect("stdout");
        if rng.below(8) == 0 {
            // Move a second ref too, so there is more than one to check.
            let old = repo.get_ref(BACKUP).expect("read backup");
            let moved = repo
                .move_ref(BACKUP, old.as_ref(), Some(&id))
                .expect("move backup");
            assert_eq!(moved, CasOutcome::Swapped, "single writer");
        }
    }
    // Only reached if the parent died without killing us.
    std::process::exit(3);
}

/// One commit on `heads/main`: the operations of `ops_seed` applied to the
/// head's tree, with the seed in the message so a reader can replay it.
fn commit_ops(repo: &Repo, ops_seed: u64) -> kvgit_core::Result<ObjectId> {
    let _fence = repo.write_fence();
    let head = repo.get_ref(MAIN)?;
    let tree = match &head {
        Some(id) => repo.tree(repo.read_commit(id)?.root)?,
        None => repo.empty_tree()?,
    };
    let tree = repo.apply(&tree, ops(ops_seed))?;
    let spec = CommitSpec {
        parents: head.into_iter().collect(),
        message: format!("ops {ops_seed:016x}"),
        ..CommitSpec::default()
    };
    let (id, outcome) = repo.commit(MAIN, head.as_ref(), &tree, &spec)?;
    assert_eq!(outcome, CasOutcome::Swapped, "a single writer never loses");
    Ok(id)
}

/// The puts and deletes a commit makes, a pure function of its seed: 1 to
/// 8 operations on a key space of 3000 keys; a quarter are deletes; values
/// are mostly inline, some blobs (257 B - 4 KiB), and now and then one
/// over 128 KiB (which sled keeps in a page file of its own).
fn ops(seed: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut rng = Rng(seed);
    let n = 1 + rng.below(8);
    (0..n)
        .map(|_| {
            let key = format!("k{:05}", rng.below(KEY_SPACE)).into_bytes();
            if rng.below(4) == 0 {
                return (key, None);
            }
            let len = match rng.below(100) {
                0 => 130_000 + rng.below(20_000),
                1..=24 => 257 + rng.below(4000 - 257),
                _ => 1 + rng.below(200),
            };
            let fill = rng.next();
            let value = (0..len)
                .map(|i| (fill.wrapping_add(i.wrapping_mul(0x9e37)) >> 3) as u8)
                .collect();
            (key, Some(value))
        })
        .collect()
}

/// What the parent has verified so far: main's head, its height, and the
/// content the replayed operations say it holds.
#[derive(Default)]
struct Verified {
    head: Option<ObjectId>,
    height: u64,
    model: BTreeMap<Vec<u8>, Vec<u8>>,
}

type Check<T> = Result<T, String>;

fn fail<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// Checks the store as described in the module docs, advancing `state` to
/// main's current head. `full`: also walk every ref's whole tree
/// structurally and hash-check every stored object.
fn verify(
    repo: &Repo,
    state: &mut Verified,
    acked: &[ObjectId],
    full: bool,
    lossy: bool,
) -> Check<()> {
    let Some(head) = repo.get_ref(MAIN).map_err(fail("read heads/main"))? else {
        // Legitimate only if no commit was ever made or acknowledged: a
        // child killed before its first commit (a loaded machine can be
        // that slow in the first round).
        if state.head.is_none() && acked.is_empty() {
            return match repo.get_ref(BACKUP).map_err(fail("read heads/backup"))? {
                None => Ok(()),
                Some(_) => Err("heads/backup exists without heads/main".to_string()),
            };
        }
        return Err("heads/main is missing".to_string());
    };

    // History: readable to the root; collect the new commits (those above
    // the last verified head, which must still be an ancestor).
    let mut chain = Vec::new();
    let mut reached_old_head = false;
    let mut ancestors = HashSet::new();
    let mut expected_height = None;
    for item in repo.first_parent_log(head) {
        let (id, commit) = item.map_err(fail("walk main's history"))?;
        if let Some(h) = expected_height {
            if commit.height != h {
                return Err(format!("commit {id} has height {}, not {h}", commit.height));
            }
        }
        expected_height = commit.height.checked_sub(1);
        if Some(id) == state.head {
            reached_old_head = true;
        }
        if !reached_old_head {
            chain.push((id, commit.clone()));
        }
        ancestors.insert(id);
        if commit.parents.is_empty() && commit.height != 1 {
            return Err(format!("root commit {id} has height {}", commit.height));
        }
    }
    if state.head.is_some() && !reached_old_head {
        return Err(format!(
            "the previously verified head {:?} is no longer an ancestor of main ({head})",
            state.head
        ));
    }

    // Content: replay each new commit's operations, oldest first, and
    // check the keys it touched and that nothing else changed.
    let mut parent_tree = match state.head {
        Some(id) => Some(commit_tree(repo, &id)?),
        None => None,
    };
    for (id, commit) in chain.iter().rev() {
        let seed = commit
            .message
            .strip_prefix("ops ")
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| format!("commit {id} has an unexpected message {:?}", commit.message))?;
        let tree = repo
            .tree(commit.root)
            .map_err(fail(format!("root of {id}")))?;
        let mut touched = BTreeMap::new();
        for (key, value) in ops(seed) {
            match &value {
                Some(v) => state.model.insert(key.clone(), v.clone()),
                None => state.model.remove(&key),
            };
            touched.insert(key, ());
        }
        for key in touched.keys() {
            let got = repo
                .get(&tree, key)
                .map_err(fail(format!("get in commit {id}")))?;
            if got.as_ref() != state.model.get(key) {
                return Err(format!(
                    "commit {id}: key {} holds {:?} bytes, expected {:?}",
                    String::from_utf8_lossy(key),
                    got.map(|v| v.len()),
                    state.model.get(key).map(Vec::len)
                ));
            }
        }
        if let Some(parent_tree) = &parent_tree {
            for change in repo.diff(parent_tree, &tree) {
                let change = change.map_err(fail(format!("diff into commit {id}")))?;
                if !touched.contains_key(change.key()) {
                    return Err(format!(
                        "commit {id} changed key {} that its operations did not touch",
                        String::from_utf8_lossy(change.key())
                    ));
                }
            }
        }
        if tree.len() != state.model.len() as u64 {
            return Err(format!(
                "commit {id} has {} keys, expected {}",
                tree.len(),
                state.model.len()
            ));
        }
        parent_tree = Some(tree);
    }
    let head_commit = repo.read_commit(&head).map_err(fail("read main's head"))?;
    state.head = Some(head);
    state.height = head_commit.height;

    // The head's whole content equals the model.
    let tree = commit_tree(repo, &head)?;
    let mut expected = state.model.iter();
    for item in repo.range(&tree, ..) {
        let (key, value) = item.map_err(fail("scan main's head"))?;
        match expected.next() {
            Some((k, v)) if *k == key && *v == value => {}
            other => {
                return Err(format!(
                    "main's head holds key {} where the model has {:?}",
                    String::from_utf8_lossy(&key),
                    other.map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                ))
            }
        }
    }
    if let Some((k, _)) = expected.next() {
        return Err(format!(
            "main's head lacks key {}",
            String::from_utf8_lossy(k)
        ));
    }

    // Acknowledged commits are present and on main's history. In eventual
    // mode a crash may lose the newest ones, but only as a suffix: the
    // survivors are the first k acknowledged, for some k.
    let survivors = acked
        .iter()
        .take_while(|id| ancestors.contains(*id))
        .count();
    if let Some(lost) = acked.get(survivors) {
        if !lossy {
            return Err(format!(
                "acknowledged commit {lost} is not an ancestor of main's head {head}"
            ));
        }
        if let Some(later) = acked[survivors..].iter().find(|id| ancestors.contains(*id)) {
            return Err(format!(
                "acknowledged commit {lost} is lost but the later {later} survived"
            ));
        }
    }
    for id in &acked[..survivors] {
        repo.read_commit(id)
            .map_err(fail(format!("acknowledged commit {id} is lost")))?;
    }

    // Every ref: a commit with a complete tree.
    let mut refs = repo.list_refs("heads/").map_err(fail("list refs"))?;
    refs.extend(repo.list_refs("tags/").map_err(fail("list tags"))?);
    let mut seen = HashSet::new();
    for (name, id) in refs {
        let commit = repo
            .read_commit(&id)
            .map_err(fail(format!("ref {name} -> {id}")))?;
        if name == "backup" && !ancestors.contains(&id) {
            return Err(format!("heads/backup ({id}) is not on main's history"));
        }
        if full {
            walk_tree(repo, commit.root, &mut seen).map_err(fail(format!("tree of ref {name}")))?;
        }
    }
    if full {
        check_every_object(repo)?;
    }
    Ok(())
}

fn commit_tree(repo: &Repo, id: &ObjectId) -> Check<Tree> {
    let commit = repo.read_commit(id).map_err(fail(format!("commit {id}")))?;
    repo.tree(commit.root)
        .map_err(fail(format!("root of commit {id}")))
}

/// Walks every node under `root` (each shared subtree once), checking
/// that each child agrees with its parent's entry, and loads every blob.
fn walk_tree(repo: &Repo, root: ObjectId, seen: &mut HashSet<ObjectId>) -> kvgit_core::Result<()> {
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let node = repo.node(&id)?;
        if node.is_leaf() {
            for (_, value) in node.leaf_entries() {
                if let Value::Blob { .. } = value.to_value() {
                    repo.read_value(&value.to_value())?;
                }
            }
            continue;
        }
        for child in node.children() {
            let sub: Arc<Node> = repo.node(&child.id)?;
            if sub.level() + 1 != node.level()
                || sub.count() != child.count
                || sub.value_bytes() != child.bytes
                || sub.first_key() != Some(child.key)
            {
                return Err(Error::corrupt(child.id, "disagrees with its parent entry"));
            }
            stack.push(child.id);
        }
    }
    Ok(())
}

/// Every stored object, reachable or not (a killed writer leaves objects
/// no ref reaches), hashes to its id.
fn check_every_object(repo: &Repo) -> Check<()> {
    let mut ids = Vec::new();
    repo.backend()
        .for_each_object(&mut |id, _| {
            ids.push(id);
            Ok(true)
        })
        .map_err(fail("list objects"))?;
    for id in ids {
        let bytes = repo
            .object_bytes(&id)
            .map_err(fail(format!("object {id}")))?;
        if ObjectId::hash(&bytes) != id {
            return Err(format!("object {id} does not hash to its id"));
        }
    }
    Ok(())
}

/// SplitMix64: a small seeded generator (no dependency needed).
struct Rng(u64);

impl Rng {
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
