//! Random transactions on several branches, with racing commits, forks and
//! merges, against a model of maps: every branch must always hold exactly
//! the model's state for its head.
//!
//! The store's default merge function is `Theirs`, so every merge succeeds
//! and the model's rule per key is: both sides equal -> that; one side
//! unchanged since base -> the other; else theirs.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use kvgit::merge::Theirs;
use kvgit::{CommitId, Db};
use proptest::prelude::*;

type State = BTreeMap<Vec<u8>, Vec<u8>>;
type Edits = Vec<(u8, Option<u8>)>;

#[derive(Clone, Debug)]
enum Op {
    Tx(usize, Edits),
    /// Two transactions from the same head; the second commits last and
    /// merges with the first.
    Race(usize, Edits, Edits),
    Fork(usize),
    Merge(usize, usize),
}

fn edits() -> impl Strategy<Value = Edits> {
    proptest::collection::vec((0u8..8, proptest::option::weighted(0.75, 0u8..4)), 1..5)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..4, edits()).prop_map(|(b, e)| Op::Tx(b, e)),
        2 => (0usize..4, edits(), edits()).prop_map(|(b, x, y)| Op::Race(b, x, y)),
        1 => (0usize..4).prop_map(Op::Fork),
        2 => (0usize..4, 0usize..4).prop_map(|(a, b)| Op::Merge(a, b)),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key{k}").into_bytes()
}

fn apply(state: &State, edits: &Edits) -> State {
    let mut s = state.clone();
    for (k, v) in edits {
        match v {
            Some(v) => s.insert(key(*k), vec![*v]),
            None => s.remove(&key(*k)),
        };
    }
    s
}

fn merge3(base: &State, ours: &State, theirs: &State) -> State {
    let mut keys: Vec<&Vec<u8>> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = State::new();
    for k in keys {
        let (b, o, t) = (base.get(k), ours.get(k), theirs.get(k));
        let v = if o == t || t == b {
            o
        } else {
            t // theirs changed: theirs wins whether or not ours did
        };
        if let Some(v) = v {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn stage(tx: &mut kvgit::Transaction, edits: &Edits) {
    for (k, v) in edits {
        match v {
            Some(v) => tx.put(key(*k), [*v]),
            None => tx.delete(key(*k)),
        };
    }
}

fn check(db: &Db, names: &[String], states: &HashMap<CommitId, State>) {
    for name in names {
        let branch = db.get_branch(name).unwrap().unwrap();
        let head = branch.head().unwrap();
        let actual: State = branch.range(..).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(&actual, &states[&head], "branch {name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn branches_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let db = Db::memory();
        db.merge_fns().set_default(Theirs);
        let main = db.branch("main").unwrap();
        let mut names = vec!["main".to_string()];
        let mut states: HashMap<CommitId, State> = HashMap::new();
        states.insert(main.head().unwrap(), State::new());
        for op in ops {
            match op {
                Op::Tx(b, e) => {
                    let branch = db.get_branch(&names[b % names.len()]).unwrap().unwrap();
                    let before = states[&branch.head().unwrap()].clone();
                    let mut tx = branch.transaction().unwrap();
                    stage(&mut tx, &e);
                    let head = tx.commit().unwrap().commit.unwrap();
                    states.insert(head, apply(&before, &e));
                }
                Op::Race(b, x, y) => {
                    let branch = db.get_branch(&names[b % names.len()]).unwrap().unwrap();
                    let snapshot = states[&branch.head().unwrap()].clone();
                    let mut first = branch.transaction().unwrap();
                    let mut second = branch.transaction().unwrap();
                    stage(&mut first, &x);
                    stage(&mut second, &y);
                    let h1 = first.commit().unwrap().commit.unwrap();
                    let after_first = apply(&snapshot, &x);
                    states.insert(h1, after_first.clone());
                    // The second merges: base = its snapshot, ours = its
                    // writes, theirs = the first's commit.
                    let h2 = second.commit().unwrap().commit.unwrap();
                    let expected = merge3(&snapshot, &apply(&snapshot, &y), &after_first);
                    states.insert(h2, expected);
                }
                Op::Fork(b) => {
                    if names.len() < 4 {
                        let from = db.get_branch(&names[b % names.len()]).unwrap().unwrap();
                        let name = format!("b{}", names.len());
                        from.fork(&name).unwrap();
                        names.push(name);
                    }
                }
                Op::Merge(a, b) => {
                    let from = db.get_branch(&names[a % names.len()]).unwrap().unwrap();
                    let into = db.get_branch(&names[b % names.len()]).unwrap().unwrap();
                    let (ours, theirs) = (into.head().unwrap(), from.head().unwrap());
                    let base = kvgit_merge::merge_base(kvgit::advanced::repo(&db), &ours, &theirs).unwrap();
                    let base_state = base.map(|b| states[&b].clone()).unwrap_or_default();
                    let expected = merge3(&base_state, &states[&ours], &states[&theirs]);
                    let out = into.merge_from(&from).unwrap();
                    states.insert(out.head, expected);
                }
            }
            check(&db, &names, &states);
        }
    }
}
