//! Remotes over a real `ssh` to 127.0.0.1: the system ssh client runs
//! `kvgit serve --stdio PATH` on the other side.
//!
//! The server comes from `KVGIT_TEST_SSH_COMMAND` (the ssh client command,
//! with its key and options) and `KVGIT_TEST_SSH_URL`
//! (`ssh://USER@127.0.0.1:PORT`), which CI exports after starting
//! `scripts/sshd-test-server.sh`; when they are missing the tests start
//! that script themselves. Never skipped.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use common::Store;

/// The ssh client command and the URL prefix of the test server.
fn server() -> &'static (String, String) {
    static SERVER: OnceLock<(String, String)> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let (Ok(cmd), Ok(url)) = (
            std::env::var("KVGIT_TEST_SSH_COMMAND"),
            std::env::var("KVGIT_TEST_SSH_URL"),
        ) {
            return (cmd, url);
        }
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sshd-test-server.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .output()
            .expect("bash runs the sshd script");
        assert!(
            out.status.success(),
            "starting the test sshd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("UTF-8 details");
        let mut lines = text.lines();
        let cmd = lines.next().expect("the ssh command").to_string();
        let url = lines.next().expect("the URL prefix").to_string();
        (cmd, url)
    })
}

/// Runs kvgit on `store` with the ssh client and remote kvgit set.
fn ssh_run(store: &Store, args: &[&str]) -> std::process::Output {
    let (cmd, _) = server();
    Command::new(env!("CARGO_BIN_EXE_kvgit"))
        .arg("--store")
        .arg(&store.path)
        .arg("--remote-kvgit")
        .arg(env!("CARGO_BIN_EXE_kvgit"))
        .args(args)
        .env("KVGIT_SSH_COMMAND", cmd)
        .env_remove("KVGIT_STORE")
        .env_remove("KVGIT_BRANCH")
        .output()
        .expect("kvgit runs")
}

fn ssh_ok(store: &Store, args: &[&str]) -> String {
    let out = ssh_run(store, args);
    assert!(
        out.status.success(),
        "kvgit {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn url_of(store: &Store) -> String {
    format!("{}{}", server().1, store.path.display())
}

#[test]
fn clone_fetch_pull_push_over_ssh() {
    let origin = Store::init();
    origin.ok(["put", "a", "1"]);
    origin.ok(["put", "n", "10"]);
    let copy = Store::new();
    let path = copy.path.to_string_lossy().into_owned();
    ssh_ok(&copy, &["clone", &url_of(&origin), &path]);
    assert_eq!(copy.ok(["get", "a"]), "1");
    copy.ok(["verify"]);

    origin.ok(["put", "n", "15"]);
    copy.ok(["put", "n", "13"]);
    ssh_ok(&copy, &["pull", "--counter", "n"]);
    assert_eq!(copy.ok(["get", "n"]), "18");
    ssh_ok(&copy, &["push"]);
    assert_eq!(origin.ok(["get", "n"]), "18");

    origin.ok(["put", "x", "1"]);
    copy.ok(["put", "y", "1"]);
    let refused = ssh_run(&copy, &["push"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("pull first"));
    ssh_ok(&copy, &["push", "--force"]);
    assert_eq!(origin.ok(["get", "y"]), "1");
    origin.ok(["verify"]);

    let value = ssh_ok(
        &copy,
        &["get", "--remote", &url_of(&origin), "n", "--verify"],
    );
    assert_eq!(value, "18");
}

#[test]
fn a_missing_store_over_ssh_is_a_clear_error() {
    let nowhere = Store::new();
    let copy = Store::new();
    let path = copy.path.to_string_lossy().into_owned();
    let out = ssh_run(&copy, &["clone", &url_of(&nowhere), &path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no store at"), "{err}");
    assert!(!copy.path.exists(), "a failed clone leaves no store behind");
}
