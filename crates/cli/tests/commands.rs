//! End-to-end tests of every command through the built binary, including
//! its error cases.

mod common;

use common::{json, one_line_error, Store};

#[test]
fn init_creates_a_store_once() {
    let s = Store::new();
    let out = s.ok(["init"]);
    assert!(out.contains("created store"), "{out}");
    assert!(s.fail(["init"]).contains("a store already exists"));
    // The new branch exists and is empty.
    assert_eq!(s.ok(["ls"]), "");
    assert_eq!(s.ok(["log"]).lines().count(), 1);
}

#[test]
fn init_refuses_a_non_empty_directory() {
    let s = Store::new();
    std::fs::create_dir_all(&s.path).expect("mkdir");
    std::fs::write(s.path.join("notes.txt"), "mine").expect("write");
    assert!(s.fail(["init"]).contains("not an empty directory"));
}

#[test]
fn every_command_needs_an_existing_store() {
    let s = Store::new();
    let commands: &[&[&str]] = &[
        &["put", "k", "v"],
        &["get", "k"],
        &["rm", "k"],
        &["ls"],
        &["log"],
        &["show", "main"],
        &["history", "k"],
        &["diff", "main", "main"],
        &["branch", "dev"],
        &["branch", "--list"],
        &["branch", "-d", "dev"],
        &["reset", "main"],
        &["merge", "dev"],
        &["gc", "--high", "100"],
        &["sweep"],
        &["stats"],
        &["export"],
        &["import", "-"],
        &["verify"],
    ];
    for args in commands {
        let err = s.fail(*args);
        assert!(
            err.contains("no store at") && err.contains("kvgit init"),
            "{args:?}: {err}"
        );
    }
    assert!(!s.path.exists(), "no command may create the store");
}

#[test]
fn the_store_comes_from_the_environment() {
    let s = Store::init();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kvgit"))
            .args(args)
            .env("KVGIT_STORE", &s.path)
            .output()
            .expect("kvgit runs")
    };
    assert!(run(&["put", "k", "v"]).status.success());
    assert_eq!(run(&["get", "k"]).stdout, b"v");
}

#[test]
fn put_get_rm_ls() {
    let s = Store::init();
    let first = s.ok(["put", "user/alice", "admin", "-m", "add alice"]);
    assert_eq!(first.trim().len(), 64);
    s.ok(["put", "user/bob", "guest"]);
    s.ok(["put", "zeta", "last"]);
    assert_eq!(s.ok(["get", "user/alice"]), "admin");
    assert_eq!(s.ok(["ls"]), "user/alice\nuser/bob\nzeta\n");
    assert_eq!(s.ok(["ls", "user/"]), "user/alice\nuser/bob\n");
    assert_eq!(s.ok(["ls", "nothing"]), "");

    s.ok(["rm", "user/bob"]);
    assert_eq!(s.ok(["ls", "user/"]), "user/alice\n");
    let err = s.fail(["get", "user/bob"]);
    assert!(err.contains("not found"), "{err}");
    assert!(s.fail(["rm", "user/bob"]).contains("not found"));

    // Older states stay readable.
    let first = first.trim();
    assert_eq!(s.ok(["ls", "--at", &first[..8]]), "user/alice\n");
    assert!(s.fail(["get", "zeta", "--at", first]).contains("not found"));
    // The message was recorded.
    assert!(s.ok(["show", first]).contains("add alice"));
}

#[test]
fn put_reads_standard_input_and_get_writes_raw_bytes() {
    let s = Store::init();
    let value: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let out = s.run_with(["put", "bin"], &value);
    assert!(out.status.success());
    let out = s.run(["get", "bin"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, value);
    // An empty value is a value.
    assert!(s.run_with(["put", "empty"], b"").status.success());
    assert_eq!(s.ok(["get", "empty"]), "");
}

#[test]
fn bad_keys_and_names_are_one_line_errors() {
    let s = Store::init();
    assert!(s.fail(["put", "", "v"]).contains("invalid key"));
    let long = "k".repeat(5000);
    assert!(s.fail(["put", &long, "v"]).contains("invalid key"));
    assert!(s.fail(["branch", "bad name"]).contains("invalid ref name"));
    assert!(s
        .fail(["branch", "-d", "nope"])
        .contains("no branch named nope"));
}

#[test]
fn unknown_branches_and_commits() {
    let s = Store::init();
    s.ok(["put", "k", "v"]);
    for args in [
        &["--branch", "nope", "get", "k"][..],
        &["--branch", "nope", "put", "k", "v"],
        &["--branch", "nope", "log"],
        &["--branch", "nope", "reset", "main"],
        &["--branch", "nope", "ls"],
        &["merge", "main", "--into", "nope"],
    ] {
        let err = s.fail(args);
        assert!(err.contains("no branch named nope"), "{args:?}: {err}");
    }
    for args in [
        &["show", "deadbeef"][..],
        &["get", "k", "--at", "0000"],
        &["diff", "main", "ffffffff"],
        &["merge", "nope"],
        &["branch", "x", "--at", "nope"],
        &["show", "abc"],
        &["show", &"a".repeat(64)],
    ] {
        let err = s.fail(args);
        assert!(err.contains("unknown revision"), "{args:?}: {err}");
    }
}

#[test]
fn log_show_and_json() {
    let s = Store::init();
    s.ok(["put", "a", "1"]);
    s.ok(["put", "b", "22", "-m", "second\nwith a body"]);
    let log = s.ok(["log"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert!(
            line.as_bytes()[..64].iter().all(u8::is_ascii_hexdigit),
            "{line}"
        );
    }
    assert!(lines[0].ends_with(" second"), "{}", lines[0]);
    assert_eq!(s.ok(["log", "-n", "2"]).lines().count(), 2);

    let entries = json(&s.ok(["log", "--json"]));
    let entries = entries.as_array().expect("an array");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["message"], "second\nwith a body");
    assert_eq!(entries[0]["parents"][0], entries[1]["id"]);
    assert_eq!(entries[2]["parents"].as_array().map(Vec::len), Some(0));

    let head = entries[0]["id"].as_str().expect("id").to_string();
    let show = s.ok(["show", &head[..6]]);
    assert!(show.starts_with(&format!("commit      {head}")), "{show}");
    assert!(show.contains("height      3"), "{show}");
    assert!(show.contains("keys        2"), "{show}");
    assert!(show.contains("value bytes 3"), "{show}");
    assert!(show.contains("    with a body"), "{show}");
    let time = show
        .lines()
        .find_map(|l| l.strip_prefix("time        "))
        .expect("a time line");
    // RFC 3339 in UTC: 2024-05-06T07:08:09Z.
    assert_eq!(time.len(), 20, "{time}");
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");

    let shown = json(&s.ok(["show", "main", "--json"]));
    assert_eq!(shown["id"], head.as_str());
    assert_eq!(shown["keys"], 2);
    assert_eq!(shown["value_bytes"], 3);
    assert_eq!(shown["height"], 3);
    assert_eq!(shown["time"].as_str().map(str::len), Some(20));
}

#[test]
fn log_graph_draws_merges() {
    let s = Store::init();
    s.ok(["put", "base", "0"]);
    s.ok(["branch", "dev"]);
    s.ok(["put", "main-only", "1"]);
    s.ok(["--branch", "dev", "put", "dev-only", "2"]);
    s.ok(["merge", "dev"]);
    let graph = s.ok(["log", "--graph"]);
    let lines: Vec<&str> = graph.lines().collect();
    assert!(lines[0].starts_with("* "), "{graph}");
    assert_eq!(lines[1], "|\\", "{graph}");
    // The two sides have equal heights: either may come first.
    let mut sides = [&lines[2][..4], &lines[3][..4]];
    sides.sort();
    assert_eq!(sides, ["* | ", "| * "], "{graph}");
    assert_eq!(lines[4], "|/", "{graph}");
    assert!(lines[5..].iter().all(|l| l.starts_with("* ")), "{graph}");
    // Five commits: create, base, main-only, dev-only, merge.
    assert_eq!(lines.iter().filter(|l| l.contains('*')).count(), 5);
}

#[test]
fn history_lists_changes_of_one_key() {
    let s = Store::init();
    s.ok(["put", "k", "1"]);
    s.ok(["put", "other", "x"]);
    s.ok(["put", "k", "22"]);
    s.ok(["rm", "k"]);
    let out = s.ok(["history", "k"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains(" deleted "), "{out}");
    assert!(lines[1].contains(" 2 bytes "), "{out}");
    assert!(lines[2].contains(" 1 byte "), "{out}");
    let listed = json(&s.ok(["history", "k", "--json"]));
    assert_eq!(listed[0]["deleted"], true);
    assert_eq!(listed[1]["size"], 2);
    assert_eq!(s.ok(["history", "never"]), "");
}

#[test]
fn diff_between_revisions() {
    let s = Store::init();
    s.ok(["put", "a", "1"]);
    s.ok(["put", "b", "2"]);
    s.ok(["put", "c", "3"]);
    s.ok(["branch", "before"]);
    s.ok(["rm", "a"]);
    s.ok(["put", "b", "20"]);
    s.ok(["put", "d", "4"]);
    assert_eq!(s.ok(["diff", "before", "main"]), "D a\nM b\nA d\n");
    assert_eq!(s.ok(["diff", "main", "before"]), "A a\nM b\nD d\n");
    assert_eq!(s.ok(["diff", "main", "main"]), "");
    let before = s.head("before");
    assert_eq!(s.ok(["diff", &before[..10], "main"]), "D a\nM b\nA d\n");
    let changes = json(&s.ok(["diff", "before", "main", "--json"]));
    assert_eq!(changes[1]["change"], "modified");
    assert_eq!(changes[1]["key"], "b");
    assert_eq!(changes[1]["old"], "2");
    assert_eq!(changes[1]["new"], "20");
    assert_eq!(changes[0]["new"], serde_json::Value::Null);
}

#[test]
fn branches_create_list_delete_and_reset() {
    let s = Store::init();
    let first = s.ok(["put", "k", "1"]).trim().to_string();
    s.ok(["put", "k", "2"]);
    s.ok(["branch", "dev"]);
    s.ok(["branch", "old", "--at", &first[..12]]);
    assert!(s.fail(["branch", "dev"]).contains("already exists"));
    assert_eq!(s.ok(["--branch", "old", "get", "k"]), "1");
    assert_eq!(s.ok(["--branch", "dev", "get", "k"]), "2");

    let list = s.ok(["branch", "--list"]);
    let names: Vec<&str> = list.lines().map(|l| &l[..6]).collect();
    assert_eq!(names, ["  dev ", "* main", "  old "], "{list}");
    assert_eq!(s.ok(["branch"]), list);
    let listed = json(&s.ok(["branch", "--list", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(3));
    assert_eq!(listed[2]["name"], "old");
    assert_eq!(listed[2]["head"], first.as_str());
    assert_eq!(listed[1]["current"], true);

    s.ok(["branch", "-d", "old"]);
    assert!(!s.ok(["branch", "--list"]).contains("old"));
    assert!(s
        .fail(["--branch", "old", "get", "k"])
        .contains("no branch named old"));
    // Its commit is still there.
    assert_eq!(s.ok(["get", "k", "--at", &first]), "1");

    s.ok(["reset", &first[..8]]);
    assert_eq!(s.ok(["get", "k"]), "1");
    assert_eq!(s.head("main"), first);
    assert_eq!(s.ok(["--branch", "dev", "get", "k"]), "2");
}

#[test]
fn counter_merge_of_two_branches() {
    let s = Store::init();
    s.ok(["put", "hits", "100"]);
    s.ok(["branch", "dev"]);
    s.ok(["put", "hits", "115"]);
    s.ok(["--branch", "dev", "put", "hits", "120"]);

    // Without a merge function the key is a conflict and nothing moves.
    let head = s.head("main");
    let err = s.fail(["merge", "dev"]);
    assert!(err.contains("conflict") && err.contains("hits"), "{err}");
    assert_eq!(s.head("main"), head);

    let out = s.ok(["merge", "dev", "--counter", "hits"]);
    assert!(out.contains("resolved hits"), "{out}");
    assert_eq!(s.ok(["get", "hits"]), "135");
    let merge = json(&s.ok(["show", "main", "--json"]));
    let parents = merge["parents"].as_array().expect("parents");
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[0], head.as_str());
    assert_eq!(parents[1], s.head("dev").as_str());
    // Merging again changes nothing.
    assert!(s.ok(["merge", "dev"]).contains("already up to date"));
    // dev fast-forwards to main.
    assert!(s
        .ok(["merge", "main", "--into", "dev"])
        .contains("fast-forwarded"));
    assert_eq!(s.ok(["--branch", "dev", "get", "hits"]), "135");
}

#[test]
fn merge_conflicts_list_every_key_and_prefixes_register() {
    let s = Store::init();
    for k in ["ctr/a", "ctr/b", "name", "x", "y"] {
        s.ok(["put", k, "10"]);
    }
    s.ok(["branch", "dev"]);
    for k in ["ctr/a", "ctr/b", "name", "x", "y"] {
        s.ok(["put", k, "11"]);
        s.ok(["--branch", "dev", "put", k, "12"]);
    }
    let err = s.fail(["merge", "dev"]);
    for k in ["ctr/a", "ctr/b", "name", "x", "y"] {
        assert!(err.contains(k), "{k} missing from {err}");
    }
    assert!(err.contains("5 conflicting keys"), "{err}");

    // Prefix and exact registrations; x and y still conflict.
    let err = s.fail(["merge", "dev", "--counter", "ctr/", "--lww", "name"]);
    assert!(err.contains("2 conflicting keys: x, y"), "{err}");

    s.ok([
        "merge",
        "dev",
        "--counter",
        "ctr/",
        "--lww",
        "name",
        "--lww",
        "x",
        "--counter",
        "y",
    ]);
    assert_eq!(s.ok(["get", "ctr/a"]), "13");
    assert_eq!(s.ok(["get", "ctr/b"]), "13");
    assert_eq!(s.ok(["get", "y"]), "13");
    let name = s.ok(["get", "name"]);
    assert!(name == "11" || name == "12", "{name}");
}

#[test]
fn stats_count_the_store() {
    let s = Store::init();
    s.ok(["put", "a", "12345"]);
    s.ok(["put", "b", "678"]);
    s.ok(["branch", "dev"]);
    let stats = json(&s.ok(["stats", "--json"]));
    assert_eq!(stats["keys"], 2);
    assert_eq!(stats["value_bytes"], 8);
    assert_eq!(stats["commits"], 3);
    assert_eq!(stats["branches"], 2);
    assert!(stats["objects"].as_u64() > Some(3), "{stats}");
    assert!(stats["size_on_disk"].as_u64() > Some(0), "{stats}");
    let text = s.ok(["stats"]);
    assert!(text.contains("keys         2"), "{text}");
    assert!(text.contains("size on disk"), "{text}");
}

#[test]
fn import_rejects_bad_lines_with_their_number() {
    let s = Store::init();
    let input = b"{\"key\": \"a\", \"value\": \"1\"}\n\nnot json\n";
    let out = s.run_with(["import", "-"], input);
    let err = one_line_error(&["import".into()], &out);
    assert!(err.contains("line 3"), "{err}");
    let out = s.run_with(["import", "-"], b"{\"key\": \"a\", \"value\": 1}\n");
    let err = one_line_error(&["import".into()], &out);
    assert!(err.contains("line 1") && err.contains("value"), "{err}");
    // Nothing was committed.
    assert_eq!(s.ok(["ls"]), "");
    assert!(s
        .fail(["import", "/nonexistent/file.jsonl"])
        .contains("cannot open"));
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let s = Store::init();
    for args in [
        &["frobnicate"][..],
        &["gc", "--high", "lots"],
        &["get"],
        &["branch", "--list", "dev"],
        &["log", "--graph", "--json"],
    ] {
        let out = s.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("kvgit: "), "{args:?}: {stderr}");
    }
    let help = s.run(["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("verify"));
}

#[test]
fn branch_names_that_read_as_revisions_are_refused() {
    let s = Store::init();
    s.ok(["put", "k", "v"]);
    for (name, why) in [
        ("HEAD", "HEAD is reserved"),
        ("a..b", "revision range"),
        ("refs/heads/main", "give the short name"),
        ("heads/main", "give the short name"),
        ("deadbeef", "commit id prefix"),
        ("2024", "commit id prefix"),
        ("a@b", "only ASCII letters"),
        ("a~1", "only ASCII letters"),
        ("a:b", "only ASCII letters"),
    ] {
        let err = s.fail(["branch", name]);
        assert!(
            err.contains("invalid ref name") && err.contains(why),
            "{name}: {err}"
        );
    }
    // Nor through --branch on a new store.
    let fresh = Store::new();
    let out = fresh.run(["--branch", "cafe", "init"]);
    let err = one_line_error(&["init".into()], &out);
    assert!(err.contains("commit id prefix"), "{err}");
    assert_eq!(s.ok(["branch"]).lines().count(), 1, "only main");
    s.ok(["branch", "release-2024"]);
}

#[test]
fn deleting_the_default_branch_needs_force() {
    let s = Store::init();
    s.ok(["put", "k", "v"]);
    s.ok(["branch", "dev"]);
    let err = s.fail(["branch", "-d", "main"]);
    assert!(
        err.contains("not deleting branch main") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(s.ok(["get", "k"]), "v", "main is still there");
    // The branch --branch (or KVGIT_BRANCH) names is the protected one.
    let err = s.fail(["--branch", "dev", "branch", "-d", "dev"]);
    assert!(err.contains("not deleting branch dev"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvgit"))
        .args(["branch", "-d", "dev"])
        .env("KVGIT_STORE", &s.path)
        .env("KVGIT_BRANCH", "dev")
        .output()
        .expect("kvgit runs");
    let err = one_line_error(&["branch".into()], &out);
    assert!(err.contains("not deleting branch dev"), "{err}");
    s.ok(["branch", "-d", "dev"]);
    // --force only goes with -d.
    assert_eq!(s.run(["branch", "x", "--force"]).status.code(), Some(2));
    let out = s.ok(["branch", "-d", "main", "--force"]);
    assert!(out.starts_with("deleted branch main"), "{out}");
    assert!(s.fail(["get", "k"]).contains("no branch named main"));
}

/// Issue #15: a 4 GiB line used to abort `kvgit import` on allocation.
/// It is refused with its number once it passes the largest valid entry,
/// and nothing changes. (The command reads about 1.5 GiB of it first.)
#[test]
fn import_refuses_a_line_longer_than_the_largest_entry() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let s = Store::init();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvgit"))
        .arg("--store")
        .arg(&s.path)
        .args(["import", "-"])
        .env_remove("KVGIT_BRANCH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvgit starts");
    let mut input = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        input.write_all(b"{\"key\": \"a\", \"value\": \"1\"}\n{\"key\": \"b\", \"value\": \"")?;
        let chunk = vec![b'x'; 1 << 20];
        // Until kvgit stops reading (a broken pipe), at most 4 GiB.
        for _ in 0..4096 {
            input.write_all(&chunk)?;
        }
        Ok::<(), std::io::Error>(())
    });
    let out = child.wait_with_output().expect("kvgit runs");
    let written = writer.join().expect("the writer thread");
    let err = one_line_error(&["import".into()], &out);
    assert!(
        err.contains("line 2: longer than the largest valid entry")
            && err.contains(&kvgit::jsonl::MAX_LINE_LEN.to_string()),
        "{err}"
    );
    assert!(written.is_err(), "kvgit stopped reading before 4 GiB");
    assert_eq!(s.ok(["ls"]), "", "nothing imported");
}

/// Issue #15: errors are one line of `Display` text, each cause once.
#[test]
fn import_errors_say_what_and_where() {
    let s = Store::init();
    let out = s.run_with(
        ["import", "-"],
        b"{\"key\": \"a\", \"value\": \"1\"}\n{\"key\": 1}\n",
    );
    let err = one_line_error(&["import".into()], &out);
    assert!(
        err.starts_with("kvgit: nothing imported from standard input: line 2: key: "),
        "{err}"
    );
    let err = s.fail(["import", "/nonexistent/file.jsonl"]);
    assert!(
        err.contains("cannot open /nonexistent/file.jsonl")
            && err.contains("No such file or directory"),
        "{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert!(!err.contains("Os {"), "{err}");
}
