//! Three stores with random histories (puts, deletes, GC-style rebases to
//! fresh roots, merges) and random fetches, pulls and pushes between them:
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
    Put(usize, u8, u8),
    Delete(usize, u8),
    Rebase(usize),
    Fetch(usize, usize),
    Pull(usize, usize),
    Push(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..40u8, any::<u8>()).prop_map(|(s, k, v)| Op::Put(s, k, v)),
        1 => (0..3usize, 0..40u8).prop_map(|(s, k)| Op::Delete(s, k)),
        1 => (0..3usize).prop_map(Op::Rebase),
        2 => (0..3usize, 0..3usize).prop_map(|(a, b)| Op::Fetch(a, b)),
        2 => (0..3usize, 0..3usize).prop_map(|(a, b)| Op::Pull(a, b)),
        2 => (0..3usize, 0..3usize).prop_map(|(a, b)| Op::Push(a, b)),
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

fn conn(to: &Repo) -> Connection {
    Connection::in_process(to.clone(), ServeOptions::default()).unwrap()
}

impl World {
    fn edit(&mut self, s: usize, key: Vec<u8>, value: Option<Vec<u8>>) {
        let repo = &self.stores[s];
        commit(repo, "main", &[(&key, value.as_deref())]);
        let main = self.model[s].entry("heads/main".into()).or_default();
        match value {
            Some(v) => main.insert(key, v),
            None => main.remove(&key),
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
        if let Some(main) = self.model[b].get("heads/main").cloned() {
            self.model[a].insert(format!("remotes/{remote}/main"), main);
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Put(s, key, v) => self.edit(s, k(key), Some(vec![v; 1 + usize::from(v) * 2])),
            Op::Delete(s, key) if self.model[s].contains_key("heads/main") => {
                self.edit(s, k(key), None)
            }
            Op::Rebase(s) => {
                let repo = &self.stores[s];
                if let Some(head) = repo.get_ref("heads/main").unwrap() {
                    let root = repo.read_commit(&head).unwrap().root;
                    let tree = repo.tree(root).unwrap();
                    repo.commit("heads/main", Some(&head), &tree, &CommitSpec::default())
                        .unwrap();
                }
            }
            Op::Fetch(a, b) if a != b => self.fetch(a, b),
            Op::Pull(a, b) if a != b => {
                self.fetch(a, b);
                let repo = &self.stores[a];
                let tracking = format!("remotes/s{b}/main");
                let Some(theirs) = repo.get_ref(&tracking).unwrap() else {
                    return;
                };
                let ours = repo.get_ref("heads/main").unwrap();
                let mut merged = self.model[a].get(&tracking).cloned().unwrap_or_default();
                merged.extend(self.model[a].get("heads/main").cloned().unwrap_or_default());
                let tree = repo.build_tree(merged.clone()).unwrap();
                let parents = match ours {
                    Some(o) if o != theirs => vec![o, theirs],
                    _ => vec![theirs],
                };
                let spec = CommitSpec {
                    parents,
                    ..Default::default()
                };
                repo.commit("heads/main", ours.as_ref(), &tree, &spec)
                    .unwrap();
                self.model[a].insert("heads/main".into(), merged);
            }
            Op::Push(a, b) if a != b => {
                if !self.model[a].contains_key("heads/main") {
                    return;
                }
                let mut c = conn(&self.stores[b]);
                let remote = format!("s{b}");
                let result = push(
                    &self.stores[a],
                    &mut c,
                    "main",
                    PushOptions {
                        remote_name: Some(remote.clone()),
                        ..Default::default()
                    },
                );
                c.close().unwrap();
                match result {
                    Ok(_) => {
                        let main = self.model[a]["heads/main"].clone();
                        self.model[b].insert("heads/main".into(), main.clone());
                        self.model[a].insert(format!("remotes/{remote}/main"), main);
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
