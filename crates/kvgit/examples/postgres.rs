//! A PostgreSQL store: one store shared by many threads, processes and
//! hosts. The code is the same as for a store on disk; only the argument
//! of `Db::open` changes.
//!
//! ```text
//! KVGIT_PG_URL=postgres://user:password@localhost/mydb \
//!     cargo run -p kvgit --example postgres
//! cargo run -p kvgit --example postgres -- postgres://user:password@localhost/mydb
//! ```
//!
//! kvgit creates its tables in that database on first use. This example
//! writes to the branch `examples/postgres` only. Start it in several
//! terminals at once: the counter never loses an increment, because
//! commits that race are merged.

use std::thread;

use kvgit::merge::Counter;
use kvgit::Db;

const THREADS: u64 = 4;
const PER_THREAD: u64 = 10;

/// Runs the example (`tests/examples.rs` calls it too).
pub fn main() -> kvgit::Result<()> {
    let url = std::env::var("KVGIT_PG_URL")
        .ok()
        .or_else(|| std::env::args().nth(1))
        .filter(|u| !u.trim().is_empty());
    match url {
        Some(url) => run(&url),
        None => {
            println!("This example needs a PostgreSQL database. Run it with");
            println!("    KVGIT_PG_URL=postgres://user:password@host/dbname cargo run -p kvgit --example postgres");
            println!("or");
            println!(
                "    cargo run -p kvgit --example postgres -- postgres://user:password@host/dbname"
            );
            println!("kvgit creates its tables in that database on first use.");
            Ok(())
        }
    }
}

/// Runs the example on the store at `url`.
pub fn run(url: &str) -> kvgit::Result<()> {
    // A bad URL, a refused connection or missing permissions give a
    // one-line error (with the password hidden).
    let db = Db::open(url)?;
    println!("opened {}", kvgit::advanced::redact_url(url));

    let branch = db.branch("examples/postgres")?;
    db.merge_fns().set("visits", Counter);
    let before = read_count(&branch)?;

    // Threads here; separate processes (or hosts) behave the same, since
    // the branch head lives in the database and moves by compare-and-swap.
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let branch = branch.clone();
            thread::spawn(move || -> kvgit::Result<()> {
                for _ in 0..PER_THREAD {
                    let mut tx = branch.transaction()?;
                    let n = read_tx_count(&tx)?;
                    tx.put("visits", (n + 1).to_string());
                    // A commit that lost the race merges with the winner:
                    // the counter adds both increments up.
                    tx.commit()?;
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("the thread did not panic")?;
    }

    let after = read_count(&branch)?;
    println!("visits: {before} -> {after}");
    // Other processes running this example at the same time add theirs.
    assert!(after >= before + THREADS * PER_THREAD);

    // Everything else works as on disk: history, typed values, branches...
    branch.put_as("last_run", &std::process::id())?;
    let commits = branch.log()?.take(5).count();
    println!("the last {commits} commits of {}:", branch.name());
    for info in branch.log()?.take(5) {
        let info = info?;
        println!("  {} {}", info.id.short(12), info.message());
    }
    Ok(())
}

fn read_count(branch: &kvgit::Branch) -> kvgit::Result<u64> {
    Ok(parse(branch.get("visits")?))
}

fn read_tx_count(tx: &kvgit::Transaction) -> kvgit::Result<u64> {
    Ok(parse(tx.get("visits")?))
}

fn parse(value: Option<Vec<u8>>) -> u64 {
    value
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
