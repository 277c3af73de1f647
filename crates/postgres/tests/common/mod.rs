//! The PostgreSQL server the tests run against, and a fresh database per
//! test.
//!
//! The server is `KVGIT_TEST_PG_URL` when set (`.ci/run` sets it after
//! starting one); otherwise the tests start the project's throwaway cluster
//! themselves with `scripts/pg-test-server.sh start` (which installs
//! PostgreSQL from the system packages when it is missing). They never skip:
//! without a server they fail and say why.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The URL of the server's maintenance database (`.../postgres`).
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("KVGIT_TEST_PG_URL") {
            if !url.trim().is_empty() {
                return url.trim().to_string();
            }
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/pg-test-server.sh"
        );
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .env(
                "KVGIT_PG_FSYNC",
                std::env::var("KVGIT_PG_FSYNC").unwrap_or_else(|_| "off".into()),
            )
            .output()
            .expect("bash runs scripts/pg-test-server.sh");
        assert!(
            out.status.success(),
            "no PostgreSQL server for the tests: set KVGIT_TEST_PG_URL, or let \
             scripts/pg-test-server.sh start one (it said: {})",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("a UTF-8 URL")
            .trim()
            .to_string()
    })
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A database of its own for one test, dropped at the end.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new(hint: &str) -> TestDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "kvgit_t_{}_{}_{}",
            hint.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .to_lowercase();
        let mut admin = admin();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("the test server drops a leftover database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("the test server creates a database");
        let url = with_database(server_url(), &name);
        TestDb { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var_os("KVGIT_TEST_PG_KEEP").is_some() {
            return;
        }
        if let Ok(mut admin) = postgres::Client::connect(server_url(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A connection to the maintenance database.
pub fn admin() -> postgres::Client {
    postgres::Client::connect(server_url(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server {}: {e}", server_url()))
}
