//! Three stores with random histories on two branches (puts, deletes,
//! branches made and reset, local merges, GC-style rebases to fresh roots)
//! and random fetches, pulls and pushes between them:
//! after each step every ref's tree matches a model and every store
//! verifies.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use kvgit_core::{CommitSpec, Repo};
use kvgit_remote::{fetch, push, Connection, Error, FetchOptions, PushOptions, ServeOptions};
use proptest::prelude::*;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    /// Store, branch, key, value.
    Put(usize, usize, u8, u8),
    Delete(usize, usize, u8),
    /// Store, from branch, to branch: `to` becomes a copy of `from` (a new
    /// branch, or a branch reset to another's head).
    Branch(usize, usize, usize),
    /// Store, from branch, into branch: a local merge.
    Merge(usize, usize, usize),
    Rebase(usize, usize),
    Fetch(usize, usize),
    /// Into store, from store, branch.
    Pull(usize, usize, usize),
    Push(usize, usize, usize),
}

/// The branches the stores use.
const BRANCHES: [&str; 2] = ["main", "dev"];

fn op() -> impl Strategy<Value = Op> {
    let s = 0..3usize;
    let b = 0..BRANCHES.len();
    prop_oneof![
        4 => (s.clone(), b.clone(), 0..40u8, any::<u8>()).prop_map(|(s, b, k, v)| Op::Put(s, b, k, v)),
        1 => (s.clone(), b.clone(), 0..40u8).prop_map(|(s, b, k)| Op::Delete(s, b, k)),
        1 => (s.clone(), b.clone(), b.clone()).prop_map(|(s, f, t)| Op::Branch(s, f, t)),
        1 => (s.clone(), b.clone(), b.clone()).prop_map(|(s, f, t)| Op::Merge(s, f, t)),
        1 => (s.clone(), b.clone()).prop_map(|(s, b)| Op::Rebase(s, b)),
        2 => (s.clone(), s.clone()).prop_map(|(a, b)| Op::Fetch(a, b)),
        2 => (s.clone(), s.clone(), b.clone()).prop_map(|(a, c, b)| Op::Pull(a, c, b)),
        2 => (s.clone(), s, b).prop_map(|(a, c, b)| Op::Push(a, c, b)),
    ]
}

struct World {
    stores: Vec<Repo>,
    /// Per store: ref name -> contents.
    model: Vec<BTreeMap<String, Map>>,
}

fn k(i: u8) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

fn head(b: usize) -> String {
    format!("heads/{}", BRANCHES[b])
}

fn conn(to: &Repo) -> Connection {
    Connection::in_process(to.clone(), ServeOptions::default()).unwrap()
}

impl World {
    fn edit(&mut self, s: usize, b: usize, key: Vec<u8>, value: Option<Vec<u8>>) {
        let repo = &self.stores[s];
        commit(repo, BRANCHES[b], &[(&key, value.as_deref())]);
        let branch = self.model[s].entry(head(b)).or_default();
        match value {
            Some(v) => branch.insert(key, v),
            None => branch.remove(&key),
        };
    }

    fn fetch(&mut self, a: usize, b: usize) {
        let mut c = conn(&self.stores[b]);
        let remote = format!("s{b}");
        fetch(
            &self.stores[a],
            &mut c,
            &remote,
            &[],
            FetchOptions::default(),
        )
        .unwrap();
        c.close().unwrap();
        let theirs: Vec<(String, Map)> = self.model[b]
            .iter()
            .filter_map(|(name, map)| Some((name.strip_prefix("heads/")?.to_string(), map.clone())))
            .collect();
        for (branch, map) in theirs {
            self.model[a].insert(format!("remotes/{remote}/{branch}"), map);
        }
    }

    /// Merges ref `from` into branch `b` of store `s` (theirs, with ours
    /// winning where both have a key), as a two-parent commit.
    fn merge_ref(&mut self, s: usize, from: &str, b: usize) {
        let repo = &self.stores[s];
        let Some(theirs) = repo.get_ref(from).unwrap() else {
            return;
        };
        let into = head(b);
        let ours = repo.get_ref(&into).unwrap();
        let mut merged = self.model[s].get(from).cloned().unwrap_or_default();
        merged.extend(self.model[s].get(&into).cloned().unwrap_or_default());
        let tree = repo.build_tree(merged.clone()).unwrap();
        let parents = match ours {
            Some(o) if o != theirs => vec![o, theirs],
            _ => vec![theirs],
        };
        let spec = CommitSpec {
            parents,
            ..Default::default()
        };
        repo.commit(&into, ours.as_ref(), &tree, &spec).unwrap();
        self.model[s].insert(into, merged);
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Put(s, b, key, v) => self.edit(s, b, k(key), Some(vec![v; 1 + usize::from(v) * 2])),
            Op::Delete(s, b, key) if self.model[s].contains_key(&head(b)) => {
                self.edit(s, b, k(key), None)
            }
            Op::Branch(s, f, t) if f != t => {
                let repo = &self.stores[s];
                let Some(id) = repo.get_ref(&head(f)).unwrap() else {
                    return;
                };
                let old = repo.get_ref(&head(t)).unwrap();
                repo.move_ref(&head(t), old.as_ref(), Some(&id)).unwrap();
                let map = self.model[s][&head(f)].clone();
                self.model[s].insert(head(t), map);
            }
            Op::Merge(s, f, t) if f != t => self.merge_ref(s, &head(f), t),
            Op::Rebase(s, b) => {
                let repo = &self.stores[s];
                if let Some(id) = repo.get_ref(&head(b)).unwrap() {
                    let root = repo.read_commit(&id).unwrap().root;
                    let tree = repo.tree(root).unwrap();
                    repo.commit(&head(b), Some(&id), &tree, &CommitSpec::default())
                        .unwrap();
                }
            }
            Op::Fetch(a, b) if a != b => self.fetch(a, b),
            Op::Pull(a, c, b) if a != c => {
                self.fetch(a, c);
                self.merge_ref(a, &format!("remotes/s{c}/{}", BRANCHES[b]), b);
            }
            Op::Push(a, c, b) if a != c => {
                if !self.model[a].contains_key(&head(b)) {
                    return;
                }
                let mut conn = conn(&self.stores[c]);
                let remote = format!("s{c}");
                let result = push(
                    &self.stores[a],
                    &mut conn,
                    BRANCHES[b],
                    PushOptions {
                        remote_name: Some(remote.clone()),
                        ..Default::default()
                    },
                );
                conn.close().unwrap();
                match result {
                    Ok(_) => {
                        let map = self.model[a][&head(b)].clone();
                        self.model[c].insert(head(b), map.clone());
                        self.model[a].insert(format!("remotes/{remote}/{}", BRANCHES[b]), map);
                    }
                    Err(Error::NotFastForward { .. }) => {}
                    Err(e) => panic!("push failed: {e}"),
                }
            }
            _ => {}
        }
    }

    fn check(&self) {
        for (s, repo) in self.stores.iter().enumerate() {
            let refs: Vec<String> = repo
                .backend()
                .list_refs("")
                .unwrap()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            let expected: Vec<String> = self.model[s].keys().cloned().collect();
            assert_eq!(refs, expected, "store {s}");
            for (name, map) in &self.model[s] {
                assert_eq!(&contents(repo, name), map, "store {s} {name}");
            }
            assert_verifies(repo);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_histories_and_transfers_between_three_stores_match_a_model(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let mut world = World {
            stores: (0..3).map(|_| Repo::memory()).collect(),
            model: vec![BTreeMap::new(); 3],
        };
        for op in &ops {
            world.apply(op);
            world.check();
        }
    }
}
