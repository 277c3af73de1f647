//! Remotes end to end through the binary, over `file://` (a child
//! `kvgit serve --stdio` process speaking the protocol on pipes).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Store;

fn file_url(store: &Store) -> String {
    format!("file://{}", store.path.display())
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A store cloned from `origin` (over `file://`).
fn cloned(origin: &Store, extra: &[&str]) -> Store {
    let copy = Store::new();
    let mut args = vec!["clone".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(file_url(origin));
    args.push(path_str(&copy.path));
    copy.ok(&args);
    copy
}

/// An executable shell script `name` in a new temporary directory.
fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn clone_fetch_pull_and_push_over_file_urls() {
    let origin = Store::init();
    origin.ok(["put", "a", "1"]);
    origin.ok(["put", "n", "10"]);

    let copy = cloned(&origin, &[]);
    assert_eq!(copy.ok(["get", "a"]), "1");
    assert!(copy.ok(["remote", "list"]).starts_with("origin\tfile://"));
    copy.ok(["verify"]);

    // fetch: the remote-tracking branch moves, the local one does not.
    origin.ok(["put", "b", "2"]);
    let fetched = copy.ok(["fetch", "--json"]);
    let report = common::json(&fetched);
    assert!(
        report["objects_received"].as_u64().unwrap() > 0,
        "{fetched}"
    );
    assert_eq!(copy.ok(["get", "--at", "origin/main", "b"]), "2");
    assert_eq!(copy.ok(["get", "--at", "remotes/origin/main", "b"]), "2");
    assert!(copy.run(["get", "b"]).status.code() == Some(1));
    let listed = copy.ok(["branch", "--list", "--remotes"]);
    assert!(listed.contains("remotes/origin/main"), "{listed}");
    let log = copy.ok(["log", "origin/main"]);
    assert!(log.contains("put b"), "{log}");
    copy.ok(["diff", "main", "origin/main"]);
    copy.ok(["show", "remotes/origin/main"]);

    // pull with a counter merge: both sides added to n.
    origin.ok(["put", "n", "15"]);
    copy.ok(["put", "n", "13"]);
    let pulled = copy.ok(["pull", "--counter", "n", "--json"]);
    assert_eq!(common::json(&pulled)["merge"]["strategy"], "ThreeWay");
    assert_eq!(copy.ok(["get", "n"]), "18");
    assert_eq!(copy.ok(["get", "b"]), "2");

    // push: a fast-forward of the remote.
    copy.ok(["push"]);
    assert_eq!(origin.ok(["get", "n"]), "18");
    origin.ok(["verify"]);

    // Not a fast-forward: refused, pull first; --force overrides.
    origin.ok(["put", "c", "1"]);
    copy.ok(["put", "d", "1"]);
    let refused = copy.fail(["push"]);
    assert!(refused.contains("pull first"), "{refused}");
    assert_eq!(origin.run(["get", "d"]).status.code(), Some(1));
    copy.ok(["push", "--force"]);
    assert_eq!(origin.ok(["get", "d"]), "1");
    assert_eq!(origin.run(["get", "c"]).status.code(), Some(1));
    origin.ok(["verify"]);
}

#[test]
fn remote_add_list_remove() {
    let origin = Store::init();
    origin.ok(["put", "k", "v"]);
    let local = Store::init();
    local.ok(["remote", "add", "up", &file_url(&origin)]);
    let listed = common::json(&local.ok(["remote", "list", "--json"]));
    assert_eq!(listed[0]["name"], "up");
    local.ok(["fetch", "up", "main"]);
    assert_eq!(local.ok(["get", "--at", "up/main", "k"]), "v");
    local.ok(["merge", "up/main"]);
    assert_eq!(local.ok(["get", "k"]), "v");
    local.ok(["remote", "remove", "up"]);
    assert_eq!(local.ok(["remote", "list"]), "");
    local.fail(["get", "--at", "up/main", "k"]);
    let err = local.fail(["fetch", "up"]);
    assert!(err.contains("no remote named"), "{err}");
}

#[test]
fn pre_receive_command_refuses_a_push_with_its_stderr() {
    let origin = Store::init();
    origin.ok(["put", "a", "1"]);
    let copy = cloned(&origin, &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    // The hook sees the update as JSON and refuses changes to "locked".
    let hook = script(
        &dir,
        "hook",
        "input=$(cat)\ncase \"$input\" in *'\"locked\"'*) echo \"locked is read-only\" >&2; exit 3;; esac\nexit 0",
    );
    let server = script(
        &dir,
        "kvgit-with-hook",
        &format!(
            "exec '{}' \"$@\" --pre-receive '{}'",
            env!("CARGO_BIN_EXE_kvgit"),
            hook.display()
        ),
    );
    let with_hook = |args: &[&str]| {
        let mut all = vec!["--remote-kvgit".to_string(), path_str(&server)];
        all.extend(args.iter().map(|s| s.to_string()));
        all
    };
    copy.ok(["put", "locked", "x"]);
    let refused = copy.fail(with_hook(&["push"]));
    assert!(refused.contains("locked is read-only"), "{refused}");
    assert_eq!(origin.run(["get", "locked"]).status.code(), Some(1));
    copy.ok(["rm", "locked"]);
    copy.ok(["put", "free", "y"]);
    copy.ok(with_hook(&["push"]));
    assert_eq!(origin.ok(["get", "free"]), "y");
}

#[test]
fn shallow_clone_verifies() {
    let origin = Store::init();
    for i in 0..5 {
        origin.ok(["put", &format!("k{i}"), &i.to_string()]);
    }
    let copy = cloned(&origin, &["--depth", "1"]);
    assert_eq!(copy.ok(["get", "k4"]), "4");
    assert_eq!(copy.ok(["ls"]).lines().count(), 5);
    copy.ok(["verify"]);
    let log = copy.ok(["log"]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.contains("put k4") && log.contains("shallow"), "{log}");
}

#[test]
fn get_remote_verify_reads_one_proven_value() {
    let origin = Store::init();
    origin.ok(["put", "a", "1"]);
    origin.ok(["put", "b", "two"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let nowhere = Store::new();
    // The local --store need not exist: nothing is fetched into it.
    let out = nowhere.ok(["get", "--remote", &file_url(&origin), "b", "--verify"]);
    assert_eq!(out, "two");
    let missing = nowhere.run(["get", "--remote", &file_url(&origin), "zz", "--verify"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(!nowhere.path.exists());
    drop(dir);
}

#[test]
fn a_cut_transfer_leaves_refs_unchanged_and_a_rerun_completes() {
    let origin = Store::init();
    let mut lines = String::new();
    for i in 0..3000 {
        lines.push_str(&format!(
            "{{\"key\": \"key{i:05}\", \"value\": \"value {i} {}\"}}\n",
            "x".repeat(40)
        ));
    }
    let out = origin.run_with(["import", "-"], lines.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    // The server's output is cut after 20000 bytes, then the server is
    // killed (SIGKILL) in the middle of the transfer.
    let fifo = dir.path().join("out");
    let cut = script(
        &dir,
        "kvgit-cut",
        &format!(
            "rm -f '{fifo}'; mkfifo '{fifo}'\nexec 3<&0\n'{kvgit}' \"$@\" <&3 >'{fifo}' &\n\
             pid=$!\nexec 3<&-\ndd bs=4096 count=20000 iflag=count_bytes status=none <'{fifo}'\nkill -9 $pid",
            fifo = fifo.display(),
            kvgit = env!("CARGO_BIN_EXE_kvgit")
        ),
    );
    let copy = Store::new();
    let failed = copy.run([
        "--remote-kvgit",
        &path_str(&cut),
        "clone",
        &file_url(&origin),
        &path_str(&copy.path),
    ]);
    assert!(!failed.status.success());
    // No branch was created; what arrived is stored and verifiable.
    assert_eq!(copy.ok(["branch", "--list"]), "");
    copy.ok(["verify"]);
    // A rerun completes, fetching only what is missing.
    let report =
        common::json(&copy.ok(["clone", "--json", &file_url(&origin), &path_str(&copy.path)]));
    assert!(report["objects_received"].as_u64().unwrap() > 0);
    assert_eq!(copy.ok(["ls"]).lines().count(), 3000);
    copy.ok(["verify"]);
}

#[test]
fn pull_with_lww_takes_the_remote_value_and_without_it_conflicts() {
    let origin = Store::init();
    origin.ok(["put", "k", "base"]);
    let copy = cloned(&origin, &[]);
    origin.ok(["put", "k", "theirs"]);
    copy.ok(["put", "k", "mine"]);
    let head = copy.head("main");
    // No merge function: a conflict naming the key, and nothing moves.
    let refused = copy.fail(["pull"]);
    assert!(
        refused.contains("conflict") && refused.contains('k'),
        "{refused}"
    );
    assert_eq!(copy.head("main"), head);
    assert_eq!(copy.ok(["get", "k"]), "mine");
    // Last writer wins: the value being merged in is the later write.
    let pulled = copy.ok(["pull", "--lww", "k", "--json"]);
    assert_eq!(common::json(&pulled)["merge"]["strategy"], "ThreeWay");
    assert_eq!(copy.ok(["get", "k"]), "theirs");
    copy.ok(["push"]);
    assert_eq!(origin.ok(["get", "k"]), "theirs");
}

#[test]
fn import_and_clone_on_a_terminal_show_progress_with_counts() {
    let origin = Store::init();
    let lines: String = (0..1000)
        .map(|i| {
            format!(
                "{{\"key\":\"k{i:05}\",\"value\":\"{}\"}}\n",
                "v".repeat(200)
            )
        })
        .collect();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), lines).expect("written");
    // The import on a terminal shows its counts too.
    let import = format!(
        "{} --store {} import {}",
        env!("CARGO_BIN_EXE_kvgit"),
        origin.path.display(),
        file.path().display()
    );
    let Some((out, text)) = common::in_pty(&import, "", &[]) else {
        return;
    };
    assert!(out.status.success(), "{text}");
    assert!(text.contains("committing 1000 entries"), "{text:?}");
    let copy = Store::new();
    let command = format!(
        "{} clone {} {}",
        env!("CARGO_BIN_EXE_kvgit"),
        file_url(&origin),
        copy.path.display()
    );
    let Some((out, text)) = common::in_pty(&command, "", &[]) else {
        return;
    };
    assert!(out.status.success(), "{text}");
    // The spinner names what it does, the objects so far and the bytes.
    assert!(text.contains("receiving objects ("), "{text:?}");
    assert!(text.contains("KiB") || text.contains("MiB"), "{text:?}");
    assert_eq!(copy.ok(["ls"]).lines().count(), 1000);
}
