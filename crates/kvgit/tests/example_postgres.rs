//! Runs `examples/postgres.rs` on a PostgreSQL database of its own (the
//! server comes from `crates/postgres/tests/common`: `KVGIT_TEST_PG_URL`,
//! or a throwaway cluster it starts; never skipped).

#![cfg(unix)]

#[path = "../../postgres/tests/common/mod.rs"]
mod common;

// `main` reads the URL from the environment or the arguments; the test
// passes it to `run`.
#[allow(dead_code)]
#[path = "../examples/postgres.rs"]
mod example;

#[test]
fn example_postgres_runs_on_a_fresh_database() {
    let db = common::TestDb::new("example");
    if let Err(e) = example::run(&db.url) {
        panic!("example postgres failed: {e}");
    }
    // Again on the same store: it goes on from what is there.
    if let Err(e) = example::run(&db.url) {
        panic!("example postgres failed on the second run: {e}");
    }
}
