//! The sweep: frees exactly what no ref reaches, and never an object that
//! an in-flight writer is about to point a ref at.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc;
use std::time::Duration;

use common::{
    check_store, commit_edits, contents, memory_backend, reachable, repo_over, stored, Hooked,
    Store,
};
use kvgit_core::{CommitSpec, ObjectId, Repo};
use kvgit_gc::{rebase, rebase_keep, sweep, RebaseOptions, SweepError, SweepOptions, Watermarks};
use proptest::prelude::*;

fn sweep_all(repo: &Repo) -> kvgit_gc::SweepReport {
    sweep(repo, &SweepOptions::default()).unwrap()
}

fn blob(tag: u8) -> Vec<u8> {
    vec![tag; 1000]
}

#[test]
fn deleting_a_branch_frees_its_unique_objects_and_nothing_shared() {
    let store = Store::memory();
    let repo = &store.repo;
    // main: enough keys for a tree of several levels, some blobs, history.
    let keys: Vec<String> = (0..2000).map(|i| format!("k{i:05}")).collect();
    for chunk in keys.chunks(500) {
        let edits: Vec<(&[u8], Option<&[u8]>)> = chunk
            .iter()
            .map(|k| (k.as_bytes(), Some(k.as_bytes())))
            .collect();
        commit_edits(repo, "main", &edits);
    }
    let shared = blob(1);
    store.put("main", b"blob/main", &shared);
    let main_head = repo.get_ref("heads/main").unwrap().unwrap();
    repo.create_ref("tags/v1", &main_head).unwrap();
    // dev: forked from main, then its own commits: a new blob, the same
    // blob as main under another key (stored once), edits to main's keys.
    repo.create_ref("heads/dev", &main_head).unwrap();
    store.put("dev", b"blob/dev", &blob(2));
    store.put("dev", b"blob/copy", &shared);
    store.write("dev", &[(b"k00010", Some(b"changed")), (b"k01500", None)]);
    let before_contents = contents(repo, "main");

    // A first sweep frees only what was never reachable (the empty tree
    // written for the first commit).
    let first = sweep_all(repo);
    assert_eq!(stored(repo), reachable(repo));
    assert!(first.objects_freed <= 1);

    let with_dev = reachable(repo);
    repo.delete_ref("heads/dev", None).unwrap();
    let without_dev = reachable(repo);
    let unique: HashSet<ObjectId> = with_dev.difference(&without_dev).copied().collect();
    // dev's 3 commits, its new blob, and the nodes on its changed paths.
    assert!(unique.len() > 5, "{}", unique.len());
    let shared_id = ObjectId::hash(&kvgit_core::object::encode_blob(&shared));
    let dev_blob_id = ObjectId::hash(&kvgit_core::object::encode_blob(&blob(2)));
    assert!(unique.contains(&dev_blob_id));
    assert!(!unique.contains(&shared_id));

    let before = stored(repo);
    let report = sweep_all(repo);
    let after = stored(repo);
    assert_eq!(report.objects_freed, unique.len() as u64);
    assert_eq!(
        before.difference(&after).copied().collect::<HashSet<_>>(),
        unique
    );
    assert_eq!(after, without_dev);
    assert_eq!(report.objects_marked, after.len() as u64);
    assert_eq!(report.refs, 2);
    assert_eq!(report.remarked_refs, 0);
    // main (and the tag) read back whole.
    assert_eq!(contents(repo, "main"), before_contents);
    check_store(repo);
    // A second sweep finds nothing.
    assert_eq!(sweep_all(repo).objects_freed, 0);
}

#[test]
fn rebase_then_sweep_frees_old_history_and_dropped_values() {
    let store = Store::memory();
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        store.put("main", key.as_bytes(), &blob(i as u8));
    }
    sweep_all(&store.repo);
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(2500),
        &store.access,
        &RebaseOptions::default(),
    )
    .unwrap();
    assert_eq!(report.dropped, [b"a".to_vec()]);
    let before = stored(&store.repo);
    let swept = sweep_all(&store.repo);
    let after = stored(&store.repo);
    // Gone: a's blob, the three old commits and their three root leaves.
    let a_blob = ObjectId::hash(&kvgit_core::object::encode_blob(&blob(0)));
    assert!(before.contains(&a_blob) && !after.contains(&a_blob));
    assert_eq!(swept.objects_freed, 7);
    assert_eq!(after, reachable(&store.repo));
    assert_eq!(after.len(), 4); // commit, leaf, b's and c's blobs
    assert_eq!(store.read("main", b"b"), Some(blob(1)));
}

#[test]
fn a_dry_run_counts_and_deletes_nothing() {
    let store = Store::memory();
    store.put("main", b"a", &blob(1));
    store.put("tmp", b"b", &blob(2));
    store.repo.delete_ref("heads/tmp", None).unwrap();
    let before = stored(&store.repo);
    let options = SweepOptions {
        dry_run: true,
        ..SweepOptions::default()
    };
    let dry = sweep(&store.repo, &options).unwrap();
    assert!(dry.objects_unreachable >= 3);
    assert_eq!(
        (dry.objects_freed, dry.bytes_freed),
        (0, 0),
        "a dry run frees nothing"
    );
    assert_eq!(stored(&store.repo), before);
    let real = sweep_all(&store.repo);
    assert_eq!(
        (real.objects_freed, real.bytes_freed),
        (dry.objects_unreachable, dry.bytes_unreachable)
    );
    assert_eq!(
        (real.objects_unreachable, real.bytes_unreachable),
        (real.objects_freed, real.bytes_freed),
        "without a grace period every unreachable object is freed"
    );
}

#[test]
fn a_grace_period_is_refused_by_stores_without_write_times() {
    let repo = Repo::memory();
    let options = SweepOptions {
        grace: Some(Duration::from_secs(60)),
        ..SweepOptions::default()
    };
    assert!(matches!(
        sweep(&repo, &options),
        Err(SweepError::GraceUnsupported(_))
    ));
    // A zero grace period is what the embedded stores do anyway.
    let zero = SweepOptions {
        grace: Some(Duration::ZERO),
        ..SweepOptions::default()
    };
    sweep(&repo, &zero).expect("a zero grace period is accepted");
}

#[test]
fn a_missing_reachable_object_aborts_the_sweep_before_any_delete() {
    let store = Store::memory();
    store.put("main", b"a", b"1");
    store.put("tmp", b"b", b"2");
    store.repo.delete_ref("heads/tmp", None).unwrap();
    let head = store.repo.get_ref("heads/main").unwrap().unwrap();
    let root = store.repo.read_commit(&head).unwrap().root;
    store.repo.backend().delete_objects(&[root]).unwrap();
    store.repo.evict_cached(&root);
    let before = stored(&store.repo);
    assert!(matches!(
        sweep(&store.repo, &SweepOptions::default()),
        Err(SweepError::Core(kvgit_core::Error::MissingObject(id))) if id == root
    ));
    assert_eq!(stored(&store.repo), before);
}

/// The entries of a tree that was garbage once and is written again.
fn garbage_entries() -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    (0..300u32)
        .map(|i| (format!("g{i:04}").into_bytes(), Some(vec![i as u8; 40])))
        .chain([(b"g-blob".to_vec(), Some(blob(9)))])
        .collect()
}

/// A store where `garbage_entries` were committed on a branch that was
/// then deleted: every object of that tree is garbage.
fn store_with_garbage() -> (Repo, std::sync::Arc<Hooked>) {
    let hooked = Hooked::new(memory_backend());
    let repo = repo_over(hooked.clone());
    commit_edits(&repo, "main", &[(b"m", Some(b"1"))]);
    let edits: Vec<(Vec<u8>, Option<Vec<u8>>)> = garbage_entries();
    let refs: Vec<(&[u8], Option<&[u8]>)> = edits
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_deref()))
        .collect();
    commit_edits(&repo, "tmp", &refs);
    repo.delete_ref("heads/tmp", None).unwrap();
    (repo, hooked)
}

/// Writes `garbage_entries` again (every put a no-op: the objects exist,
/// as garbage) and commits them on `again`, holding the fence or not,
/// while a sweep runs: the sweep's first ref listing happens after the
/// tree is written and before the ref moves.
fn write_again_during_sweep(fenced: bool) -> (Repo, kvgit_gc::SweepReport) {
    let (repo, hooked) = store_with_garbage();
    let (listed_tx, listed_rx) = mpsc::channel::<()>();
    let mut listed_tx = Some(listed_tx);
    *hooked.on_list_refs.lock() = Some(Box::new(move || {
        if let Some(tx) = listed_tx.take() {
            let _ = tx.send(());
        }
    }));
    let writer = {
        let repo = repo.clone();
        std::thread::spawn(move || {
            let fence = fenced.then(|| repo.write_fence());
            let tree = repo
                .apply(&repo.empty_tree().unwrap(), garbage_entries())
                .unwrap();
            // Let the sweep take its snapshot of the refs now.
            let sweeper = {
                let repo = repo.clone();
                std::thread::spawn(move || sweep(&repo, &SweepOptions::default()).unwrap())
            };
            listed_rx.recv().unwrap();
            if !fenced {
                // Unfenced, nothing stops the sweep from deleting the
                // tree before the ref points at it.
                std::thread::sleep(Duration::from_millis(20));
                while !sweeper.is_finished() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            } else {
                std::thread::sleep(Duration::from_millis(50));
                assert!(!sweeper.is_finished(), "the sweep must wait for the fence");
            }
            let id = repo.write_commit(&tree, &CommitSpec::default()).unwrap();
            repo.move_ref("heads/again", None, Some(&id)).unwrap();
            drop(fence);
            sweeper.join().unwrap()
        })
    };
    let report = writer.join().unwrap();
    (repo, report)
}

#[test]
fn an_in_flight_writer_reusing_garbage_objects_loses_nothing() {
    let (repo, report) = write_again_during_sweep(true);
    // The snapshot missed `again`; under the fence it was marked.
    assert_eq!(report.remarked_refs, 1);
    let expected: BTreeMap<Vec<u8>, Vec<u8>> = garbage_entries()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap()))
        .collect();
    assert_eq!(contents(&repo, "again"), expected);
    assert_eq!(stored(&repo), reachable(&repo));
    check_store(&repo);
}

#[test]
fn without_the_fence_the_same_writer_would_lose_objects() {
    // Why writers hold the fence: the same interleaving without it leaves
    // a ref pointing at a tree whose objects were swept.
    let (repo, report) = write_again_during_sweep(false);
    assert!(report.objects_freed > 3);
    let head = repo.get_ref("heads/again").unwrap().unwrap();
    let root = repo.read_commit(&head).unwrap().root;
    assert!(matches!(
        repo.tree(root),
        Err(kvgit_core::Error::MissingObject(_))
    ));
}

#[test]
fn sweeping_a_sled_store_reports_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let repo = Repo::open(&path).unwrap();
        commit_edits(&repo, "main", &[(b"keep", Some(&blob(1)))]);
        for i in 0..50u8 {
            let key = [b'x', i];
            let value = vec![i; 20_000];
            commit_edits(&repo, "tmp", &[(&key[..], Some(&value[..]))]);
        }
        repo.delete_ref("heads/tmp", None).unwrap();
        let report = sweep_all(&repo);
        assert!(report.size_before > 1_000_000, "{report:?}");
        assert!(report.size_after > 0);
        assert!(report.bytes_freed >= 50 * 20_000);
        assert_eq!(stored(&repo), reachable(&repo));
    }
    let repo = Repo::open(&path).unwrap();
    assert_eq!(stored(&repo), reachable(&repo));
    check_store(&repo);
    assert_eq!(contents(&repo, "main").len(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Put { branch: u8, key: u8, big: bool },
    Delete { branch: u8, key: u8 },
    Fork { from: u8, to: u8 },
    DropBranch { branch: u8 },
    KeepEven { branch: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, 0u8..40, any::<bool>()).prop_map(|(branch, key, big)| Op::Put { branch, key, big }),
        2 => (0u8..3, 0u8..40).prop_map(|(branch, key)| Op::Delete { branch, key }),
        1 => (0u8..3, 0u8..3).prop_map(|(from, to)| Op::Fork { from, to }),
        1 => (0u8..3).prop_map(|branch| Op::DropBranch { branch }),
        1 => (0u8..3).prop_map(|branch| Op::KeepEven { branch }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// After any history of writes, forks, branch deletions and rebases,
    /// a sweep leaves exactly the reachable objects, and every branch
    /// reads back as the model says.
    #[test]
    fn a_sweep_leaves_exactly_the_reachable_objects(ops in prop::collection::vec(op(), 1..40)) {
        let store = Store::memory();
        let repo = &store.repo;
        let name = |b: u8| format!("b{b}");
        let mut model: BTreeMap<u8, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Put { branch, key, big } => {
                    let value = vec![i as u8; if big { 500 } else { 5 }];
                    store.put(&name(branch), &[key], &value);
                    model.entry(branch).or_default().insert(vec![key], value);
                }
                Op::Delete { branch, key } => {
                    if model.contains_key(&branch) {
                        store.write(&name(branch), &[(&[key], None)]);
                        model.entry(branch).or_default().remove(&vec![key]);
                    }
                }
                Op::Fork { from, to } => {
                    if let (Some(m), false) = (model.get(&from).cloned(), model.contains_key(&to)) {
                        let head = repo.get_ref(&format!("heads/{}", name(from))).unwrap().unwrap();
                        repo.create_ref(&format!("heads/{}", name(to)), &head).unwrap();
                        model.insert(to, m);
                    }
                }
                Op::DropBranch { branch } => {
                    if model.remove(&branch).is_some() {
                        repo.delete_ref(&format!("heads/{}", name(branch)), None).unwrap();
                    }
                }
                Op::KeepEven { branch } => {
                    if let Some(m) = model.get_mut(&branch) {
                        rebase_keep(repo, &name(branch), |k| k[0] % 2 == 0, &RebaseOptions::default()).unwrap();
                        m.retain(|k, _| k[0] % 2 == 0);
                    }
                }
            }
            if i % 7 == 3 {
                sweep_all(repo);
            }
        }
        let report = sweep_all(repo);
        prop_assert_eq!(stored(repo), reachable(repo));
        prop_assert_eq!(report.objects_marked, stored(repo).len() as u64);
        for (branch, m) in &model {
            prop_assert_eq!(&contents(repo, &name(*branch)), m);
        }
        check_store(repo);
    }
}
