//! End-to-end tests that also reach into the store through the library:
//! ambiguous commit prefixes, corrupt and missing objects, a store locked
//! by another process, and the export / import round trip.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::Store;
use kvgit::advanced::ObjectId;
use kvgit::advanced::{Commit, CommitSpec, SledBackend};
use kvgit::Db;
use kvgit::SledOptions;

/// The root tree id of `branch`'s head.
fn root_of(store: &Store, branch: &str) -> ObjectId {
    let db = Db::open(&store.path).expect("open");
    let snapshot = db
        .get_branch(branch)
        .expect("read refs")
        .expect("the branch")
        .snapshot()
        .expect("snapshot");
    kvgit::advanced::tree(&snapshot).root()
}

#[test]
fn an_ambiguous_prefix_is_an_error_and_a_longer_one_resolves() {
    let s = Store::init();
    let (prefix, ids) = {
        let db = Db::open(&s.path).expect("open");
        let repo = kvgit::advanced::repo(&db);
        let tree = repo.empty_tree().expect("empty tree");
        let commit = |i: u32| Commit {
            root: tree.root(),
            parents: Vec::new(),
            height: 1,
            time_micros: 1_000_000,
            message: format!("m{i}"),
            metadata: BTreeMap::new(),
        };
        // Two root commits whose ids share 4 hex digits: a birthday search
        // over 65,536 prefixes needs a few hundred tries.
        let mut seen: HashMap<String, u32> = HashMap::new();
        let (a, b) = (0u32..)
            .find_map(|i| {
                let id = ObjectId::hash(&commit(i).encode());
                seen.insert(id.to_hex()[..4].to_string(), i).map(|j| (j, i))
            })
            .expect("a shared prefix");
        let mut ids = Vec::new();
        for i in [a, b] {
            let spec = CommitSpec {
                message: format!("m{i}"),
                time_micros: Some(1_000_000),
                ..CommitSpec::default()
            };
            let id = repo.write_commit(&tree, &spec).expect("write commit");
            assert_eq!(id, ObjectId::hash(&commit(i).encode()));
            ids.push(id.to_hex());
        }
        (ids[0][..4].to_string(), ids)
    };
    assert_eq!(&ids[1][..4], prefix);
    let err = s.fail(["show", &prefix]);
    assert!(err.contains("ambiguous"), "{err}");
    let err = s.fail(["branch", "x", "--at", &prefix]);
    assert!(err.contains("ambiguous"), "{err}");
    for id in &ids {
        let shown = s.ok(["show", &id[..16], "--json"]);
        assert!(shown.contains(id.as_str()), "{shown}");
    }
    // A commit that no ref reaches can still be named and branched from.
    s.ok(["branch", "found", "--at", &ids[0]]);
    assert_eq!(s.head("found"), ids[0]);
}

/// Replaces the bytes of object `id` with `bytes` (`None`: deletes it),
/// through the store's backend directly.
fn tamper(store: &Store, id: ObjectId, bytes: Option<Vec<u8>>) {
    use kvgit::advanced::Backend;
    let backend: Box<dyn Backend> = match kvgit::Engine::of(&store.path) {
        Some(kvgit::Engine::Journal) => Box::new(
            kvgit::advanced::JournalBackend::open(&store.path, Default::default())
                .expect("open the journal"),
        ),
        _ => Box::new(SledBackend::open(&store.path, SledOptions::default()).expect("open sled")),
    };
    backend.delete_objects(&[id]).expect("delete");
    if let Some(bytes) = bytes {
        backend.put_objects(vec![(id, bytes)]).expect("put");
    }
    backend.flush(kvgit::Durability::Durable).expect("flush");
}

#[test]
fn a_corrupt_object_is_reported_by_verify_and_by_reads() {
    let s = Store::init();
    s.ok(["put", "k", "value"]);
    s.ok(["branch", "dev"]);
    let ok = s.ok(["verify"]);
    assert!(ok.starts_with("ok: 2 refs, 2 commits"), "{ok}");

    let root = root_of(&s, "main");
    let original = {
        let db = Db::open(&s.path).expect("open");
        kvgit::advanced::repo(&db)
            .object_bytes(&root)
            .expect("the root node")
    };
    let mut bad = original.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    tamper(&s, root, Some(bad));

    let out = s.run(["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    // One problem (the node is shared by both branches, reported once),
    // then the summary.
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains(&root.to_hex()), "{stderr}");
    assert!(lines[0].contains("corrupt"), "{stderr}");
    assert!(
        lines[1].starts_with("kvgit: verify found 1 problem"),
        "{stderr}"
    );

    let err = s.fail(["get", "k"]);
    assert!(
        err.contains("corrupt object") && err.contains(&root.to_hex()),
        "{err}"
    );
    assert!(s.fail(["export"]).contains("corrupt object"));

    // Put the right bytes back: all is well again.
    tamper(&s, root, Some(original));
    assert!(s.ok(["verify"]).starts_with("ok: "));
    assert_eq!(s.ok(["get", "k"]), "value");
}

#[test]
fn a_missing_blob_and_a_missing_commit_are_listed() {
    let s = Store::init();
    let big = "x".repeat(1000);
    s.ok(["put", "big", &big]);
    let first = s.ok(["put", "small", "1"]).trim().to_string();
    s.ok(["put", "small", "2"]);
    let blob = {
        let db = Db::open(&s.path).expect("open");
        let repo = kvgit::advanced::repo(&db);
        let head = db.resolve("main").expect("main");
        let tree = repo
            .tree(repo.commit_ref(&head).expect("commit").root)
            .expect("tree");
        let node = repo.node(&tree.root()).expect("root node");
        let blob = node
            .leaf_entries()
            .find_map(|(_, v)| match v {
                kvgit_core::object::ValueRef::Blob { id, .. } => Some(id),
                kvgit_core::object::ValueRef::Inline(_) => None,
            })
            .expect("a blob");
        blob
    };
    tamper(&s, blob, None);
    let first_id = ObjectId::from_slice(&hex(&first)).expect("an id");
    tamper(&s, first_id, None);

    let out = s.run(["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("missing blob {}", blob.to_hex())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("missing commit {first}")),
        "{stderr}"
    );
    assert!(stderr.contains("verify found 2 problems"), "{stderr}");
    let err = s.fail(["get", "big"]);
    assert!(err.contains("missing"), "{err}");
    assert_eq!(s.ok(["get", "small"]), "2");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn a_locked_store_says_so() {
    let s = Store::init();
    s.ok(["put", "k", "v"]);
    let db = Db::open(&s.path).expect("open");
    for args in [
        &["get", "k"][..],
        &["put", "k", "w"],
        &["verify"],
        &["init"],
    ] {
        let err = s.fail(args);
        let expected = if args[0] == "init" {
            "already exists"
        } else {
            "locked by another process"
        };
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    drop(db);
    assert_eq!(s.ok(["get", "k"]), "v");
}

#[test]
fn export_import_round_trip_gives_the_same_tree() {
    let a = Store::init();
    let lines: String = (0..3000)
        .map(|i| format!("{{\"key\":\"key{i:04}\",\"value\":\"value {i}\"}}\n"))
        .collect();
    assert!(a
        .run_with(["import", "-"], lines.as_bytes())
        .status
        .success());
    // Some history on top, so the tree is not just one bulk load.
    a.ok(["put", "key0000", "rewritten"]);
    a.ok(["rm", "key0001"]);
    // Non-UTF-8 key and value, a large value (a blob), an empty value.
    let raw_key = OsStr::from_bytes(b"bin\xff\x01key");
    let raw_value = OsStr::from_bytes(b"\x80\x81 not utf-8");
    let out = a.run([OsStr::new("put"), raw_key, raw_value]);
    assert!(out.status.success());
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert!(a.run_with(["put", "big"], &big).status.success());
    assert!(a.run_with(["put", "empty"], b"").status.success());
    a.ok(["put", "unicode", "caf\u{e9} \u{1f600}"]);

    let export = a.run(["export"]);
    assert!(export.status.success());
    let text = String::from_utf8(export.stdout).expect("JSON lines are UTF-8");
    assert!(text.contains("{\"base64\":"), "non-UTF-8 bytes are marked");
    assert!(text.contains("\"key\":\"unicode\",\"value\":\"caf\u{e9} \u{1f600}\""));
    assert_eq!(text.lines().count(), 3003);

    // Through standard input.
    let b = Store::init();
    let out = b.run_with(["import", "-", "-m", "restore"], text.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(root_of(&a, "main"), root_of(&b, "main"));
    assert_eq!(b.ok(["export"]), text);
    assert!(b.ok(["log", "-n", "1"]).ends_with(" restore\n"));
    assert_eq!(b.ok(["log"]).lines().count(), 2, "one commit");
    let got = b.run(["get", "big"]);
    assert_eq!(got.stdout, big);

    // Through a file, into a branch of a third store.
    let c = Store::init();
    let file = c.path.with_extension("jsonl");
    std::fs::write(&file, &text).expect("write");
    c.ok(["branch", "restored"]);
    let path = file.to_str().expect("a UTF-8 path");
    c.ok(["--branch", "restored", "import", path]);
    assert_eq!(root_of(&a, "main"), root_of(&c, "restored"));
    assert_eq!(c.ok(["ls"]), "");

    // An older revision exports its own state.
    let old = a.ok(["export", "--at", &a.head("main")[..8]]);
    assert_eq!(old, text);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let s = Store::init();
    let lines: String = (0..20_000)
        .map(|i| format!("{{\"key\":\"k{i:06}\",\"value\":\"{}\"}}\n", "v".repeat(50)))
        .collect();
    assert!(s
        .run_with(["import", "-"], lines.as_bytes())
        .status
        .success());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kvgit"))
        .arg("--store")
        .arg(&s.path)
        .arg("export")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
}

#[test]
fn gc_drops_the_coldest_keys_and_sweep_frees_the_history() {
    let s = Store::init();
    let put = |key: &str, len: usize| {
        let out = s.run_with(["put", key], &vec![b'x'; len]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    put("a", 1000);
    put("b", 2000);
    put("c", 500);
    put("cfg/__schema", 3000);
    let old_head = s.head("main");

    // Below the high water: nothing happens.
    let out = s.ok(["gc", "--high", "10K"]);
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(s.head("main"), old_head);
    let err = s.fail(["gc", "--high", "100", "--low", "200"]);
    assert!(
        err.contains("low water 200 is above high water 100"),
        "{err}"
    );

    // 6500 bytes > 5000: drop unprotected keys down to 4000. None was
    // read or written through a tracked path, so the largest go first.
    // Off a terminal, dropping keys needs --yes (#20).
    let out = s.ok(["gc", "--high", "5000", "--low", "4000", "--yes"]);
    assert!(
        out.contains("rebased main onto a fresh root commit"),
        "{out}"
    );
    assert!(out.contains("values 6.35 KiB -> 3.42 KiB"), "{out}");
    assert_eq!(s.ok(["ls"]), "c\ncfg/__schema\n");
    assert_eq!(s.ok(["log"]).lines().count(), 1, "a fresh root commit");
    // The old history is still there until a sweep.
    assert_eq!(s.ok(["get", "a", "--at", &old_head]).len(), 1000);

    let dry = s.ok(["sweep", "--dry-run"]);
    assert!(dry.starts_with("would free "), "{dry}");
    assert_eq!(s.ok(["get", "a", "--at", &old_head]).len(), 1000);
    let verify = s.ok(["verify"]);
    assert!(!verify.contains(" 0 unreachable"), "{verify}");

    let swept = s.ok(["sweep"]);
    assert!(swept.starts_with("freed "), "{swept}");
    assert!(!swept.starts_with("freed 0 "), "{swept}");
    assert!(s.fail(["show", &old_head]).contains("unknown revision"));
    let verify = s.ok(["verify"]);
    assert!(verify.contains(" 0 unreachable"), "{verify}");
    assert_eq!(s.ok(["get", "c"]).len(), 500);
    assert!(s.ok(["sweep"]).starts_with("freed 0 unreachable objects"));
}
