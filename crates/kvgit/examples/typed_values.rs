//! Typed values with serde: store structs, collections and numbers, read
//! them back as the same types, choose the codec, and merge typed values.
//!
//! ```text
//! cargo run -p kvgit --example typed_values
//! ```
//!
//! Values are bytes in the store. The typed accessors (`put_as`, `get_as`,
//! ...) turn any serde type into bytes with a codec: postcard (compact
//! binary) by default, or JSON.

use std::collections::BTreeMap;

use kvgit::merge::{typed, Merged};
use kvgit::{Db, DefaultCodec, Error, Json};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
    tags: Vec<String>,
}

/// Runs the example (`tests/examples.rs` calls it too).
pub fn main() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;

    // A struct, a map and a number, each under its own key.
    let alice = User {
        name: "Alice".into(),
        age: 30,
        tags: vec!["admin".into()],
    };
    main.put_as("user/alice", &alice)?;
    let mut limits = BTreeMap::new();
    limits.insert("requests".to_string(), 100u32);
    main.put_as("limits", &limits)?;
    main.put_as("version", &3u64)?;

    // Read them back: say which type you expect.
    let read: Option<User> = main.get_as("user/alice")?;
    assert_eq!(read.as_ref(), Some(&alice));
    assert_eq!(
        main.get_as::<BTreeMap<String, u32>>("limits")?,
        Some(limits)
    );
    assert_eq!(main.get_as::<u64>("version")?, Some(3));
    // A missing key is `None`, not an error.
    assert_eq!(main.get_as::<User>("user/nobody")?, None);

    // Asking for the wrong type is an error that names the key and the
    // type; nothing is guessed.
    match main.get_as::<u64>("user/alice") {
        Err(Error::Codec { key, message }) => println!("as expected: {key}: {message}"),
        other => panic!("expected a codec error, got {other:?}"),
    }

    // The same in a transaction, where reads see staged writes.
    let mut tx = main.transaction()?;
    let mut user: User = tx.get_as("user/alice")?.expect("alice exists");
    user.age += 1;
    tx.put_as("user/alice", &user)?;
    assert_eq!(tx.get_as::<User>("user/alice")?.map(|u| u.age), Some(31));
    tx.commit()?;

    // JSON, for values other programs read: per call with `*_with`...
    let mut tx = main.transaction()?;
    tx.put_with(&Json, "config.json", &limits_json())?;
    tx.commit()?;
    let raw = main.get("config.json")?.expect("written");
    println!("stored as JSON: {}", String::from_utf8_lossy(&raw));
    let config: BTreeMap<String, u32> = main.get_with(&Json, "config.json")?.expect("written");
    assert_eq!(config["timeout"], 30);

    // ...or for a whole store, chosen when it is opened.
    let json_db = Db::builder().codec(DefaultCodec::Json).memory();
    let b = json_db.branch("main")?;
    b.put_as("user/alice", &alice)?;
    assert_eq!(
        b.get("user/alice")?.as_deref(),
        Some(&br#"{"name":"Alice","age":30,"tags":["admin"]}"#[..])
    );

    // Merging typed values: a merge function written as a closure over the
    // decoded values. Here, two writers who changed the same user keep the
    // higher age and the union of the tags.
    db.merge_fns().set(
        "user/alice",
        typed(
            |_key, _base, ours: Option<User>, theirs: Option<User>| match (ours, theirs) {
                (Some(mut a), Some(b)) => {
                    a.age = a.age.max(b.age);
                    for tag in b.tags {
                        if !a.tags.contains(&tag) {
                            a.tags.push(tag);
                        }
                    }
                    Merged::Value(a)
                }
                _ => Merged::Conflict("one side deleted the user".into()),
            },
        ),
    );
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    let mut u: User = a.get_as("user/alice")?.expect("alice exists");
    u.age = 40;
    a.put_as("user/alice", &u)?;
    let mut u: User = b.get_as("user/alice")?.expect("alice exists");
    u.tags.push("ops".into());
    b.put_as("user/alice", &u)?;
    a.commit()?;
    b.commit()?; // merges with a's commit instead of failing
    let merged: User = main.get_as("user/alice")?.expect("still there");
    assert_eq!(merged.age, 40);
    assert_eq!(merged.tags, vec!["admin".to_string(), "ops".to_string()]);
    println!("merged: {merged:?}");
    Ok(())
}

fn limits_json() -> BTreeMap<String, u32> {
    BTreeMap::from([("retries".to_string(), 3), ("timeout".to_string(), 30)])
}
