//! Remotes through the facade, as the README shows them: clones of one
//! store pushing and pulling, with the store's merge functions.

#![cfg(feature = "remote")]

use kvgit::merge::Counter;
use kvgit::remote::{PushOptions, TransferError};
use kvgit::{Db, Error};

fn text(v: Option<Vec<u8>>) -> String {
    String::from_utf8(v.expect("the key is there")).expect("UTF-8")
}

/// Two clones push to one remote at once: one wins, the other is refused
/// as not a fast-forward; after its pull (merged with the counter merge
/// function) and push, both increments are in, on every store.
#[test]
fn two_clones_pushing_a_counter_one_is_refused_then_pulls_and_both_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let origin_path = dir.path().join("origin");
    {
        let origin = Db::open(&origin_path).unwrap();
        origin.branch("main").unwrap().put("hits", "100").unwrap();
    }
    let url = origin_path.to_string_lossy().into_owned();
    let (a, _) = Db::clone_from(&url, dir.path().join("a")).unwrap();
    let (b, _) = Db::clone_from(&url, dir.path().join("b")).unwrap();
    for db in [&a, &b] {
        db.merge_fns().set("hits", Counter);
    }
    let (a_main, b_main) = (a.branch("main").unwrap(), b.branch("main").unwrap());
    a_main.put("hits", "115").unwrap();
    b_main.put("hits", "120").unwrap();

    a_main.push("origin", PushOptions::default()).unwrap();
    let refused = b_main.push("origin", PushOptions::default()).unwrap_err();
    assert!(
        matches!(refused, Error::Remote(TransferError::NotFastForward { .. })),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("pull"), "{refused}");

    b_main.pull("origin", Default::default()).unwrap();
    assert_eq!(text(b_main.get("hits").unwrap()), "135");
    b_main.push("origin", PushOptions::default()).unwrap();
    a_main.pull("origin", Default::default()).unwrap();
    assert_eq!(text(a_main.get("hits").unwrap()), "135");
    assert_eq!(a_main.head().unwrap(), b_main.head().unwrap());
    drop((a_main, b_main, a, b));
    let origin = Db::open_existing(&origin_path).unwrap();
    let main = origin.branch("main").unwrap();
    assert_eq!(text(main.get("hits").unwrap()), "135");
    assert!(origin.verify().unwrap().is_ok());
}

/// A shallow clone's history ends at its cut: `Branch::log` and
/// `Branch::log_all` list the commits it has and stop there (they failed
/// with a missing commit before).
#[test]
fn the_logs_of_a_shallow_clone_stop_at_the_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let origin_path = dir.path().join("origin");
    {
        let origin = Db::open(&origin_path).unwrap();
        let main = origin.branch("main").unwrap();
        for i in 0..3 {
            main.put("k", i.to_string()).unwrap();
        }
    }
    let url = origin_path.to_string_lossy().into_owned();
    let options = kvgit::remote::FetchOptions {
        depth: Some(1),
        ..Default::default()
    };
    let (copy, _) = Db::clone_from_with(&url, dir.path().join("copy"), options).unwrap();
    let main = copy.branch("main").unwrap();
    let first_parents: Vec<_> = main.log().unwrap().collect::<kvgit::Result<_>>().unwrap();
    assert_eq!(first_parents.len(), 1);
    let all: Vec<_> = main
        .log_all()
        .unwrap()
        .collect::<kvgit::Result<_>>()
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(copy.shallow_commits().unwrap(), vec![first_parents[0].id]);
    // The full store's log goes on below that commit.
    let origin = Db::open(&origin_path).unwrap();
    assert_eq!(origin.branch("main").unwrap().log().unwrap().count(), 4);
}
