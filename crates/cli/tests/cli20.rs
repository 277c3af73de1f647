//! The command line a git user already knows (#20): each habit end to
//! end through the built binary, and in a pseudo-terminal (util-linux
//! `script`) for colour, progress and gc's confirmation.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{in_pty, json, Store};

fn kvgit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvgit"));
    c.env_remove("KVGIT_STORE")
        .env_remove("KVGIT_BRANCH")
        .env_remove("NO_COLOR");
    c
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A store with `n` keys `k1..kn` of 10 bytes, one commit each.
fn store_with_keys(n: usize) -> Store {
    let s = Store::init();
    for i in 1..=n {
        s.ok(["put", &format!("k{i}"), "0123456789"]);
    }
    s
}

/// The ids of `log`, newest first.
fn log_ids(s: &Store, args: &[&str]) -> Vec<String> {
    let mut all = vec!["log"];
    all.extend(args);
    s.ok(all)
        .lines()
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_mistyped_command_suggests_the_close_one() {
    let s = Store::init();
    let out = s.run(["lgo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unrecognized subcommand 'lgo'"), "{err}");
    assert_eq!(
        err,
        "kvgit: unrecognized subcommand 'lgo' (a similar subcommand exists: 'log'; see kvgit \
         --help)\n"
    );
    let err = stderr(&s.run(["brnch"]));
    assert!(err.contains("'branch'"), "{err}");
}

#[test]
fn revisions_take_head_tilde_and_caret() {
    let s = store_with_keys(3);
    let ids = log_ids(&s, &[]);
    let show = |rev: &str| json(&s.ok(["show", rev, "--json"]))["id"].clone();
    assert_eq!(show("HEAD"), ids[0].as_str());
    assert_eq!(show("main~1"), ids[1].as_str());
    assert_eq!(show("main^"), ids[1].as_str());
    assert_eq!(show("HEAD~2"), ids[2].as_str());
    assert_eq!(show("main~"), ids[1].as_str());
    assert_eq!(show("main^^"), ids[2].as_str());
    assert_eq!(show("main^0"), ids[0].as_str());
    assert_eq!(show(&format!("{}~1", &ids[0][..8])), ids[1].as_str());
    assert_eq!(s.ok(["get", "k3", "--at", "HEAD"]), "0123456789");
    assert!(s.run(["get", "k3", "--at", "HEAD~1"]).status.code() == Some(1));
    // Errors name what is missing.
    let err = s.fail(["show", "main~9"]);
    assert!(err.contains("root commit"), "{err}");
    let err = s.fail(["show", "main^2"]);
    assert!(err.contains("has 1 parent, not 2"), "{err}");
    let err = s.fail(["show", "main~x"]);
    assert!(err.contains("bad revision"), "{err}");
    // A merge's second parent.
    s.ok(["branch", "side", "--at", "HEAD~1"]);
    s.ok(["--branch", "side", "put", "s", "1"]);
    let side = s.head("side");
    s.ok(["merge", "side"]);
    assert_eq!(show("main^2"), side.as_str());
    assert_eq!(show("main^1"), ids[0].as_str());
    // `HEAD` follows the current branch.
    assert_eq!(show("side"), side.as_str());
    s.ok(["switch", "side"]);
    assert_eq!(show("HEAD"), side.as_str());
}

#[test]
fn log_oneline_shows_abbreviated_ids_that_resolve() {
    let s = store_with_keys(5);
    let full = log_ids(&s, &[]);
    let out = s.ok(["log", "--oneline"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), full.len());
    for (line, id) in lines.iter().zip(&full) {
        let short = line.split(' ').next().unwrap_or("");
        assert!(short.len() >= 7 && short.len() < 64, "{line}");
        assert!(id.starts_with(short), "{line} {id}");
        assert!(line.len() < 80, "{line}");
        assert_eq!(json(&s.ok(["show", short, "--json"]))["id"], id.as_str());
    }
    assert_eq!(lines[0].split_once(' ').map(|x| x.1), Some("put k5"));
    // From a revision.
    let from = s.ok(["log", "--oneline", "HEAD~3"]);
    assert_eq!(from.lines().count(), full.len() - 3);
    assert_eq!(s.ok(["log", "-n", "1", "main~1"])[..64], full[1]);
}

#[test]
fn tags_are_created_listed_and_deleted() {
    let s = store_with_keys(2);
    let ids = log_ids(&s, &[]);
    let out = s.ok(["tag", "v1", "HEAD~1"]);
    assert_eq!(out, format!("tagged {} as v1\n", ids[1]));
    s.ok(["tag", "v2"]);
    assert_eq!(s.ok(["tag"]), format!("v1 {}\nv2 {}\n", ids[1], ids[0]));
    assert_eq!(s.ok(["tag", "--list"]), s.ok(["tag"]));
    let listed = json(&s.ok(["tag", "--json"]));
    assert_eq!(listed[0]["name"], "v1");
    assert_eq!(listed[0]["commit"], ids[1].as_str());
    assert_eq!(s.ok(["get", "k1", "--at", "v1"]), "0123456789");
    assert_eq!(
        json(&s.ok(["show", "v1~1", "--json"]))["id"],
        ids[2].as_str()
    );
    let err = s.fail(["tag", "v1"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        s.ok(["tag", "-d", "v1"]),
        format!("deleted tag v1 (was {})\n", ids[1])
    );
    assert_eq!(s.ok(["tag"]), format!("v2 {}\n", ids[0]));
    let err = s.fail(["tag", "-d", "v1"]);
    assert!(err.contains("no tag named v1"), "{err}");
}

#[test]
fn diff_patch_shows_old_and_new_values() {
    let s = Store::init();
    s.ok(["put", "a", "one"]);
    s.ok(["put", "b", "old\nlines"]);
    s.ok(["tag", "before"]);
    s.ok(["rm", "a"]);
    s.ok(["put", "b", "new"]);
    s.ok(["put", "c", ""]);
    assert_eq!(s.ok(["diff", "before", "main"]), "D a\nM b\nA c\n");
    assert_eq!(
        s.ok(["diff", "-p", "before", "main"]),
        "D a\n-one\nM b\n-old\n-lines\n+new\nA c\n+(empty value)\n"
    );
    assert_eq!(
        s.ok(["diff", "--patch", "before", "main"]),
        s.ok(["diff", "-p", "before", "main"])
    );
    // The JSON says `removed` for the `D` of the text, as the help says.
    let changes = json(&s.ok(["diff", "before", "main", "--json"]));
    assert_eq!(changes[0]["change"], "removed");
    let help = stdout(&s.run(["diff", "--help"]));
    assert!(help.contains("`D key` (removed in B)"), "{help}");
}

#[test]
fn colour_follows_the_color_option_and_no_color() {
    let s = store_with_keys(2);
    s.ok(["tag", "t"]);
    let coloured = s.ok(["--color=always", "log", "--oneline"]);
    assert!(coloured.contains("\x1b[33m"), "{coloured:?}");
    let coloured = s.ok(["diff", "--color", "t~1", "t"]);
    assert!(coloured.contains("\x1b[32mA\x1b[0m k2"), "{coloured:?}");
    // Not a terminal: no colour by default, nor with never.
    for args in [
        &["log"][..],
        &["--color=never", "log"],
        &["--color=auto", "diff", "t~1", "t"],
    ] {
        let out = s.ok(args);
        assert!(!out.contains('\x1b'), "{args:?}: {out:?}");
    }
    let bad = s.run(["--color=sometimes", "log"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn switch_sets_the_branch_later_commands_use() {
    let s = Store::init();
    s.ok(["put", "a", "1"]);
    let status = s.ok(["status"]);
    assert!(
        status.starts_with("on branch main (from the default)\n"),
        "{status}"
    );
    assert!(s
        .ok(["switch", "-c", "dev"])
        .contains("switched to branch dev"));
    s.ok(["put", "b", "2"]);
    assert_eq!(s.ok(["ls"]), "a\nb\n");
    assert_eq!(s.ok(["--branch", "main", "ls"]), "a\n");
    let status = s.ok(["status"]);
    assert!(
        status.starts_with("on branch dev (from kvgit switch)\n"),
        "{status}"
    );
    assert!(s.ok(["branch"]).contains("* dev"));
    // KVGIT_BRANCH beats the stored branch; --branch beats both.
    let env = kvgit()
        .env("KVGIT_BRANCH", "main")
        .args(["--store".as_ref(), s.path.as_os_str(), "status".as_ref()])
        .output()
        .expect("runs");
    assert!(
        stdout(&env).starts_with("on branch main (from KVGIT_BRANCH)"),
        "{}",
        stdout(&env)
    );
    let flag = kvgit()
        .env("KVGIT_BRANCH", "main")
        .arg("--store")
        .arg(&s.path)
        .args(["--branch", "dev", "ls"])
        .output()
        .expect("runs");
    assert_eq!(stdout(&flag), "a\nb\n");
    // Switching to a missing branch changes nothing.
    let err = s.fail(["switch", "nope"]);
    assert!(err.contains("no branch named nope"), "{err}");
    assert_eq!(s.ok(["switch", "main"]).lines().count(), 1);
    assert_eq!(s.ok(["ls"]), "a\n");
    let status = json(&s.ok(["status", "--json"]));
    assert_eq!(status["branch"], "main");
    assert_eq!(status["keys"], 1);
}

#[test]
fn gc_dry_run_lists_and_changes_nothing() {
    let s = store_with_keys(6);
    let head = s.head("main");
    let out = s.ok(["gc", "--high", "40", "--dry-run"]);
    assert!(
        out.starts_with("gc would drop 3 of 6 keys (30 B of values)"),
        "{out}"
    );
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        ["k1\t10", "k2\t10", "k3\t10"]
    );
    assert_eq!(s.head("main"), head);
    assert_eq!(s.ok(["ls"]).lines().count(), 6);
    let plan = json(&s.ok(["gc", "--high", "40", "--dry-run", "--json"]));
    assert_eq!(plan["dropped"].as_array().map(Vec::len), Some(3));
    assert_eq!(plan["dropped_bytes"], 30);
}

#[test]
fn gc_off_a_terminal_needs_yes_and_prints_the_undo() {
    let s = store_with_keys(6);
    let head = s.head("main");
    let err = s.fail(["gc", "--high", "40"]);
    assert!(err.contains("gc would drop 3 keys"), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(s.head("main"), head);
    assert_eq!(s.ok(["ls"]).lines().count(), 6);

    let out = s.ok(["gc", "--high", "40", "--yes"]);
    assert!(
        out.contains("dropped 3 keys (30 B of values), kept 3 keys"),
        "{out}"
    );
    let undo = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("kvgit "))
        .expect("an undo command");
    assert!(
        undo.ends_with(&format!("--branch main reset {head}")),
        "{undo}"
    );
    assert_eq!(s.ok(["ls"]), "k4\nk5\nk6\n");
    // The printed command undoes it.
    let words: Vec<&str> = undo.split(' ').collect();
    let run = kvgit().args(&words).output().expect("runs");
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(s.ok(["ls"]).lines().count(), 6);
    assert_eq!(s.head("main"), head);
    // Nothing to drop: no question, no --yes needed.
    let out = s.ok(["gc", "--high", "1M"]);
    assert!(out.contains("nothing to do"), "{out}");
    let report = json(&s.ok(["gc", "--high", "40", "--yes", "--json"]));
    assert_eq!(report["status"], "rebased");
    assert_eq!(report["dropped"].as_array().map(Vec::len), Some(3));
    assert!(report["undo"].as_str().is_some_and(|u| u.contains(&head)));
}

#[test]
fn sweep_and_stats_speak_human_units() {
    let s = store_with_keys(6);
    s.ok(["gc", "--high", "40", "--yes"]);
    let out = s.ok(["sweep"]);
    assert!(out.starts_with("freed "), "{out}");
    assert!(out.contains(" B)") || out.contains("KiB"), "{out}");
    assert!(
        out.contains("size on disk ") && out.contains("KiB ->"),
        "{out}"
    );
    assert!(!out.contains(" bytes"), "{out}");
    assert!(out.contains("`kvgit compact` gives it back"), "{out}");
    let report = json(&s.ok(["sweep", "--json"]));
    assert!(report["size_after"].as_u64().is_some());
    assert_eq!(report["objects_freed"], 0);
    let stats = s.ok(["stats"]);
    assert!(
        stats.contains("size on disk") && stats.contains("the backend's own"),
        "{stats}"
    );
    assert!(json(&s.ok(["stats", "--json"]))["size_on_disk"]
        .as_u64()
        .is_some());
}

#[test]
fn json_on_ls_merge_gc_sweep_and_verify() {
    let s = Store::init();
    s.ok(["put", "a", "1"]);
    s.ok(["put", "b/c", "2"]);
    assert_eq!(
        json(&s.ok(["ls", "--json"])),
        serde_json::json!(["a", "b/c"])
    );
    assert_eq!(
        json(&s.ok(["ls", "b/", "--json"])),
        serde_json::json!(["b/c"])
    );
    s.ok(["branch", "x"]);
    s.ok(["--branch", "x", "put", "d", "3"]);
    let merged = json(&s.ok(["merge", "x", "--json"]));
    assert_eq!(merged["strategy"], "fast-forward");
    assert_eq!(merged["head"], s.head("main").as_str());
    let merged = json(&s.ok(["merge", "x", "--json"]));
    assert_eq!(merged["strategy"], "up-to-date");
    let verify = json(&s.ok(["verify", "--json"]));
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["problems"], serde_json::json!([]));
    assert!(json(&s.ok(["sweep", "--dry-run", "--json"]))["dry_run"] == true);
    assert_eq!(
        json(&s.ok(["gc", "--high", "1M", "--json"]))["status"],
        "below_high_water"
    );
}

#[test]
fn ls_waits_for_a_store_another_process_holds() {
    let s = store_with_keys(1);
    // On the stored current branch, which `ls --wait` reads after the wait.
    s.ok(["switch", "-c", "dev"]);
    // `import -` holds the store while it reads standard input.
    let mut holder = kvgit()
        .arg("--store")
        .arg(&s.path)
        .args(["import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("import starts");
    // Readers polling too often could keep the import from its exclusive
    // open: let it in first.
    std::thread::sleep(Duration::from_millis(1000));
    let deadline = Instant::now() + Duration::from_secs(20);
    let err = loop {
        if let Some(status) = holder.try_wait().expect("import status") {
            let mut why = String::new();
            let _ =
                std::io::Read::read_to_string(holder.stderr.as_mut().expect("stderr"), &mut why);
            panic!("the import ended early ({status}): {why}");
        }
        let out = s.run(["ls"]);
        if !out.status.success() {
            break stderr(&out);
        }
        assert!(Instant::now() < deadline, "the import never held the store");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(err.contains("locked by another process"), "{err}");
    assert!(err.contains(&format!("process {}", holder.id())), "{err}");
    assert!(err.contains("--wait"), "{err}");
    let path = s.path.clone();
    let waiter = std::thread::spawn(move || {
        kvgit()
            .arg("--store")
            .arg(&path)
            .args(["ls", "--wait=30"])
            .output()
            .expect("ls runs")
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut input = holder.stdin.take().expect("stdin");
    input
        .write_all(b"{\"key\": \"k2\", \"value\": \"v\"}\n")
        .expect("written");
    drop(input);
    assert!(holder.wait().expect("import ends").success());
    let out = waiter.join().expect("the waiter");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "k1\nk2\n");
}

/// Runs `kvgit --store S edit KEY` with `editor` as $EDITOR.
fn edit(s: &Store, key: &str, editor: &str) -> Output {
    kvgit()
        .env_remove("VISUAL")
        .env_remove("KVGIT_EDITOR")
        .env("EDITOR", editor)
        .arg("--store")
        .arg(&s.path)
        .args(["edit", key])
        .output()
        .expect("runs")
}

#[test]
fn edit_commits_a_changed_value_and_aborts_otherwise() {
    let s = Store::init();
    s.ok(["put", "conf/a.json", "{\"x\": 1}"]);
    let head = s.head("main");
    let out = edit(&s, "conf/a.json", "sed -i s/1/2/");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.ok(["get", "conf/a.json"]), "{\"x\": 2}");
    assert_eq!(
        s.ok(["log", "--oneline", "-n", "1"])
            .split_once(' ')
            .map(|x| x.1),
        Some("edit conf/a.json\n")
    );
    let edited = s.head("main");
    assert_ne!(edited, head);
    // Unchanged, failing editor, empty file: nothing committed.
    assert!(stdout(&edit(&s, "conf/a.json", "true")).contains("unchanged"));
    let out = edit(&s, "conf/a.json", "false");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("edit aborted"), "{}", stderr(&out));
    let out = edit(&s, "conf/a.json", "truncate -s 0");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("empty value"), "{}", stderr(&out));
    assert_eq!(s.head("main"), edited);
    // A new key starts empty.
    let out = edit(&s, "new", "sh -c 'printf hello > \"$1\"' sh");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.ok(["get", "new"]), "hello");
    // $KVGIT_EDITOR, then $VISUAL, then $EDITOR: the first set is the one run.
    let chosen = |vars: &[(&str, &str)]| {
        let mut c = kvgit();
        c.env_remove("VISUAL")
            .env_remove("KVGIT_EDITOR")
            .env_remove("EDITOR");
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c
            .arg("--store")
            .arg(&s.path)
            .args(["edit", "who"])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr(&out));
        s.ok(["get", "who"])
    };
    let writes = |who: &str| format!("sh -c 'printf {who} > \"$1\"' sh");
    let (k, v, e) = (writes("kvgit"), writes("visual"), writes("editor"));
    assert_eq!(chosen(&[("EDITOR", &e)]), "editor");
    assert_eq!(chosen(&[("EDITOR", &e), ("VISUAL", &v)]), "visual");
    assert_eq!(
        chosen(&[("EDITOR", &e), ("VISUAL", &v), ("KVGIT_EDITOR", &k)]),
        "kvgit"
    );
}

#[test]
fn completions_source_cleanly_in_bash_and_man_renders() {
    let s = Store::new();
    let script = s.ok(["completions", "bash"]);
    assert!(script.contains("_kvgit"));
    let file = tempfile::NamedTempFile::new().expect("a file");
    std::fs::write(file.path(), &script).expect("written");
    let bash = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source {}; complete -p kvgit",
            file.path().display()
        ))
        .output()
        .expect("bash runs");
    assert!(bash.status.success(), "{}", stderr(&bash));
    assert!(stderr(&bash).is_empty(), "{}", stderr(&bash));
    assert!(
        stdout(&bash).contains("-F _kvgit kvgit"),
        "{}",
        stdout(&bash)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(!s.ok(["completions", shell]).is_empty());
    }
    let page = s.ok(["man"]);
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{page:.200}"
    );
    assert!(page.contains(".TH kvgit 1"), "{page:.300}");
    assert!(
        page.contains("kvgit tag") && page.contains("kvgit gc"),
        "missing commands"
    );
    // No store is created or read by either.
    assert!(!s.path.exists());
}

#[test]
fn the_readme_says_how_to_install_and_the_demo_honours_cargo_target_dir() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    assert!(readme.contains("cargo install --path crates/cli"));
    let demo = std::fs::read_to_string(root.join("scripts/demo.sh")).expect("demo");
    assert!(demo.contains("${CARGO_TARGET_DIR:-target}/release/kvgit"));
    assert!(!demo.contains("./target/release/kvgit"));
}

#[test]
fn on_a_terminal_gc_asks_colour_is_on_and_progress_shows_counts() {
    let s = store_with_keys(6);
    let bin = env!("CARGO_BIN_EXE_kvgit");
    let store = s.path.display().to_string();
    let head = s.head("main");
    let gc = format!("{bin} --store {store} gc --high 40");
    // "n": nothing dropped.
    let Some((out, text)) = in_pty(&gc, "n\n", &[]) else {
        return;
    };
    assert!(text.contains("gc will drop 3 of 6 keys"), "{text:?}");
    assert!(text.contains("Drop them? [y/N]"), "{text:?}");
    assert!(text.contains("gc not confirmed"), "{text:?}");
    assert_eq!(out.status.code(), Some(1), "{text:?}");
    assert_eq!(s.head("main"), head);
    // The spinner names the counts.
    assert!(text.contains("gc main: 6 keys, 60 B of values"), "{text:?}");
    // "y": dropped, and the undo is printed.
    let (out, text) = in_pty(&gc, "y\n", &[]).expect("script");
    assert!(out.status.success(), "{text:?}");
    assert!(text.contains("dropped 3 keys"), "{text:?}");
    assert!(
        text.contains(&format!("--branch main reset {head}")),
        "{text:?}"
    );
    assert_eq!(s.ok(["ls"]), "k4\nk5\nk6\n");
    // Colour on a terminal; none with NO_COLOR or --color=never.
    let log = format!("{bin} --store {store} log --oneline");
    let (_, text) = in_pty(&log, "", &[]).expect("script");
    assert!(text.contains("\x1b[33m"), "{text:?}");
    let (_, text) = in_pty(&log, "", &[("NO_COLOR", "1")]).expect("script");
    assert!(!text.contains("\x1b[33m"), "{text:?}");
    let (_, text) = in_pty(&format!("{log} --color=never"), "", &[]).expect("script");
    assert!(!text.contains("\x1b[33m"), "{text:?}");
}

/// `kvgit compact` gives the space of swept objects back (issue #20: "offer
/// a `kvgit compact` if the backend can reclaim space") and keeps the data.
#[test]
fn compact_after_sweep_gives_space_back_and_keeps_the_data() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("store");
    let kv = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvgit"))
            .arg("--store")
            .arg(&store)
            .args(args)
            .env_remove("KVGIT_BRANCH")
            .output()
            .expect("kvgit runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    kv(&["init"]);
    let mut lines = String::new();
    for i in 0..2000 {
        lines.push_str(&format!(
            "{{\"key\":\"k{i:05}\",\"value\":\"{}\"}}\n",
            "x".repeat(200)
        ));
    }
    let file = dir.path().join("data.jsonl");
    std::fs::write(&file, lines).expect("write the import");
    kv(&["branch", "scratch"]);
    kv(&[
        "--branch",
        "scratch",
        "import",
        file.to_str().expect("utf-8 path"),
    ]);
    kv(&["put", "kept", "yes"]);
    kv(&["branch", "-d", "scratch"]);
    kv(&["sweep"]);
    let report: serde_json::Value =
        serde_json::from_str(&kv(&["compact", "--json"])).expect("json");
    assert_eq!(report["compacted"], true, "{report}");
    let before = report["bytes_before"].as_u64().expect("bytes_before");
    let after = report["bytes_after"].as_u64().expect("bytes_after");
    assert!(after < before, "{report}");
    assert_eq!(kv(&["get", "kept"]), "yes");
    kv(&["verify"]);
}
