//! The sled backend specifically: persistence across reopen (raw and
//! through `Repo`), locking within and across processes, durable flush,
//! and malformed stored data.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kvgit_core::{
    Backend, CasOutcome, CommitSpec, Durability, Error, ObjectId, Repo, SledBackend, SledOptions,
};

fn open(path: &std::path::Path) -> SledBackend {
    SledBackend::open(path, SledOptions::default()).expect("the store opens")
}

#[test]
fn reopen_keeps_objects_refs_and_meta() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let objects: Vec<(ObjectId, Vec<u8>)> = (0..500u32)
        .map(|i| {
            // Sizes from a few bytes to ~200 KiB, so sled writes page files.
            let len = if i % 100 == 7 {
                200_000 + i as usize
            } else {
                10 + (i as usize * 37) % 5000
            };
            let bytes: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
            (ObjectId::hash(&bytes), bytes)
        })
        .collect();
    {
        let b = open(&path);
        for chunk in objects.chunks(64) {
            b.put_objects(chunk.to_vec()).unwrap();
        }
        for (i, (id, _)) in objects.iter().take(20).enumerate() {
            assert_eq!(
                b.cas_ref(&format!("heads/b{i:02}"), None, Some(id))
                    .unwrap(),
                CasOutcome::Swapped
            );
        }
        b.put_meta(
            (0..30u8)
                .map(|i| (vec![b'm', i], Some(vec![i; i as usize])))
                .collect(),
        )
        .unwrap();
        b.flush(Durability::Eventual).unwrap();
        assert!(
            b.size_on_disk().unwrap() > objects.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
        );
    }
    let b = open(&path);
    for (id, bytes) in &objects {
        assert_eq!(b.get_object(id).unwrap().as_ref(), Some(bytes));
    }
    let mut count = 0;
    b.for_each_object(&mut |_, _| {
        count += 1;
        Ok(true)
    })
    .unwrap();
    assert_eq!(count, objects.len());
    let refs = b.list_refs("heads/").unwrap();
    assert_eq!(refs.len(), 20);
    for (i, (name, id)) in refs.iter().enumerate() {
        assert_eq!(name, &format!("heads/b{i:02}"));
        assert_eq!(id, &objects[i].0);
    }
    let meta = b.scan_meta(b"m").unwrap();
    assert_eq!(meta.len(), 30);
    for (i, (k, v)) in meta.iter().enumerate() {
        assert_eq!(k, &vec![b'm', i as u8]);
        assert_eq!(v, &vec![i as u8; i]);
    }
}

#[test]
fn repo_commit_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..3000u32)
        .map(|i| {
            let key = format!("key/{i:06}").into_bytes();
            let len = if i % 10 == 0 {
                300 + (i as usize % 700)
            } else {
                1 + (i as usize % 60)
            };
            let value = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
            (key, value)
        })
        .collect();
    let commit_id = {
        let repo = Repo::open(&path).unwrap();
        let tree = repo.build_tree(entries.clone()).unwrap();
        assert_eq!(tree.len(), entries.len() as u64);
        let (id, outcome) = repo
            .commit("heads/main", None, &tree, &CommitSpec::default())
            .unwrap();
        assert_eq!(outcome, CasOutcome::Swapped);
        id
    };
    let repo = Repo::open(&path).unwrap();
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(commit_id));
    let commit = repo.read_commit(&commit_id).unwrap();
    let tree = repo.tree(commit.root).unwrap();
    assert_eq!(tree.len(), entries.len() as u64);
    for (key, value) in &entries {
        assert_eq!(
            repo.get(&tree, key).unwrap().as_ref(),
            Some(value),
            "key {:?}",
            String::from_utf8_lossy(key)
        );
    }
    assert_eq!(repo.get(&tree, b"key/999999").unwrap(), None);
}

#[test]
fn second_open_in_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let first = open(&path);
    let start = Instant::now();
    let err = SledBackend::open(&path, SledOptions::default()).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert!(err.to_string().contains("locked"), "{err}");
    // Also through Repo, and the first handle still works.
    assert!(matches!(Repo::open(&path), Err(Error::Locked { .. })));
    first
        .put_meta(vec![(b"k".to_vec(), Some(b"v".to_vec()))])
        .unwrap();
    drop(first);
    // Once dropped, the store opens at once, repeatedly.
    for _ in 0..5 {
        let b = open(&path);
        assert_eq!(b.get_meta(b"k").unwrap(), Some(b"v".to_vec()));
    }
}

const HOLDER_ENV: &str = "KVGIT_TEST_LOCK_HOLDER";
const READY: &str = "kvgit-lock-holder-ready";

/// Parent: starts a copy of this test binary that holds the store open,
/// checks that opening fails at once, kills the holder, checks the store
/// opens. Child (`KVGIT_TEST_LOCK_HOLDER` set): opens the store, writes
/// something, prints a ready line, and waits to be killed.
#[test]
fn open_held_by_another_process_is_locked() {
    if let Ok(path) = std::env::var(HOLDER_ENV) {
        let b = open(std::path::Path::new(&path));
        b.put_meta(vec![(b"holder".to_vec(), Some(b"was here".to_vec()))])
            .unwrap();
        b.flush(Durability::Durable).unwrap();
        // libtest has already printed "test <name> ... " without a newline.
        println!("\n{READY}");
        // Killed by the parent; exits by itself if the parent died.
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(1);
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "open_held_by_another_process_is_locked",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut ready = false;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().trim() == READY {
            ready = true;
            break;
        }
    }
    assert!(ready, "the holder process never became ready");

    let start = Instant::now();
    let result = SledBackend::open(&path, SledOptions::default());
    let took = start.elapsed();
    let err = result.expect_err("a store held by another process must not open");
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(took < Duration::from_millis(500), "took {took:?}");
    eprintln!("cross-process lock detected in {took:?}: {err}");

    child.kill().unwrap();
    child.wait().unwrap();
    let b = open(&path);
    assert_eq!(b.get_meta(b"holder").unwrap(), Some(b"was here".to_vec()));
}

#[test]
fn durable_flush_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let big = vec![0x5au8; 1 << 20];
    let big_id = ObjectId::hash(&big);
    let small_id = ObjectId::hash(b"small");
    {
        let b = open(&path);
        b.flush(Durability::Durable).unwrap(); // empty store
        b.put_objects(vec![(big_id, big.clone()), (small_id, b"small".to_vec())])
            .unwrap();
        assert_eq!(
            b.cas_ref("heads/main", None, Some(&small_id)).unwrap(),
            CasOutcome::Swapped
        );
        b.flush(Durability::Durable).unwrap();
        // A large object lives in a page file under blobs/, which the
        // durable flush fsyncs too.
        assert!(std::fs::read_dir(path.join("blobs")).unwrap().count() > 0);

        // Rough cost of the barrier, printed for the record.
        let n = 50u32;
        let (mut eventual, mut durable) = (Duration::ZERO, Duration::ZERO);
        for i in 0..n {
            let bytes = format!("timing {i}").into_bytes();
            b.put_objects(vec![(ObjectId::hash(&bytes), bytes)])
                .unwrap();
            let t = Instant::now();
            b.flush(Durability::Eventual).unwrap();
            eventual += t.elapsed();
            let bytes = format!("timing durable {i}").into_bytes();
            b.put_objects(vec![(ObjectId::hash(&bytes), bytes)])
                .unwrap();
            let t = Instant::now();
            b.flush(Durability::Durable).unwrap();
            durable += t.elapsed();
        }
        eprintln!(
            "flush after a small write: eventual {:?}, durable {:?}",
            eventual / n,
            durable / n
        );
    }
    let b = open(&path);
    assert_eq!(b.get_object(&big_id).unwrap(), Some(big));
    assert_eq!(b.get_object(&small_id).unwrap(), Some(b"small".to_vec()));
    assert_eq!(b.get_ref("heads/main").unwrap(), Some(small_id));
}

fn storage<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::Storage(_)))
}

#[test]
fn malformed_stored_data_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    // A store, then bad entries written behind the backend's back (without
    // its close record, which would rightly refuse the changed refs).
    drop(open(&path));
    std::fs::remove_file(path.join("kvgit.closed")).unwrap();
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("refs")
            .unwrap()
            .insert("heads/bad", &b"short"[..])
            .unwrap();
        db.open_tree("refs")
            .unwrap()
            .insert("heads/good", &[7u8; 32][..])
            .unwrap();
        db.open_tree("objects")
            .unwrap()
            .insert(&b"not an id"[..], &b"x"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let b = open(&path);
    assert!(storage(b.get_ref("heads/bad")));
    assert_eq!(b.get_ref("heads/good").unwrap(), Some(ObjectId([7; 32])));
    assert!(storage(b.list_refs("heads/")));
    assert!(storage(b.cas_ref("heads/bad", None, None)));
    assert!(storage(b.for_each_object(&mut |_, _| Ok(true))));
    let err = b.get_ref("heads/bad").unwrap_err().to_string();
    assert!(
        err.contains("heads/bad") && err.contains("5 bytes"),
        "{err}"
    );
    // The good ref still moves.
    let id = ObjectId::hash(b"x");
    assert_eq!(
        b.cas_ref("heads/good", Some(&ObjectId([7; 32])), Some(&id))
            .unwrap(),
        CasOutcome::Swapped
    );
}

#[test]
fn size_on_disk_counts_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let b = open(&path);
    let before = b.size_on_disk().unwrap();
    let objects: Vec<(ObjectId, Vec<u8>)> = (0..200u32)
        .map(|i| {
            let bytes = vec![i as u8; 4096];
            (
                ObjectId::hash(&[&bytes[..], &i.to_le_bytes()].concat()),
                bytes,
            )
        })
        .collect();
    b.put_objects(objects).unwrap();
    b.flush(Durability::Durable).unwrap();
    let after = b.size_on_disk().unwrap();
    assert!(after >= before + 200 * 4096, "{before} -> {after}");
}

/// Flushes racing with writes that create, rewrite and remove sled page
/// files (objects over ~128 KiB) neither fail nor lose data.
#[test]
fn flushes_race_with_large_object_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let object = |t: u32, i: u32| {
        let bytes: Vec<u8> = (0..150_000u32 + t * 1000 + i)
            .map(|j| (j ^ (t << 4) ^ i) as u8)
            .collect();
        (ObjectId::hash(&bytes), bytes)
    };
    {
        let b = open(&path);
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let b = &b;
                s.spawn(move || {
                    for i in 0..8u32 {
                        b.put_objects(vec![object(t, i)]).unwrap();
                        if i % 3 == 2 {
                            // Remove an earlier one: sled drops its page file.
                            b.delete_objects(&[object(t, i - 2).0]).unwrap();
                        }
                        let durability = if i % 2 == 0 {
                            Durability::Durable
                        } else {
                            Durability::Eventual
                        };
                        b.flush(durability).unwrap();
                    }
                });
            }
        });
    }
    let b = open(&path);
    for t in 0..4u32 {
        for i in 0..8u32 {
            let (id, bytes) = object(t, i);
            let deleted = i % 3 == 0 && i + 2 < 8;
            let expected = if deleted { None } else { Some(bytes) };
            assert_eq!(
                b.get_object(&id).unwrap(),
                expected,
                "thread {t} object {i}"
            );
        }
    }
}

/// A store closed cleanly leaves a close record with its refs' digest;
/// opening it checks the refs against it. Refs that changed behind the
/// backend's back (as when sled drops the end of a damaged log) or a
/// damaged record make the open fail with `RolledBack`, changing nothing,
/// until the record is deleted by hand.
#[test]
fn refs_lost_since_the_last_close_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let record = path.join("kvgit.closed");
    let (a, b) = (ObjectId::hash(b"a"), ObjectId::hash(b"b"));
    {
        let s = open(&path);
        assert!(!record.exists(), "a new store has no close record");
        s.cas_ref("heads/main", None, Some(&a)).unwrap();
        s.cas_ref("heads/dev", None, Some(&b)).unwrap();
    }
    assert!(record.exists(), "closing writes the record");
    {
        let s = open(&path);
        assert!(
            !record.exists(),
            "an open store has no record (a crash leaves none)"
        );
        assert_eq!(s.get_ref("heads/main").unwrap(), Some(a));
        s.cas_ref("heads/main", Some(&a), Some(&b)).unwrap();
    }

    // A ref rolled back behind kvgit's back, as sled's recovery does after
    // a damaged record: main falls back to a, dev vanishes.
    {
        let db = sled::open(&path).unwrap();
        let refs = db.open_tree("refs").unwrap();
        refs.insert("heads/main", &a.0[..]).unwrap();
        refs.remove("heads/dev").unwrap();
        db.flush().unwrap();
    }
    for _ in 0..2 {
        let err = SledBackend::open(&path, SledOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::RolledBack { .. }), "{err:?}");
        assert!(
            text.contains("2 refs then, 1 now") && text.contains("kvgit.closed"),
            "{text}"
        );
        assert!(record.exists(), "a failed open keeps the record");
    }
    // Deleting the record by hand opens the store as it is now.
    std::fs::remove_file(&record).unwrap();
    {
        let s = open(&path);
        assert_eq!(s.get_ref("heads/main").unwrap(), Some(a));
        assert_eq!(s.get_ref("heads/dev").unwrap(), None);
    }

    // A damaged record is an error too: it can no longer vouch for the refs.
    let mut bytes = std::fs::read(&record).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&record, &bytes).unwrap();
    let err = SledBackend::open(&path, SledOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::RolledBack { detail, .. } if detail.contains("damaged")),
        "{err:?}"
    );
}
