//! The sled backend's handling of directories that are not (complete)
//! stores, of read-only opens, and the wording of its errors.

use std::fs;
use std::path::Path;

use kvgit_core::{Backend, CasOutcome, Durability, Error, ObjectId, SledBackend, SledOptions};

fn open(path: &Path) -> SledBackend {
    SledBackend::open(path, SledOptions::default()).expect("the store opens")
}

fn read_only(path: &Path) -> kvgit_core::Result<SledBackend> {
    SledBackend::open_read_only(path, SledOptions::default())
}

#[test]
fn a_directory_with_other_files_is_never_opened_or_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    fs::write(path.join("db"), b"someone else's").unwrap();
    let mtime = fs::metadata(path.join("db")).unwrap().modified().unwrap();
    assert!(!SledBackend::exists(path));
    for result in [
        SledBackend::open(path, SledOptions::default()),
        read_only(path),
        SledBackend::create(path, SledOptions::default()),
    ] {
        match result {
            Err(Error::NotAStore { detail, .. }) => assert!(detail.contains("db"), "{detail}"),
            other => panic!("expected NotAStore, got {other:?}"),
        }
    }
    let names: Vec<_> = fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["db"]);
    assert_eq!(fs::read(path.join("db")).unwrap(), b"someone else's");
    assert_eq!(
        fs::metadata(path.join("db")).unwrap().modified().unwrap(),
        mtime
    );
}

#[test]
fn read_only_open_needs_a_store_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    assert!(matches!(read_only(&path), Err(Error::NotAStore { .. })));
    assert!(!path.exists(), "a read-only open creates nothing");
    let id = ObjectId::hash(b"x");
    {
        let b = open(&path);
        b.put_objects(vec![(id, b"x".to_vec())]).unwrap();
        b.cas_ref("heads/main", None, Some(&id)).unwrap();
    }
    let b = read_only(&path).unwrap();
    assert!(b.is_read_only());
    assert_eq!(b.get_ref("heads/main").unwrap(), Some(id));
    assert_eq!(b.get_object(&id).unwrap().as_deref(), Some(&b"x"[..]));
    let refused = [
        b.put_objects(vec![(ObjectId::hash(b"y"), b"y".to_vec())]),
        b.put_meta(vec![(b"k".to_vec(), Some(b"v".to_vec()))]),
        b.delete_objects(&[id]),
    ];
    for r in refused {
        assert!(matches!(r, Err(Error::ReadOnly { .. })), "{r:?}");
    }
    assert!(matches!(
        b.cas_ref("heads/main", Some(&id), None),
        Err(Error::ReadOnly { .. })
    ));
    b.flush(Durability::Durable).unwrap();
    drop(b);
    // Still there and writable.
    let b = open(&path);
    assert_eq!(
        b.cas_ref("heads/main", Some(&id), None).unwrap(),
        CasOutcome::Swapped
    );
}

#[test]
fn a_create_not_completed_leaves_no_store_and_is_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let b = SledBackend::create(&path, SledOptions::default()).unwrap();
        let id = ObjectId::hash(b"x");
        b.put_objects(vec![(id, b"x".to_vec())]).unwrap();
        b.cas_ref("heads/main", None, Some(&id)).unwrap();
        // Dropped without complete_init: as if the process died.
    }
    assert!(!SledBackend::exists(&path));
    match SledBackend::check_exists(&path) {
        Err(Error::NotAStore { detail, .. }) => assert!(detail.contains("interrupted"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(read_only(&path), Err(Error::NotAStore { .. })));
    // Creating again starts from nothing.
    let b = SledBackend::create(&path, SledOptions::default()).unwrap();
    assert_eq!(b.list_refs("").unwrap(), vec![]);
    b.complete_init().unwrap();
    drop(b);
    assert!(SledBackend::exists(&path));
    assert!(matches!(
        SledBackend::create(&path, SledOptions::default()),
        Err(Error::StoreExists { .. })
    ));
}

#[test]
fn a_damaged_conf_is_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(open(&path));
    let conf = path.join("conf");
    fs::write(&conf, b"garbage").unwrap();
    for result in [
        SledBackend::open(&path, SledOptions::default()),
        read_only(&path),
    ] {
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains(&conf.display().to_string())
                && err.contains("damaged")
                && err.contains("backup"),
            "{err}"
        );
    }
    assert_eq!(fs::read(&conf).unwrap(), b"garbage");
}

#[test]
fn a_damaged_marker_or_a_newer_format_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(open(&path));
    fs::write(path.join("kvgit.store"), "kvgit store\nformat 9\n").unwrap();
    let err = read_only(&path).unwrap_err().to_string();
    assert!(err.contains("format 9"), "{err}");
    fs::write(path.join("kvgit.store"), "junk").unwrap();
    let err = SledBackend::open(&path, SledOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("marker") && err.contains("damaged"), "{err}");
}

#[test]
fn i_o_errors_say_what_on_which_path_and_what_to_do() {
    let missing = Error::IoAt {
        op: "read".into(),
        path: "/s/blobs/12".into(),
        cause: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
    .to_string();
    assert!(
        missing.starts_with("cannot read /s/blobs/12: ")
            && missing.contains("restore it from a backup"),
        "{missing}"
    );
    let denied = Error::IoAt {
        op: "list the directory".into(),
        path: "/s".into(),
        cause: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    }
    .to_string();
    assert!(
        denied.contains("/s") && denied.contains("owner"),
        "{denied}"
    );
    assert_eq!(
        Error::NoSpace { path: "/s".into() }.to_string(),
        "no space left on device (writing to /s)"
    );
}

#[test]
fn an_unlistable_directory_is_a_permission_error_not_a_missing_store() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(open(&path));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    // Root may list it anyway; then there is nothing to check here.
    let denied = fs::read_dir(&path).is_err();
    let result = SledBackend::check_exists(&path);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    if denied {
        match result {
            Err(e @ Error::IoAt { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&path.display().to_string()), "{text}");
            }
            other => panic!("{other:?}"),
        }
    } else {
        result.unwrap();
    }
}
