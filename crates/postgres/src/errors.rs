//! Turning PostgreSQL's errors into kvgit's: one line that says what went
//! wrong and, where there is one, what to do.

use std::str::FromStr;

use kvgit_core::Error;
use postgres::error::SqlState;

/// A failure to reach or use the server while opening the store.
pub(crate) fn connect_error(store: &str, e: &postgres::Error) -> Error {
    Error::Unavailable {
        store: store.to_string(),
        detail: describe(e),
    }
}

/// A failed statement on an open store: [`Error::MissingObject`] when a
/// commit's check of what it refers to found an object missing
/// (`kvgit_hold_objects`), [`Error::Storage`] otherwise.
pub(crate) fn storage(context: &str, e: &postgres::Error) -> Error {
    if let Some(id) = missing_object(e) {
        return Error::MissingObject(id);
    }
    Error::Storage(format!("PostgreSQL, {context}: {}", describe(e)))
}

/// The SQLSTATE `kvgit_hold_objects` raises for a missing object, whose id
/// (in hex) is the error's detail.
pub(crate) const MISSING_OBJECT: &str = "KV001";

fn missing_object(e: &postgres::Error) -> Option<kvgit_core::ObjectId> {
    let db = e.as_db_error()?;
    if db.code().code() != MISSING_OBJECT {
        return None;
    }
    db.detail()?.parse().ok()
}

/// True for errors after which the same statement may simply be run again:
/// a deadlock or serialization failure aborted it without effect.
pub(crate) fn is_retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// True if the role lacks a privilege.
pub(crate) fn is_permission(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
}

/// True if a relation is missing (the schema was never created).
pub(crate) fn is_undefined_table(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::UNDEFINED_FUNCTION
    )
}

/// One line: the server's message with its code, detail and hint, or the
/// client's error with its causes.
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            s.push_str("; ");
            s.push_str(detail);
        }
        if let Some(hint) = db.hint() {
            s.push_str("; hint: ");
            s.push_str(hint);
        }
        if let Some(advice) = advice(db.code()) {
            s.push_str("; ");
            s.push_str(advice);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

fn advice(code: &SqlState) -> Option<&'static str> {
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        Some(
            "the role needs CREATE on the schema the first time (kvgit creates its tables on \
             first use), then SELECT, INSERT, UPDATE and DELETE on them",
        )
    } else if *code == SqlState::INVALID_PASSWORD
        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        Some("check the user name and password in the URL")
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        Some("create the database first (CREATE DATABASE), or name an existing one in the URL")
    } else {
        None
    }
}

/// How to name the store in messages: rebuilt from the parsed settings
/// (user, hosts, ports, database), so a password can never appear,
/// wherever the URL carried it (user info, query, key=value form).
pub(crate) fn redact(url: &str) -> String {
    let Ok(config) = postgres::Config::from_str(url) else {
        return "<a PostgreSQL URL that does not parse (not shown: it may hold a password)>"
            .to_string();
    };
    let mut s = String::from("postgres://");
    if let Some(user) = config.get_user() {
        s.push_str(user);
        if config.get_password().is_some() {
            s.push_str(":***");
        }
        s.push('@');
    }
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match host {
            postgres::config::Host::Tcp(h) => s.push_str(h),
            postgres::config::Host::Unix(p) => s.push_str(&p.display().to_string()),
        }
        if let Some(port) = ports.get(i).or_else(|| ports.first()) {
            s.push_str(&format!(":{port}"));
        }
    }
    if let Some(db) = config.get_dbname() {
        s.push('/');
        s.push_str(db);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://kv:secret@db.example:5432/kv"),
            "postgres://kv:***@db.example:5432/kv"
        );
        assert_eq!(
            redact("postgresql://kv@localhost/kv?sslmode=disable"),
            "postgres://kv@localhost:5432/kv"
        );
        assert_eq!(
            redact("postgres://localhost/kv"),
            "postgres://localhost:5432/kv"
        );
        assert!(!redact("host=localhost user=kv password=secret dbname=kv").contains("secret"));
        assert!(!redact("postgres://kv:pw/x@h/db").contains("pw"));
    }
}
