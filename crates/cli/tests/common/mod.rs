//! Running the built `kvgit` binary on temporary stores.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A temporary directory with a store path inside it (not created until
/// `kvgit init` runs).
pub struct Store {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Store {
    /// A store path that does not exist yet.
    pub fn new() -> Store {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("store");
        Store { _dir: dir, path }
    }

    /// A store made with `kvgit init`.
    pub fn init() -> Store {
        let s = Store::new();
        s.ok(["init"]);
        s
    }

    /// Runs `kvgit --store PATH args...` with `stdin` as standard input.
    pub fn run_with<I, S>(&self, args: I, stdin: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kvgit"))
            .arg("--store")
            .arg(&self.path)
            .args(args)
            .env_remove("KVGIT_STORE")
            .env_remove("KVGIT_BRANCH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kvgit starts");
        let mut input = child.stdin.take().expect("a stdin pipe");
        // The command may exit without reading: a broken pipe is fine.
        let _ = input.write_all(stdin);
        drop(input);
        child.wait_with_output().expect("kvgit runs")
    }

    /// Runs `kvgit --store PATH args...` with empty standard input.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with(args, b"")
    }

    /// Runs a command that must succeed; its standard output.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kvgit {shown:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs a command that must fail with exit code 1 and exactly one line
    /// `kvgit: ...` on standard error; that line.
    pub fn fail<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let out = self.run(args);
        one_line_error(&shown, &out)
    }

    /// The head commit id of `branch`.
    pub fn head(&self, branch: &str) -> String {
        let out = self.ok(["--branch", branch, "log", "-n", "1"]);
        out[..64].to_string()
    }
}

/// Checks that `out` is a failure with one `kvgit: ...` line on standard
/// error and returns it.
pub fn one_line_error(what: &[String], out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "kvgit {what:?} should exit 1; stderr: {stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "kvgit {what:?}: one line on stderr, got {stderr:?}"
    );
    assert!(stderr.starts_with("kvgit: "), "{stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr:?}");
    stderr.trim_end().to_string()
}

/// Parses JSON output.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).expect("valid JSON")
}

/// Runs `command` (a shell line) in a pseudo-terminal through util-linux
/// `script`, feeding `input` after a moment; its output (the terminal's),
/// or `None` where `script` is not installed.
pub fn in_pty(command: &str, input: &str, env: &[(&str, &str)]) -> Option<(Output, String)> {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the terminal test needs util-linux `script` (apt-get install bsdutils)"
        );
        eprintln!("util-linux script is not installed: skipping the terminal test");
        return None;
    }
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", command, "/dev/null"])
        .env_remove("KVGIT_STORE")
        .env_remove("KVGIT_BRANCH")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("script runs");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_millis(1500));
    let _ = stdin.write_all(input.as_bytes());
    let _ = stdin.flush();
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let out = child.wait_with_output().expect("script ends");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Some((out, text))
}
