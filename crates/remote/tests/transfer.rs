//! Clone, fetch and push between in-memory stores, each served by a thread.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use kvgit_core::{CommitSpec, Repo};
use kvgit_remote::{
    clone, fetch, push, Connection, Error, FetchOptions, PushOptions, ServeOptions,
};

fn connect(server: &Repo) -> Connection {
    Connection::in_process(server.clone(), ServeOptions::default()).unwrap()
}

fn fetch_all(local: &Repo, server: &Repo) -> kvgit_remote::Report {
    let mut conn = connect(server);
    let report = fetch(local, &mut conn, "origin", &[], FetchOptions::default()).unwrap();
    conn.close().unwrap();
    report
}

fn clone_of(server: &Repo) -> Repo {
    let local = Repo::memory();
    let mut conn = connect(server);
    clone(&local, &mut conn, "origin", FetchOptions::default()).unwrap();
    conn.close().unwrap();
    local
}

#[test]
fn a_clone_copies_every_branch_with_its_history_and_verifies() {
    let server = store_with(3000, 40);
    put(&server, "main", "big", &"B".repeat(5000));
    put(&server, "dev", "only-dev", "1");
    put(&server, "dev", "only-dev", "2");
    let local = Repo::memory();
    let mut conn = connect(&server);
    let mut phases = Vec::new();
    let mut progress = |p: &kvgit_remote::Progress| phases.push(p.phase);
    let report = clone(
        &local,
        &mut conn,
        "origin",
        FetchOptions {
            progress: Some(&mut progress),
            ..Default::default()
        },
    )
    .unwrap();
    conn.close().unwrap();
    for branch in ["main", "dev"] {
        let name = format!("heads/{branch}");
        assert_eq!(
            local.get_ref(&name).unwrap(),
            server.get_ref(&name).unwrap()
        );
        assert_eq!(
            local.get_ref(&format!("remotes/origin/{branch}")).unwrap(),
            server.get_ref(&name).unwrap()
        );
        assert_eq!(contents(&local, &name), contents(&server, &name));
    }
    let log: Vec<_> = local
        .first_parent_log(local.get_ref("heads/dev").unwrap().unwrap())
        .map(Result::unwrap)
        .collect();
    assert_eq!(log.len(), 2);
    assert_verifies(&local);
    // Every reachable object once, and nothing else.
    let reachable = server.verify().unwrap();
    let reachable = (reachable.commits + reachable.nodes + reachable.blobs) as u64;
    assert_eq!(report.objects_received, reachable);
    assert_eq!(object_count(&local), reachable);
    assert_eq!(report.refs.len(), 4);
    assert!(phases.contains(&kvgit_remote::Phase::Blobs));
    assert_eq!(phases.last(), Some(&kvgit_remote::Phase::Done));
}

#[test]
fn a_clone_into_a_store_with_refs_is_refused() {
    let server = store_with(10, 4);
    let local = store_with(1, 4);
    let mut conn = connect(&server);
    let err = clone(&local, &mut conn, "origin", FetchOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotEmpty(1)), "{err}");
}

#[test]
fn an_incremental_fetch_sends_only_the_new_nodes_and_commits() {
    let server = store_with(20_000, 20);
    let local = clone_of(&server);
    let k = 10;
    for i in 0..k {
        put(
            &server,
            "main",
            &format!("k{:08}", i * 1999),
            &format!("new{i}"),
        );
    }
    let head = server.get_ref("heads/main").unwrap().unwrap();
    let tree = server
        .tree(server.read_commit(&head).unwrap().root)
        .unwrap();
    let depth = u64::from(tree.level()) + 1;
    let report = fetch_all(&local, &server);
    assert!(
        report.objects_received <= k * (depth + 1),
        "{} objects for {k} commits at depth {depth}",
        report.objects_received
    );
    assert!(report.objects_received >= k + depth);
    assert_eq!(local.get_ref("remotes/origin/main").unwrap(), Some(head));
    assert_eq!(
        contents(&local, "remotes/origin/main"),
        contents(&server, "heads/main")
    );
    // The local branch did not move: a fetch only moves tracking refs.
    assert_ne!(local.get_ref("heads/main").unwrap(), Some(head));
    assert_verifies(&local);
}

#[test]
fn an_up_to_date_fetch_is_one_round_trip_and_moves_nothing() {
    let server = store_with(500, 10);
    let local = clone_of(&server);
    let report = fetch_all(&local, &server);
    assert!(report.is_up_to_date(), "{report:?}");
    assert_eq!(report.round_trips, 1);
}

#[test]
fn a_store_rebased_to_a_fresh_root_fetches_incrementally() {
    let server = store_with(20_000, 20);
    let local = clone_of(&server);
    // What a GC rebase does: the same keys (minus a few, plus one), as a
    // new root commit with no parents.
    let head = server.get_ref("heads/main").unwrap().unwrap();
    let tree = server
        .tree(server.read_commit(&head).unwrap().root)
        .unwrap();
    let tree = server
        .apply(
            &tree,
            vec![
                (key(5), None),
                (key(15_000), None),
                (b"fresh".to_vec(), Some(b"1".to_vec())),
            ],
        )
        .unwrap();
    server
        .commit("heads/main", Some(&head), &tree, &CommitSpec::default())
        .unwrap();
    let report = fetch_all(&local, &server);
    let depth = u64::from(tree.level()) + 1;
    assert!(
        report.objects_received <= 3 * depth + 1,
        "{} objects",
        report.objects_received
    );
    assert_eq!(
        contents(&local, "remotes/origin/main"),
        contents(&server, "heads/main")
    );
    assert_verifies(&local);
}

#[test]
fn a_fast_forward_push_moves_the_remote_branch_and_the_tracking_ref() {
    let server = store_with(1000, 10);
    let local = clone_of(&server);
    put(&local, "main", "a", "1");
    let new = put(&local, "main", "b", &"2".repeat(1000));
    let mut conn = connect(&server);
    let report = push(
        &local,
        &mut conn,
        "main",
        PushOptions {
            remote_name: Some("origin".into()),
            ..Default::default()
        },
    )
    .unwrap();
    conn.close().unwrap();
    assert_eq!(server.get_ref("heads/main").unwrap(), Some(new));
    assert_eq!(local.get_ref("remotes/origin/main").unwrap(), Some(new));
    assert_eq!(
        contents(&server, "heads/main"),
        contents(&local, "heads/main")
    );
    // Two commits, their new paths and the blob.
    assert!(report.objects_sent <= 2 * 4 + 1, "{report:?}");
    assert_verifies(&server);
}

#[test]
fn a_push_that_is_not_a_fast_forward_is_refused_then_forced() {
    let server = store_with(100, 10);
    let local = clone_of(&server);
    let theirs = put(&server, "main", "theirs", "1");
    let ours = put(&local, "main", "ours", "1");
    let mut conn = connect(&server);
    let err = push(&local, &mut conn, "main", PushOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::NotFastForward { actual: Some(a), .. } if a == theirs),
        "{err}"
    );
    assert!(err.to_string().contains("pull first"), "{err}");
    assert_eq!(server.get_ref("heads/main").unwrap(), Some(theirs));
    let report = push(
        &local,
        &mut conn,
        "main",
        PushOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    conn.close().unwrap();
    assert_eq!(report.refs.len(), 1);
    assert_eq!(server.get_ref("heads/main").unwrap(), Some(ours));
    assert_verifies(&server);
}

#[test]
fn the_server_refuses_a_non_fast_forward_even_from_a_client_that_skips_its_check() {
    let server = store_with(100, 10);
    let local = clone_of(&server);
    let base = server.get_ref("heads/main").unwrap().unwrap();
    put(&server, "main", "theirs", "1");
    put(&local, "main", "ours", "1");
    // The client claims the head it started from: stale.
    let mut conn = connect(&server);
    let err = push(
        &local,
        &mut conn,
        "main",
        PushOptions {
            expected: Some(Some(base)),
            force: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotFastForward { .. }), "{err}");
}

#[test]
fn a_pre_receive_hook_sees_the_changed_keys_and_can_refuse() {
    let server = store_with(100, 10);
    let local = clone_of(&server);
    let before = server.get_ref("heads/main").unwrap();
    put(&local, "main", "bad/key", "1");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let options = ServeOptions {
        pre_receive: Some(Arc::new(
            move |_repo: &Repo, update: &kvgit_remote::PushUpdate| {
                seen2.lock().unwrap().push(update.clone());
                if update.changed_keys.iter().any(|k| k.starts_with(b"bad/")) {
                    Err("keys under bad/ are not allowed".to_string())
                } else {
                    Ok(())
                }
            },
        )),
        ..Default::default()
    };
    let mut conn = Connection::in_process(server.clone(), options.clone()).unwrap();
    let err = push(&local, &mut conn, "main", PushOptions::default()).unwrap_err();
    conn.close().unwrap();
    assert!(
        matches!(&err, Error::Rejected { reason, .. } if reason.contains("not allowed")),
        "{err}"
    );
    assert_eq!(server.get_ref("heads/main").unwrap(), before);
    let updates = seen.lock().unwrap().clone();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].changed_keys, vec![b"bad/key".to_vec()]);
    assert_eq!(updates[0].old, before);
    // A good change passes the same hook.
    commit(&local, "main", &[(b"bad/key", None), (b"good", Some(b"1"))]);
    let mut conn = Connection::in_process(server.clone(), options).unwrap();
    push(&local, &mut conn, "main", PushOptions::default()).unwrap();
    conn.close().unwrap();
    assert_eq!(
        server.get_ref("heads/main").unwrap(),
        local.get_ref("heads/main").unwrap()
    );
}

#[test]
fn a_pluggable_apply_moves_the_ref_for_the_server() {
    let server = store_with(10, 10);
    let local = clone_of(&server);
    let new = put(&local, "main", "x", "1");
    let moves = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let moves2 = moves.clone();
    let options = ServeOptions {
        apply: Some(Arc::new(
            move |repo: &Repo, update: &kvgit_remote::PushUpdate| {
                moves2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(repo.move_ref(&update.name, update.old.as_ref(), Some(&update.new))?)
            },
        )),
        ..Default::default()
    };
    let mut conn = Connection::in_process(server.clone(), options).unwrap();
    push(&local, &mut conn, "main", PushOptions::default()).unwrap();
    conn.close().unwrap();
    assert_eq!(moves.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(server.get_ref("heads/main").unwrap(), Some(new));
}

#[test]
fn two_clones_pushing_at_once_one_wins_and_the_other_pulls_then_pushes() {
    let server = Repo::memory();
    put(&server, "main", "counter", "0");
    let a = clone_of(&server);
    let b = clone_of(&server);
    put(&a, "main", "from-a", "1");
    put(&b, "main", "from-b", "1");
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = [&a, &b]
            .into_iter()
            .map(|local| {
                let server = server.clone();
                s.spawn(move || {
                    let mut conn = connect(&server);
                    let r = push(local, &mut conn, "main", PushOptions::default());
                    conn.close().unwrap();
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    let loser = if results[0].is_ok() { &b } else { &a };
    assert!(matches!(
        results.iter().find(|r| r.is_err()).unwrap(),
        Err(Error::NotFastForward { .. })
    ));
    // Pull: fetch, then a merge commit of both sides (a union here).
    fetch_all(loser, &server);
    let theirs = loser.get_ref("remotes/origin/main").unwrap().unwrap();
    let ours = loser.get_ref("heads/main").unwrap().unwrap();
    let mut merged = contents(loser, "heads/main");
    merged.extend(contents(loser, "remotes/origin/main"));
    let tree = loser.build_tree(merged.clone()).unwrap();
    let spec = CommitSpec {
        parents: vec![ours, theirs],
        ..Default::default()
    };
    loser
        .commit("heads/main", Some(&ours), &tree, &spec)
        .unwrap();
    let mut conn = connect(&server);
    push(loser, &mut conn, "main", PushOptions::default()).unwrap();
    conn.close().unwrap();
    let on_server = contents(&server, "heads/main");
    assert_eq!(on_server, merged);
    assert!(
        on_server.contains_key(b"from-a".as_slice())
            && on_server.contains_key(b"from-b".as_slice())
    );
    assert_verifies(&server);
}

#[test]
fn a_shallow_clone_has_only_the_head_commits_and_records_the_cut() {
    let server = Repo::memory();
    for i in 0..5 {
        put(&server, "main", "k", &i.to_string());
    }
    let local = Repo::memory();
    let mut conn = connect(&server);
    let report = clone(
        &local,
        &mut conn,
        "origin",
        FetchOptions {
            depth: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    conn.close().unwrap();
    let head = server.get_ref("heads/main").unwrap().unwrap();
    assert_eq!(report.shallow, vec![head]);
    assert_eq!(kvgit_remote::shallow_commits(&local).unwrap(), vec![head]);
    assert_eq!(
        contents(&local, "heads/main"),
        contents(&server, "heads/main")
    );
    // One commit, its tree (a single leaf).
    assert_eq!(report.objects_received, 2);
}

#[test]
fn fetching_named_branches_only_and_an_unknown_branch() {
    let server = store_with(10, 4);
    put(&server, "dev", "x", "1");
    let local = Repo::memory();
    let mut conn = connect(&server);
    let report = fetch(
        &local,
        &mut conn,
        "up",
        &["dev".to_string()],
        FetchOptions::default(),
    )
    .unwrap();
    assert_eq!(report.refs.len(), 1);
    assert_eq!(report.refs[0].name, "remotes/up/dev");
    assert!(local.get_ref("remotes/up/main").unwrap().is_none());
    let err = fetch(
        &local,
        &mut conn,
        "up",
        &["nope".to_string()],
        FetchOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownRemoteBranch(_)), "{err}");
    conn.close().unwrap();
}

#[test]
fn remotes_are_configured_in_the_store() {
    let repo = Repo::memory();
    kvgit_remote::add_remote(&repo, "origin", "ssh://h/srv/s").unwrap();
    kvgit_remote::add_remote(&repo, "backup", "/mnt/b").unwrap();
    assert_eq!(
        kvgit_remote::list_remotes(&repo).unwrap(),
        vec![
            ("backup".to_string(), "/mnt/b".to_string()),
            ("origin".to_string(), "ssh://h/srv/s".to_string())
        ]
    );
    assert_eq!(
        kvgit_remote::remote_url(&repo, "origin").unwrap(),
        "ssh://h/srv/s"
    );
    assert!(kvgit_remote::add_remote(&repo, "a/b", "/x").is_err());
    assert!(kvgit_remote::add_remote(&repo, "x", "http://x/y").is_err());
    let server = store_with(5, 4);
    let mut conn = connect(&server);
    fetch(&repo, &mut conn, "origin", &[], FetchOptions::default()).unwrap();
    conn.close().unwrap();
    kvgit_remote::remove_remote(&repo, "origin").unwrap();
    assert!(repo.list_refs("remotes/").unwrap().is_empty());
    assert!(matches!(
        kvgit_remote::remote_url(&repo, "origin"),
        Err(Error::UnknownRemote(_))
    ));
}
