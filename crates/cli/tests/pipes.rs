//! Every command with its standard output a pipe nobody reads
//! (`kvgit put k v | head -c0`): the command's work is done once, it ends
//! quietly with exit code 0 (as git does), and nothing panics (issue #15,
//! item 11).

mod common;

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

use common::Store;

/// The write end of a pipe whose read end is already closed: the stdin of
/// a process that has exited without reading it.
fn closed_pipe() -> Stdio {
    let mut reader = Command::new(env!("CARGO_BIN_EXE_kvgit"))
        .arg("--version")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kvgit starts");
    let write_end = reader.stdin.take().expect("a stdin pipe");
    assert!(reader.wait().expect("kvgit --version").success());
    Stdio::from(write_end)
}

/// Runs `kvgit --store PATH args...` with standard output closed and
/// `stdin` as standard input; checks it exits 0 quietly.
fn run_closed<I, S>(s: &Store, args: I, stdin: &[u8]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use std::io::Write;
    let args: Vec<S> = args.into_iter().collect();
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvgit"))
        .arg("--store")
        .arg(&s.path)
        .args(&args)
        .env_remove("KVGIT_STORE")
        .env_remove("KVGIT_BRANCH")
        .stdin(Stdio::piped())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvgit starts");
    let mut input = child.stdin.take().expect("a stdin pipe");
    let _ = input.write_all(stdin);
    drop(input);
    let out = child.wait_with_output().expect("kvgit runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "kvgit {shown:?} with stdout closed: {stderr}"
    );
    assert!(stderr.is_empty(), "kvgit {shown:?}: {stderr}");
    out
}

fn commits(s: &Store, branch: &str) -> usize {
    s.ok(["--branch", branch, "log"]).lines().count()
}

#[test]
fn write_commands_land_once_and_exit_0_when_stdout_is_closed() {
    let s = Store::init();
    s.ok(["put", "n", "1"]);

    run_closed(&s, ["put", "k", "v"], b"");
    assert_eq!(s.ok(["get", "k"]), "v");
    assert_eq!(commits(&s, "main"), 3);

    run_closed(&s, ["put", "from-stdin"], b"typed");
    assert_eq!(s.ok(["get", "from-stdin"]), "typed");
    assert_eq!(commits(&s, "main"), 4);

    run_closed(&s, ["rm", "from-stdin"], b"");
    assert!(s.ok(["ls"]).lines().all(|k| k != "from-stdin"));
    assert_eq!(commits(&s, "main"), 5);

    run_closed(&s, ["branch", "dev"], b"");
    let main_head = s.head("main");
    assert_eq!(s.head("dev"), main_head);

    // A merge commit (both sides changed) and a fast-forward.
    s.ok(["--branch", "dev", "put", "n", "5"]);
    s.ok(["put", "other", "x"]);
    run_closed(&s, ["merge", "dev", "--counter", "n"], b"");
    assert_eq!(s.ok(["get", "n"]), "5");
    assert_eq!(commits(&s, "main"), 8, "one merge commit");
    run_closed(&s, ["--branch", "dev", "merge", "main"], b"");
    assert_eq!(s.head("dev"), s.head("main"));

    let before = s.head("main");
    run_closed(&s, ["import", "-"], b"{\"key\": \"i\", \"value\": \"1\"}\n");
    assert_eq!(s.ok(["get", "i"]), "1");
    assert_eq!(commits(&s, "main"), 9, "one import commit");

    run_closed(&s, ["reset", &before], b"");
    assert_eq!(s.head("main"), before);

    run_closed(&s, ["branch", "-d", "dev"], b"");
    assert!(!s.ok(["branch"]).contains("dev"));
}

#[test]
fn read_commands_exit_0_when_stdout_is_closed() {
    let s = Store::init();
    for i in 0..50 {
        s.ok(["put", &format!("key{i}"), "value"]);
    }
    let head = s.head("main");
    for args in [
        &["get", "key1"][..],
        &["ls"],
        &["log"],
        &["log", "--graph"],
        &["log", "--json"],
        &["show", "main"],
        &["show", "main", "--json"],
        &["history", "key1"],
        &["history", "key1", "--json"],
        &["diff", &head[..8], "main"],
        &["diff", "main", "main", "--json"],
        &["branch", "--list"],
        &["branch", "--list", "--json"],
        &["stats"],
        &["stats", "--json"],
        &["export"],
        &["verify"],
    ] {
        run_closed(&s, args, b"");
    }
}

/// `gc`, `sweep` and `init` end quietly with exit code 0 on a closed
/// standard output too, after their work is done.
#[test]
fn gc_sweep_and_init_exit_0_when_stdout_is_closed() {
    let s = Store::new();
    run_closed(&s, ["init"], b"");
    s.ok(["put", "k", "v"]);
    run_closed(&s, ["gc", "--high", "1"], b"");
    run_closed(&s, ["sweep"], b"");
    s.ok(["verify"]);
}

/// Any other write error on standard output (here ENOSPC, from
/// /dev/full) is one line naming standard output and what to do, never a
/// panic or a `Debug` dump (issue #15, item 14).
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_on_stdout_is_one_line_saying_so() {
    let s = Store::init();
    s.ok(["put", "k", "v"]);
    for args in [&["log"][..], &["put", "k2", "v"], &["export"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = Command::new(env!("CARGO_BIN_EXE_kvgit"))
            .arg("--store")
            .arg(&s.path)
            .args(args)
            .env_remove("KVGIT_BRANCH")
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .output()
            .expect("kvgit runs");
        let shown: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let err = common::one_line_error(&shown, &out);
        assert!(
            err.starts_with("kvgit: cannot write to standard output: No space left on device")
                && err.contains("free some space")
                && !err.contains("StorageFull"),
            "{err}"
        );
    }
}
