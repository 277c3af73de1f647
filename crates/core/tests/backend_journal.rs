//! The journal backend specifically: persistence across reopen (from its
//! checkpoint and by replaying records), a torn last record, damage at
//! rest, compaction, locking, read-only opens, and telling sled and
//! journal stores apart. Its crash safety under SIGKILL is in `crash.rs`,
//! the `Backend` contract in `backend_conformance.rs`.

#![cfg(unix)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use kvgit_core::{
    Backend, CasOutcome, CommitSpec, Durability, Error, JournalBackend, JournalOptions, ObjectId,
    Repo, SledBackend, SledOptions,
};

fn open(path: &Path) -> JournalBackend {
    JournalBackend::open(path, JournalOptions::default()).expect("the store opens")
}

/// An object of `len` bytes (at least 4) distinct for each `i`.
fn object(i: u32, len: usize) -> (ObjectId, Vec<u8>) {
    let mut bytes = i.to_le_bytes().to_vec();
    bytes.extend((4..len).map(|j| (j as u32 ^ i.wrapping_mul(31)) as u8));
    (ObjectId::hash(&bytes), bytes)
}

/// 300 objects, 10 refs and 20 metadata entries, written in batches.
fn fill(b: &JournalBackend) -> Vec<(ObjectId, Vec<u8>)> {
    let objects: Vec<_> = (0..300u32)
        .map(|i| object(i, 10 + (i as usize * 53) % 6000))
        .collect();
    for chunk in objects.chunks(32) {
        b.put_objects(chunk.to_vec())
            .expect("the journal backend answers");
    }
    for (i, (id, _)) in objects.iter().take(10).enumerate() {
        assert_eq!(
            b.cas_ref(&format!("heads/b{i}"), None, Some(id))
                .expect("the journal backend answers"),
            CasOutcome::Swapped
        );
    }
    b.put_meta(
        (0..20u8)
            .map(|i| (vec![b'm', i], Some(vec![i; i as usize])))
            .collect(),
    )
    .expect("the journal backend answers");
    b.put_meta(vec![(vec![b'm', 3], None)])
        .expect("the journal backend answers");
    objects
}

fn check_filled(b: &JournalBackend, objects: &[(ObjectId, Vec<u8>)]) {
    for (id, bytes) in objects {
        assert_eq!(
            b.get_object(id)
                .expect("the journal backend answers")
                .as_ref(),
            Some(bytes)
        );
    }
    let refs = b.list_refs("heads/").expect("the journal backend answers");
    assert_eq!(refs.len(), 10);
    assert_eq!(
        b.get_ref("heads/b0").expect("the journal backend answers"),
        Some(objects[0].0)
    );
    let meta = b.scan_meta(b"m").expect("the journal backend answers");
    assert_eq!(meta.len(), 19);
    assert_eq!(
        b.get_meta(&[b'm', 3]).expect("the journal backend answers"),
        None
    );
    assert_eq!(
        b.get_meta(&[b'm', 7]).expect("the journal backend answers"),
        Some(vec![7; 7])
    );
    let mut n = 0;
    b.for_each_object(&mut |_, _| {
        n += 1;
        Ok(true)
    })
    .expect("the journal backend answers");
    assert_eq!(n, objects.len());
}

#[test]
fn reopen_from_the_checkpoint_and_by_replay_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let objects = {
        let b = open(&path);
        fill(&b)
    };
    // A clean close wrote a checkpoint: reopen reads it.
    assert!(path.join("journal.index").exists());
    check_filled(&open(&path), &objects);
    // Without it, the records are replayed.
    std::fs::remove_file(path.join("journal.index")).unwrap();
    check_filled(&open(&path), &objects);
    // A damaged checkpoint is ignored the same way.
    let mut bytes = std::fs::read(path.join("journal.index")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(path.join("journal.index"), &bytes).unwrap();
    check_filled(&open(&path), &objects);
}

#[test]
fn records_after_the_checkpoint_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let first = {
        let b = open(&path);
        fill(&b)
    };
    // Writes after the checkpoint, then no clean close (the handle is
    // leaked, as a crash would): the next open replays them.
    let b = open(&path);
    let extra = object(9999, 777);
    b.put_objects(vec![extra.clone()]).unwrap();
    assert_eq!(
        b.cas_ref("heads/b0", Some(&first[0].0), Some(&extra.0))
            .unwrap(),
        CasOutcome::Swapped
    );
    b.delete_objects(&[first[299].0]).unwrap();
    b.flush(Durability::Durable).unwrap();
    let leaked = Box::leak(Box::new(b));
    let _ = leaked;
    // The leaked handle still holds the lock (as a live process would);
    // a crashed one would not. Copy the files to read them elsewhere.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for name in ["kvgit.store", "journal", "journal.index"] {
        std::fs::copy(path.join(name), copy.join(name)).unwrap();
    }
    let b = open(&copy);
    assert_eq!(b.get_object(&extra.0).unwrap(), Some(extra.1.clone()));
    assert_eq!(b.get_ref("heads/b0").unwrap(), Some(extra.0));
    assert_eq!(b.get_object(&first[299].0).unwrap(), None);
    assert!(b.has_object(&first[298].0).unwrap());
}

#[test]
fn a_torn_last_record_is_cut_and_everything_before_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let objects = {
        let b = open(&path);
        fill(&b)
    };
    std::fs::remove_file(path.join("journal.index")).unwrap();
    let whole = std::fs::metadata(path.join("journal")).unwrap().len();
    // Half a frame, then a frame whose payload was never written.
    let mut f = OpenOptions::new()
        .append(true)
        .open(path.join("journal"))
        .unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]).unwrap();
    drop(f);
    // Read only: the tail is skipped and the file left alone.
    {
        let b = JournalBackend::open_read_only(&path, JournalOptions::default()).unwrap();
        check_filled(&b, &objects);
        assert!(matches!(
            b.put_objects(vec![object(1, 5)]),
            Err(Error::ReadOnly { .. })
        ));
    }
    assert_eq!(
        std::fs::metadata(path.join("journal")).unwrap().len(),
        whole + 11
    );
    // For writing: the tail is cut, and new records follow the last whole one.
    {
        let b = open(&path);
        check_filled(&b, &objects);
        b.put_objects(vec![object(4242, 100)]).unwrap();
    }
    let mut objects = objects;
    objects.push(object(4242, 100));
    check_filled(&open(&path), &objects);
}

#[test]
fn a_record_that_fails_its_crc_ends_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let (a, b_obj) = (object(1, 300), object(2, 300));
    {
        let b = open(&path);
        b.put_objects(vec![a.clone()]).unwrap();
        b.put_objects(vec![b_obj.clone()]).unwrap();
    }
    std::fs::remove_file(path.join("journal.index")).unwrap();
    // Flip a byte of the second object's record: a power loss can leave
    // such a record; it and what follows are not part of the store.
    let mut bytes = std::fs::read(path.join("journal")).unwrap();
    let at = bytes
        .windows(b_obj.1.len())
        .position(|w| w == b_obj.1.as_slice())
        .expect("the second object is in the journal");
    bytes[at + 10] ^= 1;
    std::fs::write(path.join("journal"), &bytes).unwrap();
    let b = open(&path);
    assert!(b.has_object(&a.0).unwrap());
    assert!(!b.has_object(&b_obj.0).unwrap());
}

#[test]
fn a_journal_shorter_than_its_checkpoint_is_reported_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let b = open(&path);
        fill(&b);
    }
    // The records take about 900 KB: keep the first 50 KB.
    let f = OpenOptions::new()
        .write(true)
        .open(path.join("journal"))
        .unwrap();
    f.set_len(50_000).unwrap();
    drop(f);
    let err = JournalBackend::open(&path, JournalOptions::default()).unwrap_err();
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    // Nothing was changed.
    assert_eq!(
        std::fs::metadata(path.join("journal")).unwrap().len(),
        50_000
    );
}

#[test]
fn damaged_headers_and_wrong_stores_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal-store");
    let sled = dir.path().join("sled-store");
    drop(open(&journal));
    drop(SledBackend::open(&sled, SledOptions::default()).unwrap());
    let err = JournalBackend::open(&sled, JournalOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("sled store"), "{err}");
    let err = SledBackend::open(&journal, SledOptions::default()).unwrap_err();
    assert!(err.to_string().contains("journal store"), "{err}");
    assert!(
        !journal.join("db").exists(),
        "sled wrote nothing into the journal store"
    );
    assert!(JournalBackend::is_journal_store(&journal));
    assert!(!JournalBackend::is_journal_store(&sled));
    // Someone else's files.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let err = JournalBackend::open(&foreign, JournalOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);
    // A journal whose header is not kvgit's.
    std::fs::write(journal.join("journal"), b"not a journal at all, no").unwrap();
    std::fs::remove_file(journal.join("journal.index")).unwrap();
    let err = JournalBackend::open(&journal, JournalOptions::default()).unwrap_err();
    assert!(err.to_string().contains("header"), "{err}");
}

#[test]
fn a_second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let b = open(&path);
    let err = JournalBackend::open(&path, JournalOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    drop(b);
    drop(open(&path));
}

#[test]
fn compaction_gives_back_the_space_of_deleted_objects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let b = open(&path);
    let objects = fill(&b);
    let (dead, live) = objects.split_at(200);
    b.delete_objects(&dead.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .unwrap();
    let report = b.compact().unwrap();
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    let live_bytes: u64 = live.iter().map(|(_, v)| v.len() as u64).sum();
    assert!(report.live_bytes >= live_bytes, "{report:?}");
    for (id, bytes) in live {
        assert_eq!(b.get_object(id).unwrap().as_ref(), Some(bytes));
    }
    for (id, _) in dead {
        assert!(!b.has_object(id).unwrap());
    }
    // Writes go on after it, and everything survives a reopen, with the
    // checkpoint and without.
    let extra = object(7777, 4000);
    b.put_objects(vec![extra.clone()]).unwrap();
    drop(b);
    for replay in [false, true] {
        if replay {
            std::fs::remove_file(path.join("journal.index")).unwrap();
        }
        let b = open(&path);
        for (id, bytes) in live {
            assert_eq!(b.get_object(id).unwrap().as_ref(), Some(bytes));
        }
        assert_eq!(b.get_object(&extra.0).unwrap(), Some(extra.1.clone()));
        assert_eq!(b.list_refs("heads/").unwrap().len(), 10);
        assert_eq!(b.scan_meta(b"m").unwrap().len(), 19);
    }
    // A compaction that never got to its rename leaves a file the next
    // open removes.
    std::fs::write(path.join("journal.compact"), b"partial").unwrap();
    drop(open(&path));
    assert!(!path.join("journal.compact").exists());
}

#[test]
fn a_repo_on_a_journal_commits_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let head = {
        let repo = Repo::new(Arc::new(open(&path)), Default::default());
        let mut tree = repo.empty_tree().unwrap();
        let mut parent = None;
        for i in 0..50u32 {
            tree = repo
                .apply(
                    &tree,
                    [(format!("k{i:04}").into_bytes(), Some(vec![i as u8; 300]))],
                )
                .unwrap();
            let (id, outcome) = repo
                .commit("heads/main", parent.as_ref(), &tree, &CommitSpec::default())
                .unwrap();
            assert_eq!(outcome, CasOutcome::Swapped);
            parent = Some(id);
        }
        parent.unwrap()
    };
    let repo = Repo::new(Arc::new(open(&path)), Default::default());
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(head));
    let tree = repo.tree(repo.read_commit(&head).unwrap().root).unwrap();
    assert_eq!(tree.len(), 50);
    assert_eq!(repo.get(&tree, b"k0049").unwrap(), Some(vec![49u8; 300]));
}

#[test]
fn concurrent_durable_commits_share_fsyncs_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let b = Arc::new(open(&path));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                let mut head = None;
                for i in 0..100u32 {
                    let o = object(t * 1000 + i, 500);
                    let name = format!("heads/t{t}");
                    let out = b
                        .put_objects_and_cas(vec![o.clone()], &[], &name, head.as_ref(), Some(&o.0))
                        .unwrap();
                    assert_eq!(out, CasOutcome::Swapped);
                    b.flush(Durability::Durable).unwrap();
                    head = Some(o.0);
                }
                head.unwrap()
            })
        })
        .collect();
    let heads: Vec<ObjectId> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    drop(b);
    std::fs::remove_file(path.join("journal.index")).unwrap();
    let b = open(&path);
    for (t, head) in heads.iter().enumerate() {
        assert_eq!(b.get_ref(&format!("heads/t{t}")).unwrap(), Some(*head));
    }
    let mut n = 0;
    b.for_each_object(&mut |_, _| {
        n += 1;
        Ok(true)
    })
    .unwrap();
    assert_eq!(n, 400);
}

#[test]
fn a_whole_record_after_a_torn_one_is_never_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let (a, b, c, d) = (
        object(1, 300),
        object(2, 300),
        object(3, 300),
        object(4, 300),
    );
    {
        let s = open(&path);
        for o in [&a, &b, &c] {
            s.put_objects(vec![o.clone()]).unwrap();
        }
    }
    std::fs::remove_file(path.join("journal.index")).unwrap();
    // B is damaged (as a power loss can leave it), C after it is whole.
    let mut bytes = std::fs::read(path.join("journal")).unwrap();
    let at = bytes
        .windows(b.1.len())
        .position(|w| w == b.1.as_slice())
        .unwrap();
    bytes[at + 10] ^= 1;
    std::fs::write(path.join("journal"), &bytes).unwrap();
    {
        let s = open(&path);
        assert!(s.has_object(&a.0).unwrap());
        assert!(!s.has_object(&b.0).unwrap());
        assert!(
            !s.has_object(&c.0).unwrap(),
            "nothing after a damaged record"
        );
        // D takes B's place exactly, so C's old record follows it.
        s.put_objects(vec![d.clone()]).unwrap();
    }
    std::fs::remove_file(path.join("journal.index")).unwrap();
    let s = open(&path);
    assert!(s.has_object(&a.0).unwrap());
    assert!(s.has_object(&d.0).unwrap());
    assert!(
        !s.has_object(&c.0).unwrap(),
        "C's record chains to B's, not D's: it stays out"
    );
}
