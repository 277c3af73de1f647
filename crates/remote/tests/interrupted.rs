//! Transfers cut at some point (the connection drops): the receiving
//! store's refs are unchanged and it verifies, and a rerun receives only
//! what is still missing.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::thread::JoinHandle;

use common::*;
use kvgit_core::Repo;
use kvgit_remote::{fetch, pipe, push, serve, Connection, FetchOptions, PushOptions, ServeOptions};

/// A reader that ends after `left` bytes.
struct CutReader<R> {
    inner: R,
    left: usize,
}

impl<R: Read> Read for CutReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left);
        if n == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..n])?;
        self.left -= n;
        Ok(n)
    }
}

/// A connection to `server` whose incoming stream stops after `cut` bytes
/// (or whose outgoing one fails after `cut_out` bytes).
fn cut_connection(
    server: &Repo,
    cut_in: usize,
    cut_out: usize,
) -> (Connection, JoinHandle<kvgit_remote::Result<()>>) {
    let (client_w, server_r) = pipe();
    let (server_w, client_r) = pipe();
    let repo = server.clone();
    let handle =
        std::thread::spawn(move || serve(&repo, server_r, server_w, &ServeOptions::default()));
    let conn = Connection::new(
        CutReader {
            inner: client_r,
            left: cut_in,
        },
        Cutting {
            inner: client_w,
            left: cut_out,
        },
    )
    .unwrap();
    (conn, handle)
}

/// A writer that fails after `left` bytes.
struct Cutting<W> {
    inner: W,
    left: usize,
}

impl<W: Write> Write for Cutting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "cut"));
        }
        let n = buf.len().min(self.left);
        let n = self.inner.write(&buf[..n])?;
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn a_fetch_cut_anywhere_moves_no_ref_and_a_rerun_gets_only_the_rest() {
    let server = store_with(50_000, 60);
    let reference = Repo::memory();
    let mut conn = Connection::in_process(server.clone(), ServeOptions::default()).unwrap();
    let full = fetch(
        &reference,
        &mut conn,
        "origin",
        &[],
        FetchOptions::default(),
    )
    .unwrap();
    conn.close().unwrap();
    let total_wire = full.wire_bytes_received as usize;
    for fraction in [0.02, 0.3, 0.6, 0.97] {
        let local = Repo::memory();
        let cut = (total_wire as f64 * fraction) as usize;
        let (mut conn, server_thread) = cut_connection(&server, cut, usize::MAX);
        let err = fetch(&local, &mut conn, "origin", &[], FetchOptions::default()).unwrap_err();
        assert!(matches!(err, kvgit_remote::Error::Protocol(_)), "{err}");
        drop(conn);
        let _ = server_thread.join().unwrap();
        assert!(
            local.backend().list_refs("").unwrap().is_empty(),
            "cut at {fraction}"
        );
        assert_verifies(&local);
        let kept = object_count(&local);
        let mut conn = Connection::in_process(server.clone(), ServeOptions::default()).unwrap();
        let rerun = fetch(&local, &mut conn, "origin", &[], FetchOptions::default()).unwrap();
        conn.close().unwrap();
        assert_eq!(
            contents(&local, "remotes/origin/main"),
            contents(&server, "heads/main")
        );
        assert_verifies(&local);
        // Nothing kept is sent again but the internal nodes above it,
        // which are stored last.
        assert!(
            rerun.objects_received + kept <= full.objects_received + full.objects_received / 20,
            "cut at {fraction}: kept {kept}, rerun {}, full {}",
            rerun.objects_received,
            full.objects_received
        );
        // What arrived in whole frames before the cut was kept.
        if fraction > 0.5 {
            assert!(
                kept * 4 > full.objects_received,
                "cut at {fraction}: kept {kept} of {}",
                full.objects_received
            );
        }
    }
}

#[test]
fn a_push_cut_anywhere_moves_nothing_on_the_server() {
    let server = store_with(2000, 40);
    let local = Repo::memory();
    let mut conn = Connection::in_process(server.clone(), ServeOptions::default()).unwrap();
    kvgit_remote::clone(&local, &mut conn, "origin", FetchOptions::default()).unwrap();
    conn.close().unwrap();
    for i in 0..30 {
        put(&local, "main", &format!("new{i}"), &"v".repeat(300 + i));
    }
    let before = server.get_ref("heads/main").unwrap();
    for cut in [10, 200, 2_000, 8_000, 20_000] {
        let (mut conn, server_thread) = cut_connection(&server, usize::MAX, cut);
        let result = push(&local, &mut conn, "main", PushOptions::default());
        drop(conn);
        let served = server_thread.join().unwrap();
        if result.is_ok() {
            // The whole push fitted below the cut.
            continue;
        }
        assert!(served.is_err(), "cut at {cut}");
        assert_eq!(
            server.get_ref("heads/main").unwrap(),
            before,
            "cut at {cut}"
        );
        assert_verifies(&server);
    }
    let mut conn = Connection::in_process(server.clone(), ServeOptions::default()).unwrap();
    push(&local, &mut conn, "main", PushOptions::default()).unwrap();
    conn.close().unwrap();
    assert_eq!(
        contents(&server, "heads/main"),
        contents(&local, "heads/main")
    );
    assert_verifies(&server);
}
