//! Threads committing to the same and to different branches, merging
//! branches into each other, and garbage collection (rebase and sweep)
//! running at the same time: afterwards no counter increment is lost, and
//! every object every ref reaches is present and hashes to its id.
//!
//! Short by default; `KVGIT_STRESS=1` runs it ten times longer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use kvgit::merge::{Counter, Ours};
use kvgit::{Db, Durability};
use kvgit_core::object::{Node, ValueRef};
use kvgit_core::{ObjectId, Repo};

fn rounds() -> u64 {
    if std::env::var("KVGIT_STRESS").is_ok() {
        2_000
    } else {
        200
    }
}

/// Walks every commit (all parents), node and blob reachable from every
/// ref, checking that each object exists and hashes to its id.
fn verify(repo: &Repo) -> usize {
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut commits: Vec<ObjectId> = repo
        .backend()
        .list_refs("")
        .expect("refs")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let mut nodes = Vec::new();
    while let Some(id) = commits.pop() {
        if !seen.insert(id) {
            continue;
        }
        let bytes = repo.object_bytes(&id).expect("commit present");
        let commit = kvgit_core::Commit::decode(&id, &bytes).expect("commit intact");
        nodes.push(commit.root);
        commits.extend(commit.parents);
    }
    while let Some(id) = nodes.pop() {
        if !seen.insert(id) {
            continue;
        }
        let bytes = repo.object_bytes(&id).expect("node present");
        let node = Node::decode(&id, &bytes).expect("node intact");
        for child in node.children() {
            nodes.push(child.id);
        }
        for (_, value) in node.leaf_entries() {
            if let ValueRef::Blob { id, .. } = value {
                let bytes = repo.object_bytes(&id).expect("blob present");
                kvgit_core::object::decode_blob(&id, &bytes).expect("blob intact");
                seen.insert(id);
            }
        }
    }
    seen.len()
}

#[test]
fn writers_merges_and_gc_at_once_lose_nothing() {
    let db = Db::builder()
        .durability(Durability::Eventual)
        .max_retries(10_000)
        .memory();
    // Counters merge by adding up; everything else: the later writer's
    // value stands.
    db.merge_fns().set_prefix("__count/", Counter);
    // A cache entry the writer rewrites while a rebase drops it: the
    // writer's value wins (without this, modify-vs-delete is a conflict).
    db.merge_fns().set_prefix("entry/", Ours);
    let main = db.branch("main").expect("main");
    main.put("__count/main", "0").expect("init");
    main.put("__count/dev", "0").expect("init");
    let dev = main.fork("dev").expect("dev");
    let cache = db.branch("cache").expect("cache");
    let stop = Arc::new(AtomicBool::new(false));
    let increments = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let n = rounds();

    let mut writers = Vec::new();
    // Two writers on main, one on dev: each increments its branch's
    // counter and writes some bulk (droppable by GC) under its own prefix.
    for (t, branch) in [(0usize, main.clone()), (1, main.clone()), (2, dev.clone())] {
        let increments = increments.clone();
        writers.push(thread::spawn(move || {
            let counter = if t == 2 {
                "__count/dev"
            } else {
                "__count/main"
            };
            for i in 0..n {
                let mut tx = branch.transaction().expect("tx");
                let v: i64 = String::from_utf8(tx.get(counter).expect("get").expect("set"))
                    .expect("utf-8")
                    .parse()
                    .expect("integer");
                tx.put(counter, (v + 1).to_string());
                tx.put(format!("bulk/{t}/{}", i % 50), vec![i as u8; 200]);
                tx.commit().expect("commit");
                increments[usize::from(t == 2)].fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // A merger: dev into main and main into dev, over and over.
    let merger = {
        let (main, dev, stop) = (main.clone(), dev.clone(), stop.clone());
        thread::spawn(move || {
            let mut merges = 0;
            while !stop.load(Ordering::SeqCst) {
                main.merge_from(&dev).expect("merge dev into main");
                dev.merge_from(&main).expect("merge main into dev");
                merges += 2;
            }
            merges
        })
    };
    // A writer on a branch of its own, which garbage collection rebases
    // (a rebase cuts history, so it is not done to branches merged with
    // others: their merges would lose their common ancestor).
    let cache_writer = {
        let cache = cache.clone();
        thread::spawn(move || {
            for i in 0..n {
                cache
                    .put(format!("entry/{}", i % 40), vec![i as u8; 300])
                    .expect("put");
            }
        })
    };
    // Garbage collection: rebases of `cache` and sweeps of the whole store,
    // while every other thread writes and merges.
    let collector = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            let mut sweeps = 0;
            while !stop.load(Ordering::SeqCst) {
                db.rebase("cache", 6_000, Some(3_000)).expect("rebase");
                db.sweep().expect("sweep");
                sweeps += 1;
            }
            sweeps
        })
    };
    for w in writers {
        w.join().expect("writer");
    }
    cache_writer.join().expect("cache writer");
    stop.store(true, Ordering::SeqCst);
    let merges = merger.join().expect("merger");
    let sweeps = collector.join().expect("collector");
    // Settle: one last merge each way, then count.
    main.merge_from(&dev).expect("final merge");
    dev.merge_from(&main).expect("final merge");

    let read = |b: &kvgit::Branch, k: &str| -> u64 {
        String::from_utf8(b.get(k).expect("get").expect("set"))
            .expect("utf-8")
            .parse()
            .expect("integer")
    };
    let main_increments = increments[0].load(Ordering::SeqCst);
    let dev_increments = increments[1].load(Ordering::SeqCst);
    assert_eq!(main_increments, 2 * n);
    assert_eq!(dev_increments, n);
    for branch in [&main, &dev] {
        assert_eq!(
            read(branch, "__count/main"),
            main_increments,
            "{}",
            branch.name()
        );
        assert_eq!(
            read(branch, "__count/dev"),
            dev_increments,
            "{}",
            branch.name()
        );
    }
    let objects = verify(kvgit::advanced::repo(&db));
    db.sweep().expect("final sweep");
    assert_eq!(
        verify(kvgit::advanced::repo(&db)),
        objects,
        "a sweep after quiescence frees nothing reachable"
    );
    eprintln!(
        "{merges} merges, {sweeps} rebase+sweep rounds, {objects} reachable objects verified"
    );
}
