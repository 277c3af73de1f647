//! `SledBackend::compact` (issue #18 item 7): it gives the space of deleted
//! objects back, keeps every object, ref and metadata entry, and a process
//! killed at any step of it leaves the store as it was or compacted.

use std::path::Path;
use std::process::{Command, Stdio};

use kvgit_core::{Backend, Durability, Error, ObjectId, SledBackend, SledOptions};

fn open(path: &Path) -> SledBackend {
    SledBackend::open(path, SledOptions::default()).expect("the store opens")
}

/// `count` objects of 1 to ~3 KiB, a few of ~200 KiB (sled page files).
fn objects(count: u32, salt: u8) -> Vec<(ObjectId, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let len = if i % 500 == 3 {
                200_000
            } else {
                1000 + (i as usize * 37) % 2000
            };
            let bytes: Vec<u8> = (0..len)
                .map(|j| (j as u32 ^ i) as u8 ^ salt)
                .chain(i.to_be_bytes())
                .collect();
            (ObjectId::hash(&bytes), bytes)
        })
        .collect()
}

/// Everything a backend holds: objects, refs, metadata.
type Contents = (
    Vec<(ObjectId, Vec<u8>)>,
    Vec<(String, ObjectId)>,
    Vec<(Vec<u8>, Vec<u8>)>,
);

fn contents(b: &SledBackend) -> Contents {
    let mut ids = Vec::new();
    b.for_each_object(&mut |id, _| {
        ids.push(id);
        Ok(true)
    })
    .expect("the backend call succeeds");
    let objects = ids
        .into_iter()
        .map(|id| {
            (
                id,
                b.get_object(&id)
                    .expect("the backend call succeeds")
                    .expect("listed"),
            )
        })
        .collect();
    (
        objects,
        b.list_refs("").expect("the backend call succeeds"),
        b.scan_meta(b"").expect("the backend call succeeds"),
    )
}

/// A store with 3,000 objects, two refs and metadata, of which all but
/// `keep` objects are then deleted.
fn filled(path: &Path, keep: usize) -> SledBackend {
    let b = open(path);
    let all = objects(3_000, 0);
    for chunk in all.chunks(100) {
        b.put_objects(chunk.to_vec())
            .expect("the backend call succeeds");
    }
    b.cas_ref("refs/heads/main", None, Some(&all[0].0))
        .expect("the backend call succeeds");
    b.cas_ref("refs/heads/dev", None, Some(&all[1].0))
        .expect("the backend call succeeds");
    b.put_meta(vec![
        (b"access/a".to_vec(), Some(vec![1; 40])),
        (b"format".to_vec(), Some(b"1".to_vec())),
    ])
    .expect("the backend call succeeds");
    let doomed: Vec<ObjectId> = all[keep..].iter().map(|o| o.0).collect();
    b.delete_objects(&doomed)
        .expect("the backend call succeeds");
    b.flush(Durability::Durable)
        .expect("the backend call succeeds");
    b
}

#[test]
fn compact_gives_back_the_space_of_deleted_objects_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let b = filled(&path, 300);
    let before = contents(&b);
    assert_eq!(before.0.len(), 300);
    let size_before = b.size_on_disk().unwrap();
    let report = b.compact().expect("compact");
    assert_eq!(report.bytes_before, size_before);
    assert_eq!(report.bytes_after, b.size_on_disk().unwrap());
    assert!(
        report.bytes_after < report.bytes_before / 2,
        "{report:?}: less than half should remain"
    );
    let live: u64 = before.0.iter().map(|(_, v)| v.len() as u64 + 32).sum();
    assert!(report.live_bytes >= live, "{report:?}");
    assert_eq!(contents(&b), before, "same contents after compaction");
    assert!(!path.join("kvgit.compact").exists());

    // The backend works on as before: writes, a ref move, a durable flush.
    let more = objects(50, 7);
    b.put_objects(more.clone()).unwrap();
    b.cas_ref("refs/heads/main", Some(&before.1[1].1), Some(&more[0].0))
        .unwrap();
    b.flush(Durability::Durable).unwrap();
    let after = contents(&b);
    drop(b);

    // And the compacted store reopens with everything (its close record
    // matches).
    let b = open(&path);
    assert_eq!(contents(&b), after);
    assert_eq!(
        b.get_ref("refs/heads/main").unwrap(),
        Some(more[0].0),
        "the move after the compaction survived the reopen"
    );
}

#[test]
fn compact_twice_and_on_an_empty_store_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let b = open(&path);
    b.compact().expect("compact an empty store");
    b.put_objects(objects(10, 1)).unwrap();
    b.compact().expect("compact");
    let c = contents(&b);
    b.compact().expect("compact again");
    assert_eq!(contents(&b), c);
}

#[test]
fn compact_of_a_read_only_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(filled(&path, 10));
    let b = SledBackend::open_read_only(&path, SledOptions::default()).unwrap();
    let err = b.compact().expect_err("read-only");
    assert!(matches!(err, Error::ReadOnly { .. }), "{err:?}");
}

/// The points where a debug build's compaction can be made to die
/// (`KVGIT_TEST_FAIL_AT`), in order; before `compact:ready` the store
/// stays as it was, from it on the next open finishes the compaction.
const COMPACT_STEPS: &[&str] = &[
    "compact:copied",
    "compact:ready",
    "compact:snapshots-removed",
    "compact:blobs-moved",
    "compact:db-moved",
    "compact:moved",
];

const CHILD_ENV: &str = "KVGIT_TEST_COMPACT_CHILD";

/// Parent: for every step, a copy of this test binary fills a store and
/// dies in its compaction at that step; the store then opens (for reading:
/// only once a writable open finished a swap), holds exactly what it held,
/// and takes writes.
#[test]
fn a_compaction_killed_at_any_step_leaves_the_store_whole() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let b = filled(Path::new(&path), 200);
        let _ = b.compact();
        // Only reached if the fault point did not abort.
        std::process::exit(3);
    }
    for step in COMPACT_STEPS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_compaction_killed_at_any_step_leaves_the_store_whole",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .env("KVGIT_TEST_FAIL_AT", step)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "{step}: the child should have died");
        assert_ne!(
            status.code(),
            Some(3),
            "{step}: the fault point was not hit"
        );
        let staging = path.join("kvgit.compact");
        assert!(staging.exists(), "{step}: the staging directory is left");
        let ready = staging.join("ready").exists();
        if ready {
            let err = SledBackend::open_read_only(&path, SledOptions::default())
                .expect_err("a read-only open cannot finish the swap");
            assert!(matches!(err, Error::Unavailable { .. }), "{step}: {err:?}");
            assert!(err.to_string().contains("for writing"), "{step}: {err}");
        }
        let b = open(&path);
        assert!(!staging.exists(), "{step}: the open cleared the staging");
        let (objects, refs, meta) = contents(&b);
        assert_eq!(objects.len(), 200, "{step}");
        for (id, bytes) in &objects {
            assert_eq!(ObjectId::hash(bytes), *id, "{step}");
        }
        assert_eq!(refs.len(), 2, "{step}");
        assert_eq!(meta.len(), 2, "{step}");
        b.put_objects(self::objects(5, 9)).unwrap();
        b.flush(Durability::Durable).unwrap();
        let c = contents(&b);
        drop(b);
        let b = SledBackend::open_read_only(&path, SledOptions::default()).unwrap();
        assert_eq!(contents(&b), c, "{step}");
    }
}
