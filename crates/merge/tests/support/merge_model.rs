//! The three-way merge against a model, driven by raw bytes.
//!
//! Shared by the fuzz target `fuzz/fuzz_targets/merge_model.rs` and the
//! test `crates/merge/tests/merge_model.rs` (which replays the kept inputs
//! in `fuzz/regressions/merge_model/` and random ones through proptest),
//! so a fuzz finding replays as a plain test byte for byte.
//!
//! [`check`] reads from the bytes (zeros once they run out): a registry
//! (a default, one entry per key group, a few exact-key entries; each a
//! built-in merge function, a side policy, a function that declines, or
//! nothing), a base map, and ours' and theirs' edits of it (theirs can copy
//! ours' edits, so equal changes happen). It merges the trees and checks
//! the result against a model of the documented rules: the merged contents,
//! the strategy, the `resolved` and `from_theirs` lists, or exactly the
//! conflicts (keys, values, whether a reason is given); and history
//! independence: the merged root id is the id of a tree built from scratch
//! from the model's map, and trees built by `apply` and by `build_tree`
//! agree.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use kvgit_core::{Repo, Tree};
use kvgit_merge::{
    merge_trees, tree, Counter, Error, LastWriterWins, Max, Min, Ours, Policy, Registry,
    Resolution, Strategy, Theirs,
};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;
type Edits = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// The bytes, read front to back; zeros once they run out.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
}

/// What governs a key in the registry (`None` in an `Option<Kind>`: no
/// entry, so a key changed differently on both sides is a conflict).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    LastWriterWins,
    Theirs,
    Ours,
    Max,
    Min,
    /// A function that always declines (`Resolution::Conflict(None)`).
    Declines,
    /// `Policy::Ours`: the key keeps ours' state, whatever changed.
    PolicyOurs,
    /// `Policy::Theirs`: the key takes theirs' state, whatever changed.
    PolicyTheirs,
}

const KINDS: [Kind; 9] = [
    Kind::Counter,
    Kind::LastWriterWins,
    Kind::Theirs,
    Kind::Ours,
    Kind::Max,
    Kind::Min,
    Kind::Declines,
    Kind::PolicyOurs,
    Kind::PolicyTheirs,
];

/// A kind, or no entry (a quarter of the codes).
fn kind(code: u8) -> Option<Kind> {
    KINDS.get(usize::from(code % 12)).copied()
}

fn policy(kind: Kind) -> Policy {
    match kind {
        Kind::Counter => Policy::func(Counter),
        Kind::LastWriterWins => Policy::func(LastWriterWins),
        Kind::Theirs => Policy::func(Theirs),
        Kind::Ours => Policy::func(Ours),
        Kind::Max => Policy::func(Max),
        Kind::Min => Policy::func(Min),
        Kind::Declines => Policy::func(
            |_: &[u8], _: Option<&[u8]>, _: Option<&[u8]>, _: Option<&[u8]>| {
                Resolution::Conflict(None)
            },
        ),
        Kind::PolicyOurs => Policy::Ours,
        Kind::PolicyTheirs => Policy::Theirs,
    }
}

const GROUPS: u8 = 6;
const PER_GROUP: u8 = 6;

/// One of 37 keys: `a/0` .. `f/5` in six groups, and `z` in none.
fn key(code: u8) -> Vec<u8> {
    let i = code % (GROUPS * PER_GROUP + 1);
    if i == GROUPS * PER_GROUP {
        return b"z".to_vec();
    }
    format!("{}/{}", char::from(b'a' + i / PER_GROUP), i % PER_GROUP).into_bytes()
}

fn group_prefix(g: u8) -> String {
    format!("{}/", char::from(b'a' + g))
}

/// A value: small integers (often equal on both sides), words, blobs over
/// the inline limit, integers at the edges of `i64` and in odd spellings,
/// or bytes taken from the input.
fn value(bytes: &mut Bytes) -> Vec<u8> {
    let code = bytes.byte();
    match code {
        0..=99 => (i64::from(code) - 50).to_string().into_bytes(),
        100..=199 => format!("w{}", code % 10).into_bytes(),
        200..=239 => vec![code; 250 + usize::from(code - 200) * 2],
        240..=247 => {
            let odd = [
                "9223372036854775807",
                "-9223372036854775808",
                "9223372036854775806",
                " 7",
                "07",
                "+3",
                "",
                "7\n",
            ];
            odd[usize::from(code - 240)].as_bytes().to_vec()
        }
        _ => {
            let len = bytes.byte() % 8;
            (0..len).map(|_| bytes.byte()).collect()
        }
    }
}

fn edit(bytes: &mut Bytes) -> (Vec<u8>, Option<Vec<u8>>) {
    let k = key(bytes.byte());
    if bytes.byte() % 6 == 0 {
        (k, None)
    } else {
        (k, Some(value(bytes)))
    }
}

fn apply_model(base: &Map, edits: &Edits) -> Map {
    let mut m = base.clone();
    for (k, v) in edits {
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
    m
}

/// The model registry: exact key, then group prefix, then default.
struct ModelRegistry {
    default: Option<Kind>,
    groups: Vec<Option<Kind>>,
    exact: BTreeMap<Vec<u8>, Kind>,
}

impl ModelRegistry {
    fn lookup(&self, key: &[u8]) -> Option<Kind> {
        if let Some(k) = self.exact.get(key) {
            return Some(*k);
        }
        if key.len() > 2 && key[1] == b'/' {
            if let Some(Some(k)) = self.groups.get(usize::from(key[0] - b'a')) {
                return Some(*k);
            }
        }
        self.default
    }
}

/// The documented integer encoding: decimal `i64`, optional sign,
/// surrounding ASCII whitespace ignored.
fn integer(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.trim_ascii().parse().ok()
}

/// Numbers when both are integers (ties broken by bytes), else bytes.
fn compare(a: &[u8], b: &[u8]) -> Ordering {
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

/// What the model says a merge function decides: `Ok(state)` or
/// `Err(())` for a conflict.
type Decision = Result<Option<Vec<u8>>, ()>;

fn model_fn(kind: Kind, b: Option<&[u8]>, o: Option<&[u8]>, t: Option<&[u8]>) -> Decision {
    let side = |v: Option<&[u8]>| Ok(v.map(<[u8]>::to_vec));
    match kind {
        Kind::Counter => {
            let n = |v: Option<&[u8]>| match v {
                None => Some(0i128),
                Some(v) => integer(v).map(i128::from),
            };
            let (Some(b), Some(o), Some(t)) = (n(b), n(o), n(t)) else {
                return Err(());
            };
            match i64::try_from(o + t - b) {
                Ok(sum) => Ok(Some(sum.to_string().into_bytes())),
                Err(_) => Err(()),
            }
        }
        Kind::LastWriterWins | Kind::Theirs | Kind::PolicyTheirs => side(t),
        Kind::Ours | Kind::PolicyOurs => side(o),
        Kind::Max | Kind::Min => {
            let want = if kind == Kind::Max {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            match (o, t) {
                (Some(x), Some(y)) => side(Some(if compare(x, y) == want { x } else { y })),
                (Some(v), None) | (None, Some(v)) => side(Some(v)),
                (None, None) => Ok(None),
            }
        }
        Kind::Declines => Err(()),
    }
}

/// A conflict as the model predicts it: key, base, ours, theirs, and
/// whether a reason is given (only keys no entry covers have none).
type ModelConflict = (
    Vec<u8>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    bool,
);

struct Expected {
    merged: Map,
    resolved: Vec<Vec<u8>>,
    from_theirs: Vec<Vec<u8>>,
    conflicts: Vec<ModelConflict>,
}

/// The merge of `o` and `t` against `b` by the documented rules.
fn model_merge(reg: &ModelRegistry, b: &Map, o: &Map, t: &Map) -> Expected {
    let mut exp = Expected {
        merged: o.clone(),
        resolved: Vec::new(),
        from_theirs: Vec::new(),
        conflicts: Vec::new(),
    };
    let keys: BTreeSet<&Vec<u8>> = b.keys().chain(o.keys()).chain(t.keys()).collect();
    for k in keys {
        let (bv, ov, tv) = (b.get(k), o.get(k), t.get(k));
        let (o_changed, t_changed) = (ov != bv, tv != bv);
        let kind = reg.lookup(k);
        // Sets the merged state of `k` (which differs from ours').
        let set = |exp: &mut Expected, state: Option<&Vec<u8>>, theirs: bool| {
            if theirs {
                exp.from_theirs.push(k.clone());
            }
            match state {
                Some(v) => exp.merged.insert(k.clone(), v.clone()),
                None => exp.merged.remove(k),
            };
        };
        let call = |exp: &mut Expected, kind: Kind| {
            let d = model_fn(
                kind,
                bv.map(Vec::as_slice),
                ov.map(Vec::as_slice),
                tv.map(Vec::as_slice),
            );
            match d {
                Ok(state) => {
                    exp.resolved.push(k.clone());
                    if state.as_ref() != ov {
                        let theirs = state.as_ref() == tv;
                        set(exp, state.as_ref(), theirs);
                    }
                }
                Err(()) => {
                    exp.conflicts
                        .push((k.clone(), bv.cloned(), ov.cloned(), tv.cloned(), true))
                }
            }
        };
        match (o_changed, t_changed) {
            (false, false) => {}
            (true, false) => {
                if kind == Some(Kind::PolicyTheirs) {
                    exp.resolved.push(k.clone());
                    set(&mut exp, bv, true);
                }
            }
            (false, true) => {
                if kind == Some(Kind::PolicyOurs) {
                    exp.resolved.push(k.clone());
                } else {
                    set(&mut exp, tv, true);
                }
            }
            (true, true) if ov == tv => {
                // Taken once, unless the function wants equal changes.
                if kind == Some(Kind::Counter) {
                    call(&mut exp, Kind::Counter);
                }
            }
            (true, true) => match kind {
                None => {
                    exp.conflicts
                        .push((k.clone(), bv.cloned(), ov.cloned(), tv.cloned(), false))
                }
                Some(Kind::PolicyOurs) => exp.resolved.push(k.clone()),
                Some(Kind::PolicyTheirs) => {
                    exp.resolved.push(k.clone());
                    set(&mut exp, tv, true);
                }
                Some(kind) => call(&mut exp, kind),
            },
        }
    }
    exp
}

fn contents(repo: &Repo, tree: &Tree) -> Map {
    repo.range(tree, ..)
        .collect::<Result<_, _>>()
        .expect("read the merged tree")
}

/// How a case went (agreeing with the model), so tests can see that the
/// inputs reach every kind of outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Summary {
    /// The merge succeeded.
    Merged {
        /// Its strategy.
        strategy: Strategy,
        /// How many keys a registry entry decided.
        resolved: usize,
        /// How many keys came from theirs.
        from_theirs: usize,
    },
    /// The merge failed with conflicts.
    Conflicts {
        /// How many with a reason (a function declined or failed).
        with_reason: usize,
        /// How many without (no entry covers the key).
        without: usize,
    },
}

/// Runs one case from `data`; panics if the merge and the model disagree.
pub fn check(data: &[u8]) -> Summary {
    let mut bytes = Bytes { data, pos: 0 };
    let registry = Registry::new();
    let mut reg = ModelRegistry {
        default: kind(bytes.byte()),
        groups: Vec::new(),
        exact: BTreeMap::new(),
    };
    if let Some(k) = reg.default {
        registry.set_default_policy(Some(policy(k)));
    }
    for g in 0..GROUPS {
        let k = kind(bytes.byte());
        if let Some(k) = k {
            registry.set_prefix_policy(group_prefix(g), policy(k));
        }
        reg.groups.push(k);
    }
    for _ in 0..bytes.byte() % 4 {
        let key = key(bytes.byte());
        if let Some(k) = kind(bytes.byte()) {
            registry.set_policy(&key, policy(k));
            reg.exact.insert(key, k);
        }
    }
    let build_mode = bytes.byte();

    let base: Map = (0..bytes.byte() % 40)
        .map(|_| (key(bytes.byte()), value(&mut bytes)))
        .collect();
    let ours_edits: Edits = (0..bytes.byte() % 24).map(|_| edit(&mut bytes)).collect();
    let mut theirs_edits = Edits::new();
    for _ in 0..bytes.byte() % 24 {
        let pick = bytes.byte();
        if pick % 3 == 0 && !ours_edits.is_empty() {
            // The same edit as ours: an equal change, unless a later edit
            // of either side changes the key again.
            theirs_edits.push(ours_edits[usize::from(pick / 3) % ours_edits.len()].clone());
        } else {
            theirs_edits.push(edit(&mut bytes));
        }
    }

    let repo = Repo::memory();
    let b = repo.build_tree(base.clone()).expect("build base");
    let (mo, mt) = (
        apply_model(&base, &ours_edits),
        apply_model(&base, &theirs_edits),
    );
    let applied = |edits: &Edits| repo.apply(&b, edits.clone()).expect("apply");
    let built = |m: &Map| repo.build_tree(m.clone()).expect("build");
    let (o, t) = (applied(&ours_edits), applied(&theirs_edits));
    assert_eq!(o, built(&mo), "history independence: ours");
    assert_eq!(t, built(&mt), "history independence: theirs");
    let (o, t) = match build_mode % 4 {
        0 => (o, t),
        1 => (built(&mo), t),
        2 => (o, built(&mt)),
        _ => (built(&mo), built(&mt)),
    };

    let exp = model_merge(&reg, &base, &mo, &mt);
    let result = merge_trees(&repo, &b, &o, &t, &registry, &tree::Options::default());
    match result {
        Ok(out) => {
            assert!(
                exp.conflicts.is_empty(),
                "merged, but the model predicts conflicts on {:?}",
                exp.conflicts
            );
            let got = contents(&repo, &out.tree);
            assert!(got == exp.merged, "merged contents differ from the model");
            assert_eq!(
                out.tree.root(),
                built(&exp.merged).root(),
                "history independence: the merged root is not the model's"
            );
            let strategy = if exp.merged == mo {
                Strategy::NoOp
            } else if exp.merged == mt {
                Strategy::FastForward
            } else {
                Strategy::ThreeWay
            };
            assert_eq!(out.strategy, strategy, "strategy");
            assert_eq!(out.resolved, exp.resolved, "resolved keys");
            assert_eq!(out.from_theirs, exp.from_theirs, "keys from theirs");
            Summary::Merged {
                strategy: out.strategy,
                resolved: out.resolved.len(),
                from_theirs: out.from_theirs.len(),
            }
        }
        Err(Error::Conflicts(conflicts)) => {
            let got: Vec<ModelConflict> = conflicts
                .into_iter()
                .map(|c| (c.key, c.base, c.ours, c.theirs, c.reason.is_some()))
                .collect();
            assert_eq!(got, exp.conflicts, "conflicts");
            let with_reason = got.iter().filter(|c| c.4).count();
            Summary::Conflicts {
                with_reason,
                without: got.len() - with_reason,
            }
        }
        Err(e) => panic!("merge failed: {e}"),
    }
}
