//! Merging commits and recording the result on a ref.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use kvgit_core::{CommitSpec, ObjectId, Repo, Tree};
use kvgit_merge::{
    merge_commits, merge_into_ref, Counter, Error, MergeFn, RefOptions, Registry, Resolution,
    Strategy,
};

mod common;

fn put(repo: &Repo, tree: &Tree, kvs: &[(&str, &str)]) -> Tree {
    repo.apply(
        tree,
        kvs.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))),
    )
    .expect("test helper")
}

fn commit(repo: &Repo, tree: &Tree, parents: &[ObjectId]) -> ObjectId {
    repo.write_commit(
        tree,
        &CommitSpec {
            parents: parents.to_vec(),
            ..CommitSpec::default()
        },
    )
    .expect("test helper")
}

fn tree_of(repo: &Repo, id: &ObjectId) -> Tree {
    repo.tree(repo.read_commit(id).expect("test helper").root)
        .expect("test helper")
}

fn get(repo: &Repo, id: &ObjectId, k: &str) -> Option<String> {
    repo.get(&tree_of(repo, id), k.as_bytes())
        .expect("test helper")
        .map(|v| String::from_utf8(v).expect("test helper"))
}

/// A base commit and a repo with `heads/main` at it.
fn start() -> (Repo, Tree, ObjectId) {
    let repo = Repo::memory();
    let t = put(
        &repo,
        &repo.empty_tree().expect("test helper"),
        &[("a", "1"), ("hits", "100")],
    );
    let c = commit(&repo, &t, &[]);
    repo.move_ref("heads/main", None, Some(&c))
        .expect("test helper");
    (repo, t, c)
}

#[test]
fn fast_forward_moves_the_ref_without_a_commit() {
    let (repo, t, base) = start();
    let dev = commit(&repo, &put(&repo, &t, &[("b", "2")]), &[base]);
    let done = merge_into_ref(
        &repo,
        "heads/main",
        &dev,
        &Registry::new(),
        &RefOptions::default(),
    )
    .unwrap();
    assert_eq!(done.head, dev);
    assert_eq!(done.previous, Some(base));
    assert_eq!(done.merge_commit, None);
    assert_eq!(done.outcome.base, Some(base));
    assert_eq!(done.outcome.merge.strategy, Strategy::FastForward);
    assert_eq!(done.outcome.merge.from_theirs, vec![b"b".to_vec()]);
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(dev));

    // Merging it again is a no-op: already up to date.
    let again = merge_into_ref(
        &repo,
        "heads/main",
        &dev,
        &Registry::new(),
        &RefOptions::default(),
    )
    .unwrap();
    assert_eq!((again.head, again.merge_commit), (dev, None));
    assert_eq!(again.outcome.merge.strategy, Strategy::NoOp);
}

#[test]
fn fast_forward_key_listing_is_optional() {
    let (repo, t, base) = start();
    let dev = commit(&repo, &put(&repo, &t, &[("b", "2")]), &[base]);
    let mut options = kvgit_merge::commit::Options::default();
    options.tree.list_fast_forward_keys = false;
    let out = merge_commits(&repo, &base, &dev, &Registry::new(), &options).unwrap();
    assert_eq!(out.merge.strategy, Strategy::FastForward);
    assert!(out.merge.from_theirs.is_empty());
    assert_eq!(out.merge.tree, tree_of(&repo, &dev));
}

#[test]
fn fast_forward_can_be_refused() {
    let (repo, t, base) = start();
    let dev = commit(&repo, &put(&repo, &t, &[("b", "2")]), &[base]);
    let options = RefOptions {
        fast_forward: false,
        message: "merge dev".into(),
        ..RefOptions::default()
    };
    let done = merge_into_ref(&repo, "heads/main", &dev, &Registry::new(), &options).unwrap();
    let id = done.merge_commit.expect("a merge commit");
    assert_eq!(done.head, id);
    let c = repo.read_commit(&id).unwrap();
    assert_eq!(c.parents, vec![base, dev]);
    assert_eq!(c.message, "merge dev");
    assert_eq!(c.root, tree_of(&repo, &dev).root());
}

#[test]
fn an_ancestor_is_already_merged() {
    let (repo, t, base) = start();
    let main = commit(&repo, &put(&repo, &t, &[("b", "2")]), &[base]);
    repo.move_ref("heads/main", Some(&base), Some(&main))
        .unwrap();
    let done = merge_into_ref(
        &repo,
        "heads/main",
        &base,
        &Registry::new(),
        &RefOptions::default(),
    )
    .unwrap();
    assert_eq!((done.head, done.merge_commit), (main, None));
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(main));
}

#[test]
fn diverged_branches_get_a_merge_commit() {
    let (repo, t, base) = start();
    let main = commit(
        &repo,
        &put(&repo, &t, &[("hits", "115"), ("m", "1")]),
        &[base],
    );
    let dev = commit(
        &repo,
        &put(&repo, &t, &[("hits", "120"), ("d", "1")]),
        &[base],
    );
    repo.move_ref("heads/main", Some(&base), Some(&main))
        .unwrap();
    let registry = Registry::new();
    registry.set("hits", Counter);
    let done =
        merge_into_ref(&repo, "heads/main", &dev, &registry, &RefOptions::default()).unwrap();
    let id = done.merge_commit.expect("a merge commit");
    let c = repo.read_commit(&id).unwrap();
    assert_eq!(c.parents, vec![main, dev]);
    assert_eq!(c.height, 3);
    assert_eq!(get(&repo, &id, "hits").as_deref(), Some("135"));
    assert_eq!(get(&repo, &id, "m").as_deref(), Some("1"));
    assert_eq!(get(&repo, &id, "d").as_deref(), Some("1"));
    assert_eq!(done.outcome.merge.strategy, Strategy::ThreeWay);
    assert_eq!(done.outcome.merge.resolved, vec![b"hits".to_vec()]);
    assert_eq!(done.outcome.merge.from_theirs, vec![b"d".to_vec()]);

    // The merge commit is now the base of dev's next merge.
    let dev2 = commit(
        &repo,
        &put(&repo, &tree_of(&repo, &dev), &[("hits", "121")]),
        &[dev],
    );
    let out = merge_commits(&repo, &id, &dev2, &registry, &Default::default()).unwrap();
    assert_eq!(out.base, Some(dev));
    assert_eq!(
        repo.get(&out.merge.tree, b"hits").unwrap(),
        Some(b"136".to_vec())
    );
}

#[test]
fn conflicts_leave_the_ref_alone() {
    let (repo, t, base) = start();
    let main = commit(
        &repo,
        &put(&repo, &t, &[("a", "2"), ("hits", "1")]),
        &[base],
    );
    let dev = commit(
        &repo,
        &put(&repo, &t, &[("a", "3"), ("hits", "2")]),
        &[base],
    );
    repo.move_ref("heads/main", Some(&base), Some(&main))
        .unwrap();
    let err = merge_into_ref(
        &repo,
        "heads/main",
        &dev,
        &Registry::new(),
        &RefOptions::default(),
    )
    .unwrap_err();
    let keys: Vec<&[u8]> = err
        .conflicts()
        .unwrap()
        .iter()
        .map(|c| c.key.as_slice())
        .collect();
    assert_eq!(keys, vec![&b"a"[..], b"hits"]);
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(main));
}

#[test]
fn a_missing_ref_starts_at_theirs() {
    let (repo, _, base) = start();
    let done = merge_into_ref(
        &repo,
        "heads/new",
        &base,
        &Registry::new(),
        &RefOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (done.previous, done.head, done.merge_commit),
        (None, base, None)
    );
    assert_eq!(
        done.outcome.merge.from_theirs,
        vec![b"a".to_vec(), b"hits".to_vec()]
    );
    assert_eq!(repo.get_ref("heads/new").unwrap(), Some(base));
}

#[test]
fn unrelated_histories_merge_against_the_empty_tree() {
    let repo = Repo::memory();
    let empty = repo.empty_tree().unwrap();
    let x = commit(
        &repo,
        &put(&repo, &empty, &[("a", "1"), ("same", "s")]),
        &[],
    );
    let y = commit(
        &repo,
        &put(&repo, &empty, &[("b", "2"), ("same", "s")]),
        &[],
    );
    let out = merge_commits(&repo, &x, &y, &Registry::new(), &Default::default()).unwrap();
    assert_eq!(out.base, None);
    assert_eq!(
        common::contents(&repo, &out.merge.tree),
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
            (b"same".to_vec(), b"s".to_vec())
        ]
    );
    let z = commit(&repo, &put(&repo, &empty, &[("a", "9")]), &[]);
    let err = merge_commits(&repo, &x, &z, &Registry::new(), &Default::default()).unwrap_err();
    assert!(matches!(err, Error::Conflicts(c) if c.len() == 1 && c[0].base.is_none()));
}

/// A counter merge function that, on its first calls, lets another writer
/// commit to the ref first (as a concurrent process would).
struct Racing {
    repo: Repo,
    races: u32,
    calls: AtomicU32,
}

impl MergeFn for Racing {
    fn merge(
        &self,
        key: &[u8],
        b: Option<&[u8]>,
        o: Option<&[u8]>,
        t: Option<&[u8]>,
    ) -> Resolution {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.races {
            let head = self
                .repo
                .get_ref("heads/main")
                .expect("racing writer")
                .expect("racing writer");
            let tree = tree_of(&self.repo, &head);
            let n: i64 = String::from_utf8(
                self.repo
                    .get(&tree, b"hits")
                    .expect("racing writer")
                    .expect("racing writer"),
            )
            .expect("racing writer")
            .parse()
            .expect("racing writer");
            let next = put(&self.repo, &tree, &[("hits", &(n + 1).to_string())]);
            let id = commit(&self.repo, &next, &[head]);
            self.repo
                .move_ref("heads/main", Some(&head), Some(&id))
                .expect("racing writer");
        }
        Counter.merge(key, b, o, t)
    }
}

#[test]
fn a_moving_ref_is_merged_again() {
    let (repo, t, base) = start();
    let main = commit(&repo, &put(&repo, &t, &[("hits", "110")]), &[base]);
    let dev = commit(&repo, &put(&repo, &t, &[("hits", "120")]), &[base]);
    repo.move_ref("heads/main", Some(&base), Some(&main))
        .unwrap();
    let racing = Arc::new(Racing {
        repo: repo.clone(),
        races: 2,
        calls: AtomicU32::new(0),
    });
    let registry = Registry::new();
    registry.set_policy("hits", kvgit_merge::Policy::Fn(racing.clone()));
    let done =
        merge_into_ref(&repo, "heads/main", &dev, &registry, &RefOptions::default()).unwrap();
    assert_eq!(done.attempts, 3);
    // 100 + 10 (main) + 2 (the racing writer) + 20 (dev).
    assert_eq!(get(&repo, &done.head, "hits").as_deref(), Some("132"));
    assert_eq!(repo.read_commit(&done.head).unwrap().parents[1], dev);

    // With one attempt allowed, a race is an error.
    let racing = Arc::new(Racing {
        repo: repo.clone(),
        races: 1,
        calls: AtomicU32::new(0),
    });
    registry.set_policy("hits", kvgit_merge::Policy::Fn(racing));
    let dev2 = commit(
        &repo,
        &put(&repo, &tree_of(&repo, &dev), &[("hits", "121")]),
        &[dev],
    );
    let options = RefOptions {
        max_attempts: 1,
        ..RefOptions::default()
    };
    let err = merge_into_ref(&repo, "heads/main", &dev2, &registry, &options).unwrap_err();
    assert!(matches!(err, Error::Contended { attempts: 1, .. }), "{err}");
}
