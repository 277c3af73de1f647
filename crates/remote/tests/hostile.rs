//! Hostile or broken peers: a scripted fake server (its answers written in
//! advance), and a hand-driven client pushing to a real server. Each gets a
//! clear error naming what was wrong, and nothing moves or is stored.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use kvgit_core::{Commit, CommitSpec, ObjectId, Repo};
use kvgit_remote::protocol::{
    encode_hello, encode_message, write_raw_frame, Message, RefUpdate, WireObject, MAX_FRAME,
    PROTOCOL_VERSION,
};
use kvgit_remote::{clone, fetch, Connection, Error, FetchOptions, ServeOptions};

/// A connection to a fake server that answers with `frames` (raw payloads,
/// greeting first), whatever it is asked.
fn scripted(frames: &[Vec<u8>]) -> Connection {
    let mut wire = Vec::new();
    for f in frames {
        write_raw_frame(&mut wire, f.len() as u32, f).unwrap();
    }
    Connection::new(std::io::Cursor::new(wire), std::io::sink()).unwrap()
}

fn hello() -> Vec<u8> {
    encode_hello(PROTOCOL_VERSION)
}

fn msg(m: Message) -> Vec<u8> {
    encode_message(&m)
}

fn refs(main: ObjectId) -> Vec<u8> {
    msg(Message::Refs(vec![("heads/main".into(), main)]))
}

/// A real commit (and its objects) from a scratch store.
fn sample() -> (Repo, ObjectId) {
    let repo = store_with(50, 8);
    let head = repo.get_ref("heads/main").unwrap().unwrap();
    (repo, head)
}

fn wire(repo: &Repo, id: ObjectId) -> WireObject {
    WireObject {
        id,
        bytes: repo.object_bytes(&id).unwrap(),
    }
}

fn assert_untouched(local: &Repo) {
    assert!(local.backend().list_refs("").unwrap().is_empty());
    assert_eq!(object_count(local), 0);
}

fn fetch_err(frames: &[Vec<u8>]) -> (Repo, Error) {
    let local = Repo::memory();
    let mut conn = scripted(frames);
    let err = fetch(&local, &mut conn, "origin", &[], FetchOptions::default()).unwrap_err();
    (local, err)
}

#[test]
fn an_object_whose_bytes_do_not_match_its_id_is_refused_and_not_stored() {
    let (repo, head) = sample();
    let other = repo
        .write_commit(&repo.empty_tree().unwrap(), &CommitSpec::default())
        .unwrap();
    let lying = WireObject {
        id: head,
        bytes: repo.object_bytes(&other).unwrap(),
    };
    let (local, err) = fetch_err(&[
        hello(),
        refs(head),
        msg(Message::Objects(vec![lying])),
        msg(Message::ObjectsEnd),
    ]);
    assert!(
        matches!(&err, Error::BadObject { id, reason } if *id == head && reason.contains("hash")),
        "{err}"
    );
    assert_untouched(&local);
}

#[test]
fn a_tree_node_with_a_wrong_id_is_refused() {
    let (repo, head) = sample();
    let commit = repo.read_commit(&head).unwrap();
    let other = store_with(51, 8);
    let other_root = other
        .read_commit(&other.get_ref("heads/main").unwrap().unwrap())
        .unwrap()
        .root;
    let (local, err) = fetch_err(&[
        hello(),
        refs(head),
        msg(Message::Objects(vec![wire(&repo, head)])),
        msg(Message::ObjectsEnd),
        msg(Message::Objects(vec![WireObject {
            id: commit.root,
            bytes: other.object_bytes(&other_root).unwrap(),
        }])),
        msg(Message::ObjectsEnd),
    ]);
    assert!(
        matches!(&err, Error::BadObject { id, .. } if *id == commit.root),
        "{err}"
    );
    assert_untouched(&local);
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_read() {
    let mut wire = Vec::new();
    let h = hello();
    write_raw_frame(&mut wire, h.len() as u32, &h).unwrap();
    wire.extend_from_slice(&(MAX_FRAME + 1).to_be_bytes());
    let local = Repo::memory();
    let mut conn = Connection::new(std::io::Cursor::new(wire), std::io::sink()).unwrap();
    let err = fetch(&local, &mut conn, "origin", &[], FetchOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("over the limit")),
        "{err}"
    );
    // The largest length a peer can write sizes nothing either.
    let mut wire = Vec::new();
    write_raw_frame(&mut wire, h.len() as u32, &h).unwrap();
    wire.extend_from_slice(&MAX_FRAME.to_be_bytes());
    wire.extend_from_slice(b"short");
    let mut conn = Connection::new(std::io::Cursor::new(wire), std::io::sink()).unwrap();
    let err = fetch(&local, &mut conn, "origin", &[], FetchOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("truncated")),
        "{err}"
    );
    assert_untouched(&local);
}

#[test]
fn a_truncated_frame_is_an_error_naming_it() {
    let mut wire = Vec::new();
    let h = hello();
    write_raw_frame(&mut wire, h.len() as u32, &h).unwrap();
    write_raw_frame(&mut wire, 100, &[0u8; 10]).unwrap();
    let local = Repo::memory();
    let mut conn = Connection::new(std::io::Cursor::new(wire), std::io::sink()).unwrap();
    let err = fetch(&local, &mut conn, "origin", &[], FetchOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("truncated") && r.contains("10 of 100")),
        "{err}"
    );
    // Cut inside the length prefix.
    let mut wire = Vec::new();
    write_raw_frame(&mut wire, h.len() as u32, &h).unwrap();
    wire.extend_from_slice(&[0, 0]);
    let mut conn = Connection::new(std::io::Cursor::new(wire), std::io::sink()).unwrap();
    let err = fetch(&local, &mut conn, "origin", &[], FetchOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("truncated")),
        "{err}"
    );
}

#[test]
fn an_undecodable_message_is_an_error() {
    let (local, err) = fetch_err(&[hello(), vec![200, 1, 2, 3]]);
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("undecodable")),
        "{err}"
    );
    assert_untouched(&local);
}

#[test]
fn a_peer_speaking_another_version_is_named() {
    let (_, err) = fetch_err(&[encode_hello(PROTOCOL_VERSION + 1)]);
    assert!(
        matches!(err, Error::Version { theirs, ours } if theirs == PROTOCOL_VERSION + 1 && ours == PROTOCOL_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn a_peer_that_is_not_kvgit_is_named() {
    let local = Repo::memory();
    let mut conn = Connection::new(
        std::io::Cursor::new(b"SSH-2.0-OpenSSH_9.6\r\nWelcome!\n".to_vec()),
        std::io::sink(),
    )
    .unwrap();
    let err = fetch(&local, &mut conn, "origin", &[], FetchOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotKvgit(_)), "{err}");
    let (_, err) = fetch_err(&[]);
    assert!(matches!(err, Error::NotKvgit(_)), "{err}");
}

#[test]
fn a_ref_naming_a_commit_never_sent_moves_nothing() {
    let (_, head) = sample();
    let (local, err) = fetch_err(&[hello(), refs(head), msg(Message::ObjectsEnd)]);
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("did not send wanted commit")),
        "{err}"
    );
    assert_untouched(&local);
}

#[test]
fn a_tree_never_sent_moves_nothing() {
    let (repo, head) = sample();
    let (local, err) = fetch_err(&[
        hello(),
        refs(head),
        msg(Message::Objects(vec![wire(&repo, head)])),
        msg(Message::ObjectsEnd),
        msg(Message::ObjectsEnd),
    ]);
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("did not send requested object")),
        "{err}"
    );
    assert_untouched(&local);
}

#[test]
fn a_parent_never_sent_moves_nothing() {
    let repo = Repo::memory();
    put(&repo, "main", "a", "1");
    let head = put(&repo, "main", "a", "2");
    let (local, err) = fetch_err(&[
        hello(),
        refs(head),
        msg(Message::Objects(vec![wire(&repo, head)])),
        msg(Message::ObjectsEnd),
    ]);
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("a parent of")),
        "{err}"
    );
    assert_untouched(&local);
}

#[test]
fn objects_not_asked_for_are_refused() {
    let (repo, head) = sample();
    let stray = repo
        .write_commit(&repo.empty_tree().unwrap(), &CommitSpec::default())
        .unwrap();
    let (local, err) = fetch_err(&[
        hello(),
        refs(head),
        msg(Message::Objects(vec![
            wire(&repo, head),
            wire(&repo, stray),
        ])),
        msg(Message::ObjectsEnd),
    ]);
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("no wanted commit reaches")),
        "{err}"
    );
    let root = repo.read_commit(&head).unwrap().root;
    let (local2, err) = fetch_err(&[
        hello(),
        refs(head),
        msg(Message::Objects(vec![wire(&repo, head)])),
        msg(Message::ObjectsEnd),
        msg(Message::Objects(vec![
            wire(&repo, root),
            wire(&repo, stray),
        ])),
        msg(Message::ObjectsEnd),
    ]);
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("not asked for")),
        "{err}"
    );
    assert_untouched(&local);
    assert_untouched(&local2);
}

#[test]
fn an_invalid_ref_name_from_the_peer_is_refused() {
    let (_, head) = sample();
    let (_, err) = fetch_err(&[
        hello(),
        msg(Message::Refs(vec![("heads/../x".into(), head)])),
    ]);
    assert!(
        matches!(&err, Error::Protocol(r) if r.contains("invalid ref")),
        "{err}"
    );
}

#[test]
fn the_peer_reporting_an_error_is_shown() {
    let (_, err) = fetch_err(&[hello(), msg(Message::Error("disk on fire".into()))]);
    assert!(
        matches!(&err, Error::Remote(r) if r == "disk on fire"),
        "{err}"
    );
}

#[test]
fn a_push_with_a_bad_object_moves_nothing_on_the_server() {
    let server = store_with(20, 4);
    let before = server.get_ref("heads/main").unwrap();
    // The client claims a commit and then sends other bytes for it.
    let scratch = Repo::memory();
    let tree = scratch
        .build_tree(vec![(b"z".to_vec(), b"1".to_vec())])
        .unwrap();
    let fake = scratch
        .write_commit(
            &tree,
            &CommitSpec {
                message: "x".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let mut conn = Connection::in_process(server.clone(), ServeOptions::default()).unwrap();
    let ch = conn.channel();
    ch.send(&Message::Push(vec![RefUpdate {
        name: "heads/main".into(),
        expected: before,
        new: fake,
        force: true,
    }]))
    .unwrap();
    let Message::WantCommits { wants, .. } = ch.recv().unwrap() else {
        panic!("the server asks for commits")
    };
    assert_eq!(wants, vec![fake]);
    let wrong = Commit {
        message: "y".into(),
        ..scratch.read_commit(&fake).unwrap()
    };
    ch.send(&Message::Objects(vec![WireObject {
        id: fake,
        bytes: wrong.encode(),
    }]))
    .unwrap();
    ch.send(&Message::ObjectsEnd).unwrap();
    let err = ch.recv().unwrap_err();
    assert!(
        matches!(&err, Error::Remote(r) if r.contains("bad object") && r.contains("hash")),
        "{err}"
    );
    drop(conn);
    assert_eq!(server.get_ref("heads/main").unwrap(), before);
    assert_verifies(&server);
    assert!(!server.backend().has_object(&fake).unwrap());
}

#[test]
fn a_clone_from_a_server_that_hangs_up_mid_greeting_is_an_error() {
    let local = Repo::memory();
    let mut wire = Vec::new();
    wire.extend_from_slice(&[0, 0, 0]);
    let mut conn = Connection::new(std::io::Cursor::new(wire), std::io::sink()).unwrap();
    let err = clone(&local, &mut conn, "origin", FetchOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotKvgit(_)), "{err}");
}
