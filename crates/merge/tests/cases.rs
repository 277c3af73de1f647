//! Table-driven merge cases. Each case reads
//!
//! ```text
//! fns: KEY=FN PREFIX*=FN *=FN | base: k=v .. | ours: k=v -k .. | theirs: .. => EXPECTED
//! ```
//!
//! `base` lists the base tree's entries; `ours` and `theirs` list edits to
//! base (`k=v` puts, `-k` deletes). Values may use `\n` and `\s` (space).
//! `fns` (optional) registers merge functions by exact key, by prefix
//! (`PREFIX*`) or as the default (`*`). EXPECTED is the whole merged tree,
//! or `conflict k1 k2 ..` (exactly the conflicting keys), followed by
//! optional `; resolved: ..`, `; from: ..` (keys carried from theirs) and
//! `; strategy: noop|ff|3way` checks.
//!
//! Every successful case also checks history independence: the merged
//! tree has exactly the root id of a bulk build of the expected entries.

use std::collections::BTreeMap;

use kvgit_core::Repo;
use kvgit_merge::{
    merge_trees, tree, Counter, Error, LastWriterWins, Max, MergeFn, Min, Ours, Policy, Registry,
    Resolution, SetUnion, Strategy, TextMerge, Theirs,
};

mod common;

fn unescape(s: &str) -> Vec<u8> {
    s.replace("\\n", "\n").replace("\\s", " ").into_bytes()
}

fn entries(s: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    s.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            (k.as_bytes().to_vec(), unescape(v))
        })
        .collect()
}

fn edits(s: &str) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    s.split_whitespace()
        .map(|e| match e.strip_prefix('-') {
            Some(k) => (k.as_bytes().to_vec(), None),
            None => {
                let (k, v) = e.split_once('=').expect("k=v or -k");
                (k.as_bytes().to_vec(), Some(unescape(v)))
            }
        })
        .collect()
}

fn keys(s: &str) -> Vec<Vec<u8>> {
    s.split_whitespace()
        .map(|k| k.as_bytes().to_vec())
        .collect()
}

fn policy(name: &str) -> Policy {
    fn f(m: impl MergeFn + 'static) -> Policy {
        Policy::func(m)
    }
    match name {
        "counter" => f(Counter),
        "lww" => f(LastWriterWins),
        "ours" => f(Ours),
        "theirs" => f(Theirs),
        "max" => f(Max),
        "min" => f(Min),
        "set" => f(SetUnion),
        "text" => f(TextMerge),
        "@ours" => Policy::Ours,
        "@theirs" => Policy::Theirs,
        "delete" => {
            f(|_: &[u8], _: Option<&[u8]>, _: Option<&[u8]>, _: Option<&[u8]>| Resolution::Delete)
        }
        "decline" => f(
            |_: &[u8], _: Option<&[u8]>, _: Option<&[u8]>, _: Option<&[u8]>| {
                Resolution::Conflict(None)
            },
        ),
        "panic" => f(
            |_: &[u8], _: Option<&[u8]>, _: Option<&[u8]>, _: Option<&[u8]>| -> Resolution {
                panic!("merge function blew up")
            },
        ),
        // Tags the result with the function's name, to see which one ran.
        tag => {
            let tag = tag.to_string();
            f(
                move |_: &[u8], _: Option<&[u8]>, _: Option<&[u8]>, _: Option<&[u8]>| {
                    Resolution::Value(tag.clone().into_bytes())
                },
            )
        }
    }
}

fn registry(s: &str) -> Registry {
    let r = Registry::new();
    for spec in s.split_whitespace() {
        let (target, name) = spec.split_once('=').expect("target=fn");
        if target == "*" {
            r.set_default_policy(Some(policy(name)));
        } else if let Some(prefix) = target.strip_suffix('*') {
            r.set_prefix_policy(prefix, policy(name));
        } else {
            r.set_policy(target, policy(name));
        }
    }
    r
}

#[track_caller]
fn check(case: &str) {
    let (input, expected) = case.split_once("=>").expect("a case has =>");
    let mut sections: BTreeMap<&str, &str> = BTreeMap::new();
    for section in input.split('|') {
        let (name, body) = section.split_once(':').expect("name: body");
        sections.insert(name.trim(), body);
    }
    let get = |name: &str| sections.get(name).copied().unwrap_or("");
    let repo = Repo::memory();
    let base_map = entries(get("base"));
    let base = repo.build_tree(base_map.clone()).expect("test helper");
    let ours = repo.apply(&base, edits(get("ours"))).expect("test helper");
    let theirs = repo
        .apply(&base, edits(get("theirs")))
        .expect("test helper");
    let registry = registry(get("fns"));

    let mut parts = expected.split(';');
    let result = parts.next().unwrap_or("").trim();
    let merged = merge_trees(
        &repo,
        &base,
        &ours,
        &theirs,
        &registry,
        &tree::Options::default(),
    );
    let outcome = match (result.strip_prefix("conflict"), merged) {
        (Some(want), Err(Error::Conflicts(conflicts))) => {
            let got: Vec<Vec<u8>> = conflicts.iter().map(|c| c.key.clone()).collect();
            assert_eq!(got, keys(want), "conflicting keys of {case}");
            return;
        }
        (Some(_), other) => panic!("{case}: expected conflicts, got {other:?}"),
        (None, Err(e)) => panic!("{case}: {e}"),
        (None, Ok(outcome)) => outcome,
    };
    let want = entries(result);
    let got: BTreeMap<_, _> = common::contents(&repo, &outcome.tree).into_iter().collect();
    let show = |m: &BTreeMap<Vec<u8>, Vec<u8>>| {
        m.iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(show(&got), show(&want), "merged tree of {case}");
    let bulk = repo.build_tree(want).expect("test helper");
    assert_eq!(
        outcome.tree.root(),
        bulk.root(),
        "history independence: {case}"
    );

    for part in parts {
        let (name, body) = part.split_once(':').expect("name: body");
        match name.trim() {
            "resolved" => assert_eq!(outcome.resolved, keys(body), "resolved keys of {case}"),
            "from" => assert_eq!(
                outcome.from_theirs,
                keys(body),
                "keys from theirs of {case}"
            ),
            "strategy" => {
                let want = match body.trim() {
                    "noop" => Strategy::NoOp,
                    "ff" => Strategy::FastForward,
                    "3way" => Strategy::ThreeWay,
                    other => panic!("unknown strategy {other}"),
                };
                assert_eq!(outcome.strategy, want, "strategy of {case}");
            }
            other => panic!("unknown check {other}"),
        }
    }
}

#[test]
fn one_sided_changes_are_taken() {
    check(
        "base: a=1 b=2 | ours: a=3 | theirs: b=4 => a=3 b=4 ; from: b ; resolved: ; strategy: 3way",
    );
    // add, modify and delete on ours only
    check("base: a=1 b=2 | ours: c=5 | theirs: => a=1 b=2 c=5 ; strategy: noop ; from:");
    check("base: a=1 b=2 | ours: -a | theirs: => b=2 ; strategy: noop");
    check("base: a=1 b=2 | ours: b=9 | theirs: => a=1 b=9 ; strategy: noop");
    // ... and on theirs only
    check("base: a=1 b=2 | ours: | theirs: c=5 => a=1 b=2 c=5 ; strategy: ff ; from: c");
    check("base: a=1 b=2 | ours: | theirs: -a => b=2 ; strategy: ff ; from: a");
    check("base: a=1 b=2 | ours: | theirs: b=9 a=0 => a=0 b=9 ; strategy: ff ; from: a b");
    // both sides, different keys, every kind of change
    check("base: a=1 b=2 c=3 d=4 | ours: -a c=30 e=5 | theirs: -b d=40 f=6 => c=30 d=40 e=5 f=6 ; from: b d f");
}

#[test]
fn same_change_on_both_sides_is_taken_once() {
    check("base: a=1 | ours: a=2 | theirs: a=2 => a=2 ; strategy: noop ; from:");
    check("base: a=1 b=2 | ours: -a | theirs: -a => b=2 ; strategy: noop");
    check("base: a=1 | ours: x=1 | theirs: x=1 => a=1 x=1 ; strategy: noop");
    check(
        "base: a=1 | ours: x=1 y=2 | theirs: x=1 z=3 => a=1 x=1 y=2 z=3 ; from: z ; strategy: 3way",
    );
}

#[test]
fn different_changes_to_one_key_conflict_without_a_function() {
    check("base: a=1 | ours: a=2 | theirs: a=3 => conflict a");
    check("base: a=1 | ours: -a | theirs: a=3 => conflict a");
    check("base: a=1 | ours: a=2 | theirs: -a => conflict a");
    check("base: | ours: x=1 | theirs: x=2 => conflict x");
    // Every conflicting key is reported, not only the first.
    check("base: a=1 b=1 c=1 d=1 | ours: a=2 b=2 -c d=5 | theirs: a=3 b=3 c=3 d=5 e=1 => conflict a b c");
}

#[test]
fn merge_functions_settle_keys_changed_on_both_sides() {
    check("fns: hits=counter | base: hits=100 | ours: hits=115 | theirs: hits=120 => hits=135 ; resolved: hits ; from: ; strategy: 3way");
    check("fns: hits=counter | base: | ours: hits=3 | theirs: hits=5 => hits=8");
    // Two increments that reach the same value are still two increments,
    // even when the trees are equal.
    check("fns: hits=counter | base: hits=100 | ours: hits=101 | theirs: hits=101 => hits=102 ; resolved: hits ; strategy: 3way");
    check("fns: hits=counter | base: hits=100 a=1 | ours: hits=101 a=2 | theirs: hits=101 => a=2 hits=102 ; resolved: hits");
    // Other functions are not consulted for identical changes.
    check("fns: *=panic | base: k=1 | ours: k=2 | theirs: k=2 => k=2 ; resolved: ; strategy: noop");
    check("fns: hits=counter | base: hits=100 | ours: hits=x | theirs: hits=120 => conflict hits");
    check("fns: k=lww | base: k=1 | ours: k=2 | theirs: k=3 => k=3 ; resolved: k ; from: k ; strategy: ff");
    check("fns: k=lww | base: k=1 | ours: k=2 | theirs: -k => ; resolved: k ; from: k");
    check("fns: k=ours | base: k=1 | ours: k=2 | theirs: k=3 => k=2 ; resolved: k ; from: ; strategy: noop");
    check("fns: k=theirs | base: k=1 | ours: -k | theirs: k=3 => k=3 ; from: k");
    check("fns: k=max | base: k=1 | ours: k=9 | theirs: k=10 => k=10");
    check("fns: k=min | base: k=1 | ours: k=9 | theirs: k=10 => k=9");
    check("fns: k=set | base: k=a\\nb | ours: k=a\\nb\\nc | theirs: k=b\\nd => k=b\\nc\\nd");
    check("fns: k=delete | base: k=1 | ours: k=2 | theirs: k=3 => ; resolved: k ; from:");
    check("fns: k=decline | base: k=1 | ours: k=2 | theirs: k=3 => conflict k");
    // A function only sees keys both sides changed differently.
    check(
        "fns: *=panic | base: a=1 b=1 | ours: a=2 c=1 | theirs: b=2 c=1 => a=2 b=2 c=1 ; resolved:",
    );
}

#[test]
fn registry_precedence_exact_then_longest_prefix_then_default() {
    let edits = "base: user/a=0 user/ab=0 user/abc=0 x=0 | ours: user/a=1 user/ab=1 user/abc=1 x=1 | theirs: user/a=2 user/ab=2 user/abc=2 x=2";
    check(&format!(
        "fns: user/abc=exact user/*=short user/ab*=long *=default | {edits} => user/a=short user/ab=long user/abc=exact x=default ; resolved: user/a user/ab user/abc x"
    ));
    // Without a default, uncovered keys conflict.
    check(&format!("fns: user/*=short | {edits} => conflict x"));
    // An exact entry beats a prefix entry of any length, and a side
    // policy competes in the same order as a function.
    check(&format!(
        "fns: user/*=@theirs user/abc=exact *=@ours | {edits} => user/a=2 user/ab=2 user/abc=exact x=1"
    ));
}

#[test]
fn side_policies_decide_every_key_under_them() {
    // Always ours: theirs' one-sided changes under the prefix are not
    // taken, elsewhere they are.
    check("fns: local/*=@ours | base: local/a=1 local/b=1 g=1 | ours: local/a=2 | theirs: local/a=3 local/b=3 local/c=3 g=3 => local/a=2 local/b=1 g=3 ; resolved: local/a local/b local/c ; from: g");
    // ... even when ours changed nothing at all (no fast-forward then).
    check("fns: local/*=@ours | base: local/a=1 g=1 | ours: | theirs: local/a=3 g=3 => local/a=1 g=3 ; strategy: 3way");
    check("fns: local/*=@ours | base: local/a=1 g=1 | ours: | theirs: g=3 => local/a=1 g=3 ; strategy: ff");
    // Always theirs: ours' changes under the prefix are reverted.
    check("fns: cache/*=@theirs | base: cache/a=1 cache/b=1 g=1 | ours: cache/a=2 cache/b=2 cache/n=2 g=2 | theirs: cache/a=3 => cache/a=3 cache/b=1 g=2 ; resolved: cache/a cache/b cache/n ; from: cache/a cache/b cache/n");
    check("fns: cache/*=@theirs | base: cache/a=1 g=1 | ours: cache/a=2 | theirs: => cache/a=1 g=1 ; strategy: ff");
    check("fns: cache/*=@theirs | base: cache/a=1 g=1 | ours: cache/a=2 g=2 | theirs: => cache/a=1 g=2 ; strategy: 3way");
}

#[test]
fn a_panicking_merge_function_is_a_conflict() {
    check("fns: k=panic | base: k=1 j=1 | ours: k=2 j=2 | theirs: k=3 j=3 => conflict j k");
    let repo = Repo::memory();
    let put = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
    let base = repo.build_tree([(b"k".to_vec(), b"1".to_vec())]).unwrap();
    let ours = repo.apply(&base, [put("k", "2")]).unwrap();
    let theirs = repo.apply(&base, [put("k", "3")]).unwrap();
    let registry = Registry::new();
    registry.set_policy("k", policy("panic"));
    let err = merge_trees(
        &repo,
        &base,
        &ours,
        &theirs,
        &registry,
        &tree::Options::default(),
    )
    .unwrap_err();
    let conflicts = err.conflicts().expect("conflicts");
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(
        (c.base.as_deref(), c.ours.as_deref(), c.theirs.as_deref()),
        (Some(&b"1"[..]), Some(&b"2"[..]), Some(&b"3"[..]))
    );
    assert_eq!(
        c.reason.as_deref(),
        Some("merge function panicked: merge function blew up")
    );
    let shown = err.to_string();
    assert!(shown.contains("merge conflict on 1 key:"), "{shown}");
    assert!(
        shown.contains("\"k\": base \"1\", ours \"2\", theirs \"3\" (merge function panicked"),
        "{shown}"
    );
}

#[test]
fn conflict_report_lists_values_and_reasons() {
    let repo = Repo::memory();
    let put = |k: &str, v: Option<&str>| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()));
    let base = repo
        .build_tree([
            (b"a".to_vec(), b"1".to_vec()),
            (b"n".to_vec(), b"1".to_vec()),
        ])
        .unwrap();
    let ours = repo
        .apply(
            &base,
            [
                put("a", Some("2")),
                put("n", Some("x")),
                put("z", Some("\u{1}")),
            ],
        )
        .unwrap();
    let theirs = repo
        .apply(
            &base,
            [put("a", None), put("n", Some("2")), put("z", Some("q"))],
        )
        .unwrap();
    let registry = Registry::new();
    registry.set("n", Counter);
    let err = merge_trees(
        &repo,
        &base,
        &ours,
        &theirs,
        &registry,
        &tree::Options::default(),
    )
    .unwrap_err();
    let conflicts = err.conflicts().expect("conflicts");
    assert_eq!(conflicts.len(), 3);
    assert_eq!(conflicts[0].theirs, None);
    assert_eq!(conflicts[0].reason, None);
    assert_eq!(
        conflicts[1].reason.as_deref(),
        Some("counter: ours value \"x\" is not a decimal integer")
    );
    assert_eq!(conflicts[2].base, None);
    let shown = err.to_string();
    assert_eq!(
        shown,
        "merge conflict on 3 keys:\n  \"a\": base \"1\", ours \"2\", theirs (absent) (no merge function)\n  \
         \"n\": base \"1\", ours \"x\", theirs \"2\" (counter: ours value \"x\" is not a decimal integer)\n  \
         \"z\": base (absent), ours \"\\x01\", theirs \"q\" (no merge function)"
    );
}

#[test]
fn text_merge_combines_hunks() {
    let base = "base: doc=one\\ntwo\\nthree\\nfour\\nfive\\n";
    check(&format!(
        "fns: doc=text | {base} | ours: doc=ONE\\ntwo\\nthree\\nfour\\nfive\\n | theirs: doc=one\\ntwo\\nthree\\nfour\\nFIVE\\nsix\\n => doc=ONE\\ntwo\\nthree\\nfour\\nFIVE\\nsix\\n"
    ));
    // The same hunk on both sides, plus one of each: taken once.
    check(&format!(
        "fns: doc=text | {base} | ours: doc=ONE\\ntwo\\nthree\\nfour\\nFIVE\\n | theirs: doc=one\\ntwo\\nTHREE\\nfour\\nFIVE\\n => doc=ONE\\ntwo\\nTHREE\\nfour\\nFIVE\\n"
    ));
    check(&format!(
        "fns: doc=text | {base} | ours: doc=one\\ntwo\\n3\\nfour\\nfive\\n | theirs: doc=one\\ntwo\\nthree!\\nfour\\nfive\\n => conflict doc"
    ));
}

#[test]
fn large_values_merge_through_blobs() {
    // Values over the inline limit are blobs: taken from theirs without
    // being read, and written when a merge function returns one.
    let big = |c: char, n: usize| c.to_string().repeat(n);
    let text_base = format!(
        "{}\\n{}\\n{}\\n",
        big('a', 300),
        big('b', 300),
        big('c', 300)
    );
    let text_ours = format!(
        "{}\\n{}\\n{}\\n",
        big('A', 300),
        big('b', 300),
        big('c', 300)
    );
    let text_theirs = format!(
        "{}\\n{}\\n{}\\n",
        big('a', 300),
        big('b', 300),
        big('C', 300)
    );
    let text_merged = format!(
        "{}\\n{}\\n{}\\n",
        big('A', 300),
        big('b', 300),
        big('C', 300)
    );
    check(&format!(
        "fns: doc=text | base: doc={text_base} blob={} | ours: doc={text_ours} | theirs: doc={text_theirs} blob={} => blob={} doc={text_merged} ; from: blob",
        big('x', 400),
        big('y', 500),
        big('y', 500),
    ));
}

#[test]
#[should_panic(expected = "merged tree of")]
fn check_catches_a_wrong_expectation() {
    check("base: a=1 | ours: a=2 | theirs: => a=1");
}

#[test]
#[should_panic(expected = "conflicting keys of")]
fn check_catches_a_wrong_conflict_list() {
    check("base: a=1 b=1 | ours: a=2 b=2 | theirs: a=3 b=3 => conflict a");
}
