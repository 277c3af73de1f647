//! The command line when the disk is full, the store directory is someone
//! else's, `init` dies part way, or the store's files are damaged,
//! unreadable or read-only.
//!
//! Every child runs with a time limit and is killed when it passes it, so
//! a hang fails the test instead of hanging CI. Tests that mount a tmpfs
//! need root; where mounting is not permitted they fail if `CI` is set and
//! otherwise say why they skipped.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long any one command may take.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs `kvgit --store STORE args...` with `stdin` and extra environment
/// variables, killing it after [`LIMIT`].
fn run_env<S: AsRef<OsStr>>(
    store: &Path,
    args: &[S],
    stdin: &[u8],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvgit"));
    cmd.arg("--store").arg(store).env_remove("KVGIT_STORE");
    for a in args {
        cmd.arg(a);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_limited(cmd, stdin)
}

fn run_limited(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvgit starts");
    let mut input = child.stdin.take().expect("a stdin pipe");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut stdout = child.stdout.take().expect("a stdout pipe");
    let mut stderr = child.stderr.take().expect("a stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for kvgit") {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kvgit {:?} did not finish within {LIMIT:?}", cmd.get_args());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

fn run<S: AsRef<OsStr>>(store: &Path, args: &[S]) -> Output {
    run_env(store, args, b"", &[])
}

/// Runs a command that must succeed; its standard output.
fn ok<S: AsRef<OsStr>>(store: &Path, args: &[S]) -> String {
    String::from_utf8(ok_raw(store, args)).expect("UTF-8 output")
}

/// Runs a command that must succeed; its standard output as bytes.
fn ok_raw<S: AsRef<OsStr>>(store: &Path, args: &[S]) -> Vec<u8> {
    let out = run(store, args);
    assert!(
        out.status.success(),
        "kvgit {:?} failed: {}",
        shown(args),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs a command that must fail with one `kvgit: ...` line; that line.
fn fail<S: AsRef<OsStr>>(store: &Path, args: &[S]) -> String {
    one_error(args, &run(store, args))
}

fn one_error<S: AsRef<OsStr>>(args: &[S], out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "kvgit {:?} should fail; stderr: {stderr}",
        shown(args)
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("kvgit: "), "{stderr:?}");
    assert!(!stderr.contains("internal error"), "{stderr:?}");
    stderr.trim_end().to_string()
}

fn shown<S: AsRef<OsStr>>(args: &[S]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

/// `len` bytes that do not compress, from `seed`.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn head(store: &Path) -> String {
    ok(store, &["log", "-n", "1"])[..64].to_string()
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("list") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let bytes = fs::read(entry.path()).expect("read");
                out.push((entry.path(), bytes, meta.modified().expect("mtime")));
            }
        }
    }
    out.sort();
    out
}

/// A tmpfs mounted for a test, unmounted when dropped (also when the test
/// fails).
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount` takes it: "8m"); `None` when
    /// that is not permitted here (the test then skips, or fails under CI).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("mnt");
        fs::create_dir(&path).expect("mkdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { _dir: dir, path }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "this test needs to mount a tmpfs (as root): {why}"
                );
                eprintln!("skipped: cannot mount a tmpfs here (needs root): {why}");
                None
            }
        }
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "remount {options}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).output();
    }
}

/// Puts 200 KB values into `store` until a put fails (at most 100); the
/// failing put's error line and the number of keys put.
fn fill(store: &Path, env: &[(&str, &str)]) -> (String, usize) {
    for i in 0..100usize {
        let value = pseudo_random(200_000, i as u64 + 2);
        let key = format!("k{i:03}");
        let before = head(store);
        let start = Instant::now();
        let out = run_env(store, &["put", &key], &value, env);
        if !out.status.success() {
            let err = one_error(&["put", &key], &out);
            // "At once": well within the limit, not after a hang.
            assert!(start.elapsed() < Duration::from_secs(15), "{err}");
            assert_eq!(
                head(store),
                before,
                "a failed put leaves the refs unchanged"
            );
            return (err, i);
        }
    }
    panic!("100 puts of 200 KB did not fill an 8 MB disk");
}

/// What a full disk must not break, on a store of `engine` (as `init
/// --engine` takes it): the put fails at once with the message and
/// changes no ref; reads work while the disk is full; everything works
/// once there is room again.
fn full_disk_case(engine: &str, env: &[(&str, &str)]) {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let store = fs.path.join("store");
    ok(&store, &["init", "--engine", engine]);
    let (err, keys) = fill(&store, env);
    assert_eq!(
        err,
        format!(
            "kvgit: no space left on device (writing to {})",
            store.display()
        )
    );
    assert!(keys > 0, "some puts fit");
    // While full: the read-only commands work.
    let listed = ok(&store, &["ls"]);
    assert_eq!(listed.lines().count(), keys);
    assert_eq!(ok_raw(&store, &["get", "k000"]).len(), 200_000);
    assert_eq!(ok(&store, &["export"]).lines().count(), keys);
    assert!(ok(&store, &["verify"]).starts_with("ok: 1 refs"));
    ok(&store, &["log"]);
    // Another put of that size while full fails the same way. When the
    // store itself met the full disk, it may have given back the space it
    // had claimed (sled: the segment it abandoned; the journal: the zeros
    // it could not finish writing ahead), so the second put may fit: then
    // it must be there, whole, like any acknowledged put.
    let value = pseudo_random(200_000, 1);
    let out = run_env(&store, &["put", "x"], &value, env);
    let mut expected = keys;
    if out.status.success() && !env.is_empty() {
        assert_eq!(ok_raw(&store, &["get", "x"]), value);
        expected += 1;
    } else {
        let again = one_error(&["put"], &out);
        assert!(again.contains("no space left on device"), "{again}");
    }
    // Room again: everything works.
    fs.remount("size=64m");
    ok(&store, &["put", "after", "room"]);
    assert_eq!(ok(&store, &["get", "after"]), "room");
    assert_eq!(ok(&store, &["ls"]).lines().count(), expected + 1);
    assert!(ok(&store, &["verify"]).starts_with("ok: 1 refs"));
}

#[test]
fn a_full_disk_fails_the_put_at_once_and_reads_still_work() {
    full_disk_case("journal", &[]);
    full_disk_case("sled", &[]);
}

#[test]
fn a_full_disk_hit_inside_the_journal_fails_the_put_at_once_too() {
    // Without kvgit's free-space check, the journal's own writes run into
    // the full disk.
    full_disk_case("journal", &[("KVGIT_TEST_NO_SPACE_CHECK", "1")]);
}

#[test]
fn a_full_disk_hit_inside_sled_fails_the_put_at_once_too() {
    // Without kvgit's free-space check, sled itself runs into the full
    // disk (where sled 0.34 used to hang forever in its flush).
    full_disk_case("sled", &[("KVGIT_TEST_NO_SPACE_CHECK", "1")]);
}

#[test]
fn commands_never_touch_a_directory_that_is_not_a_store() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let foreign = dir.path().join("mine");
    fs::create_dir(&foreign).expect("mkdir");
    fs::write(foreign.join("db"), b"my own database, not kvgit's").expect("write");
    let before = snapshot(&foreign);
    let commands: &[&[&str]] = &[
        &["ls"],
        &["get", "k"],
        &["log"],
        &["verify"],
        &["put", "k", "v"],
        &["stats"],
        &["export"],
        &["init"],
    ];
    for args in commands {
        let err = fail(&foreign, args);
        assert!(
            err.contains(&foreign.display().to_string()),
            "{args:?}: {err}"
        );
        if args[0] == "init" {
            assert!(err.contains("not an empty directory"), "{err}");
        } else {
            assert!(err.contains("no store at"), "{args:?}: {err}");
        }
        assert_eq!(snapshot(&foreign), before, "{args:?} changed the directory");
    }
    // init creates a store in an empty or a missing directory only.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    ok(&empty, &["init"]);
    ok(&empty, &["put", "k", "v"]);
    let missing = dir.path().join("a/b/missing");
    ok(&missing, &["init"]);
    assert_eq!(ok(&missing, &["ls"]), "");
}

#[test]
fn read_only_commands_create_nothing_in_a_store() {
    read_only_commands_create_nothing("journal");
    read_only_commands_create_nothing("sled");
}

fn read_only_commands_create_nothing(engine: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("store");
    ok(&store, &["init", "--engine", engine]);
    ok(&store, &["put", "k", "v"]);
    // Every file's name and bytes (sled's snapshot `snap.*` included: the
    // writing command refreshed it when it closed the store, so the first
    // read after a write creates none).
    let contents = |p: &Path| {
        let mut all: Vec<(String, Option<Vec<u8>>)> = fs::read_dir(p)
            .expect("list")
            .map(|e| {
                let e = e.expect("entry");
                let name = e.file_name().to_string_lossy().into_owned();
                (name, fs::read(e.path()).ok())
            })
            .collect();
        all.sort();
        all
    };
    let before = contents(&store);
    if engine == "sled" {
        assert!(before.iter().any(|(n, _)| n.starts_with("snap.")));
    }
    for args in [
        &["ls"][..],
        &["get", "k"],
        &["log"],
        &["show", "main"],
        &["history", "k"],
        &["diff", "main", "main"],
        &["stats"],
        &["export"],
        &["verify"],
    ] {
        ok(&store, args);
        let after = contents(&store);
        let names =
            |c: &[(String, Option<Vec<u8>>)]| c.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&after),
            names(&before),
            "{args:?} created or removed a file"
        );
        assert!(after == before, "{args:?} changed a file's bytes");
    }
}

/// The points where a debug build's `init` can be made to die
/// (`KVGIT_TEST_FAIL_AT`), in order, for each engine.
const INIT_STEPS: &[(&str, &[&str])] = &[
    (
        "journal",
        &[
            "init:dir",
            "init:lock",
            "init:begun",
            "init:journal",
            "init:complete",
            "init:flushed",
            "init:renamed",
        ],
    ),
    (
        "sled",
        &[
            "init:dir",
            "init:lock",
            "init:begun",
            "init:sled",
            "init:complete",
            "init:flushed",
            "init:renamed",
        ],
    ),
];

#[test]
fn an_init_killed_at_any_step_leaves_no_store_or_a_complete_one() {
    for (engine, step) in INIT_STEPS
        .iter()
        .flat_map(|(engine, steps)| steps.iter().map(move |step| (*engine, *step)))
    {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = dir.path().join("store");
        let out = run_env(
            &store,
            &["init", "--engine", engine],
            b"",
            &[("KVGIT_TEST_FAIL_AT", step)],
        );
        assert!(
            !out.status.success(),
            "{engine} {step}: init should have died"
        );
        let ls = run(&store, &["ls"]);
        if ls.status.success() {
            // Complete: its branch is there and verifies.
            assert!(ok(&store, &["verify"]).starts_with("ok: 1 refs"), "{step}");
            assert!(fail(&store, &["init"]).contains("a store already exists"));
        } else {
            // Absent: every command says so and how to go on.
            for args in [&["ls"][..], &["verify"], &["put", "k", "v"]] {
                let err = fail(&store, args);
                assert!(
                    err.contains("no store at") && err.contains("kvgit init"),
                    "{step} {args:?}: {err}"
                );
            }
            ok(&store, &["init"]);
        }
        ok(&store, &["put", "k", "v"]);
        assert_eq!(ok(&store, &["get", "k"]), "v", "{step}");
        assert!(ok(&store, &["verify"]).starts_with("ok: 1 refs"), "{step}");
    }
}

#[test]
fn a_store_of_an_earlier_build_without_its_branch_is_reported_damaged() {
    // What an `init` of a build without markers, killed after sled made
    // its files, left: a sled store without refs and without a marker.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("store");
    drop(
        kvgit::advanced::SledBackend::open(&store, kvgit::SledOptions::default())
            .expect("a store opens"),
    );
    fs::remove_file(store.join("kvgit.store")).expect("remove the marker");
    let err = fail(&store, &["verify"]);
    assert!(err.contains("incomplete (damaged)"), "{err}");
    let err = fail(&store, &["ls"]);
    assert!(
        err.contains("no branch") && err.contains("kvgit init"),
        "{err}"
    );
    // init makes a store of it.
    ok(&store, &["init"]);
    assert!(ok(&store, &["verify"]).starts_with("ok: 1 refs"));
}

#[test]
fn a_store_of_an_earlier_build_is_read_as_is_and_marked_when_written() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("store");
    ok(&store, &["init", "--engine", "sled"]);
    ok(&store, &["put", "k", "v"]);
    fs::remove_file(store.join("kvgit.store")).expect("remove the marker");
    assert_eq!(ok(&store, &["get", "k"]), "v");
    assert!(
        !store.join("kvgit.store").exists(),
        "a read does not mark it"
    );
    assert!(fail(&store, &["init"]).contains("a store already exists"));
    ok(&store, &["put", "k2", "v2"]);
    assert!(store.join("kvgit.store").exists(), "a write marks it");
    assert_eq!(ok(&store, &["get", "k"]), "v");
}

#[test]
fn a_missing_page_file_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("store");
    ok(&store, &["init", "--engine", "sled"]);
    let big = pseudo_random(300_000, 7);
    let out = run_env(&store, &["put", "big"], &big, &[]);
    assert!(out.status.success());
    ok(&store, &["put", "small", "x"]);
    let blobs = store.join("blobs");
    let mut removed = 0;
    for entry in fs::read_dir(&blobs).expect("list blobs") {
        fs::remove_file(entry.expect("entry").path()).expect("remove");
        removed += 1;
    }
    assert!(removed > 0, "a 300 KB value makes a sled page file");
    let err = fail(&store, &["get", "big"]);
    assert!(
        err.contains(&blobs.display().to_string())
            && err.contains("missing")
            && err.contains("restore it from a backup"),
        "{err}"
    );
    // verify still walks the store and reports the unreadable value among
    // its problems, instead of stopping at the first read error.
    let out = run_env(&store, &["verify"], b"", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot read object") && err.contains(&blobs.display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("verify found") && err.contains("problems"),
        "a report, not a bare error: {err}"
    );
}

#[test]
fn a_damaged_conf_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("store");
    ok(&store, &["init", "--engine", "sled"]);
    ok(&store, &["put", "k", "v"]);
    let conf = store.join("conf");
    let mut bytes = fs::read(&conf).expect("read conf");
    bytes[3] ^= 0x20;
    fs::write(&conf, &bytes).expect("write conf");
    for args in [&["get", "k"][..], &["put", "k", "w"], &["verify"]] {
        let err = fail(&store, args);
        assert!(
            err.contains(&conf.display().to_string())
                && err.contains("damaged")
                && !err.contains("0.29"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(fs::read(&conf).expect("read conf"), bytes, "left as it was");
}

#[test]
fn a_store_on_a_read_only_mount_can_be_read() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let store = fs.path.join("store");
    ok(&store, &["init"]);
    ok(&store, &["put", "k", "v"]);
    fs.remount("ro");
    let before = snapshot(&store);
    assert_eq!(ok(&store, &["get", "k"]), "v");
    assert_eq!(ok(&store, &["ls"]), "k\n");
    assert!(ok(&store, &["verify"]).starts_with("ok: 1 refs"));
    let err = fail(&store, &["put", "k", "w"]);
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(snapshot(&store), before);
    fs.remount("rw");
    ok(&store, &["put", "k", "w"]);
    assert_eq!(ok(&store, &["get", "k"]), "w");
}

/// Runs kvgit as the user `nobody`, if this process may switch to it.
fn as_nobody(store: &Path, args: &[&str]) -> Option<Output> {
    let probe = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .output();
    if !matches!(probe, Ok(ref out) if out.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test needs root and setpriv to run kvgit as another user"
        );
        eprintln!("skipped: cannot run a command as another user here");
        return None;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_kvgit"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("KVGIT_STORE");
    Some(run_limited(cmd, b""))
}

#[test]
fn another_users_store_is_named_as_unreadable_or_read_without_writing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // nobody must reach the store's parent.
    let mut perms = fs::metadata(dir.path()).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(dir.path(), perms).expect("chmod");
    let store = dir.path().join("store");
    ok(&store, &["init"]);
    ok(&store, &["put", "k", "v"]);

    // Readable by others (the default modes): reads work, writes say why not.
    let Some(out) = as_nobody(&store, &["get", "k"]) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"v");
    let out = as_nobody(&store, &["put", "k", "w"]).expect("ran before");
    let err = one_error(&["put"], &out);
    assert!(
        err.contains("read-only") && err.contains("may not write"),
        "{err}"
    );
    assert!(!err.contains("kvgit init"), "{err}");

    // Not readable by others.
    let mut perms = fs::metadata(&store).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    fs::set_permissions(&store, perms).expect("chmod");
    for args in [&["ls"][..], &["put", "k", "w"]] {
        let out = as_nobody(&store, args).expect("ran before");
        let err = one_error(args, &out);
        assert!(
            err.contains(&store.display().to_string())
                && err.contains("ermission denied")
                && err.contains("owner"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("run kvgit init"), "{err}");
    }
    assert_eq!(ok(&store, &["get", "k"]), "v");
}
