//! Edges of the facade's API found in review (issue #15): namespace paths
//! and listings, typed reads of the wrong type, and the conflict message.

use kvgit::{Db, DefaultCodec, Error, Postcard};

type R = Result<(), Error>;

/// Keys read as bytes, shown as text.
fn strs(keys: impl Iterator<Item = kvgit::Result<Vec<u8>>>) -> Vec<String> {
    keys.map(|k| String::from_utf8(k.expect("a key")).expect("UTF-8"))
        .collect()
}

// ---- Namespaces (#15 item 6) ----

#[test]
fn namespace_children_are_sorted_as_strings() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    main.put("ns/a-b/y", "1")?;
    main.put("ns/a/x", "2")?;
    main.put("ns/a/z", "3")?;
    main.put("ns/a0/w", "4")?;
    // The keys sort `a-b/` < `a/` < `a0/` ('-' < '/' < '0'); the children
    // are names, sorted as strings.
    let ns = main.namespace("ns");
    assert_eq!(ns.children()?, vec!["a", "a-b", "a0"]);
    assert_eq!(main.namespace("").children()?, vec!["ns"]);
    assert_eq!(
        strs(ns.descendant_keys()?),
        vec!["a-b/y", "a/x", "a/z", "a0/w"]
    );
    assert_eq!(ns.keys_str()?, Vec::<String>::new());
    Ok(())
}

#[test]
fn empty_namespace_path_is_the_root_view() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    let root = main.namespace("");
    assert_eq!(root.path(), "");
    root.put("k", "v")?;
    assert_eq!(main.get("k")?.as_deref(), Some(&b"v"[..]));
    assert_eq!(main.get("/k")?, None);
    assert_eq!(root.full_key("k"), b"k");
    main.put("dir/x", "1")?;
    assert_eq!(root.keys_str()?, vec!["k"]);
    assert_eq!(root.children()?, vec!["dir"]);
    assert_eq!(root.len()?, 1);
    assert_eq!(main.namespace("/").path(), "");
    // Nested: "" is the namespace itself.
    let dir = main.namespace("dir");
    assert_eq!(dir.namespace("").path(), "dir");
    assert_eq!(dir.namespace("").keys_str()?, vec!["x"]);
    assert_eq!(root.namespace("dir").keys_str()?, vec!["x"]);
    Ok(())
}

#[test]
fn empty_segments_in_namespace_paths_are_dropped() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    assert_eq!(main.namespace("a//b/").path(), "a/b");
    assert_eq!(main.namespace("/a/b").path(), "a/b");
    assert_eq!(main.namespace("a").namespace("/b//c/").path(), "a/b/c");
    main.namespace("a//b").put("k", "v")?;
    assert_eq!(main.get("a/b/k")?.as_deref(), Some(&b"v"[..]));
    assert_eq!(main.get("a//b/k")?, None);
    // A key with an empty segment is a key, not a child named "".
    main.put("a//odd", "1")?;
    let a = main.namespace("a");
    assert_eq!(a.children()?, vec!["b"]);
    assert_eq!(a.keys_str()?, Vec::<String>::new());
    assert_eq!(strs(a.descendant_keys()?), vec!["/odd", "b/k"]);
    Ok(())
}

#[test]
fn tx_namespace_of_the_root_view_writes_plain_keys() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    let mut tx = main.transaction()?;
    main.namespace("").within(&mut tx).put("k", "v");
    main.namespace("x//").within(&mut tx).put("k", "w");
    tx.commit()?;
    assert_eq!(main.get("k")?.as_deref(), Some(&b"v"[..]));
    assert_eq!(main.get("x/k")?.as_deref(), Some(&b"w"[..]));
    assert_eq!(
        strs(main.namespace("").descendant_keys()?),
        vec!["k", "x/k"]
    );
    Ok(())
}

#[test]
fn merge_fn_for_the_root_view_covers_every_key() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    main.namespace("")
        .set_merge_fn_all(kvgit::merge::LastWriterWins);
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    a.put("k", "1").put("d/k", "1");
    b.put("k", "2").put("d/k", "2");
    b.commit()?;
    a.commit()?;
    // Theirs (the head b committed) wins.
    assert_eq!(main.get("k")?.as_deref(), Some(&b"2"[..]));
    assert_eq!(main.get("d/k")?.as_deref(), Some(&b"2"[..]));
    Ok(())
}

// ---- Typed reads (#15 item 7) ----

/// Asserts `r` is a codec error naming `key` and `type_name`.
fn assert_codec_error<T: std::fmt::Debug>(r: Result<Option<T>, Error>, key: &str, ty: &str) {
    match r {
        Err(e @ Error::Codec { .. }) => {
            let shown = e.to_string();
            let Error::Codec { key: k, message } = e else {
                unreachable!()
            };
            assert_eq!(k, key);
            assert!(message.contains(ty), "{message}");
            assert!(shown.contains(key) && shown.contains(ty), "{shown}");
        }
        other => panic!("expected a codec error for {key} as {ty}, got {other:?}"),
    }
}

#[test]
fn typed_read_of_the_wrong_type_fails_naming_key_and_type() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    main.put_as("greeting", "hello")?;
    // Postcard reads a u64 from the first byte (the length, 5) and used to
    // ignore the rest: Some(5). Every typed read path refuses now.
    assert_codec_error(main.get_as::<u64>("greeting"), "greeting", "u64");
    assert_codec_error(
        main.snapshot()?.get_as::<u64>("greeting"),
        "greeting",
        "u64",
    );
    assert_codec_error(
        main.get_with::<_, u64>(&Postcard, "greeting"),
        "greeting",
        "u64",
    );
    let tx = main.transaction()?;
    assert_codec_error(tx.get_as::<u64>("greeting"), "greeting", "u64");
    assert_codec_error(tx.get_as::<bool>("greeting"), "greeting", "bool");
    main.namespace("ns").put_as("g", "hello")?;
    let ns = main.namespace("ns");
    assert_codec_error(ns.get_as::<u64>("g"), "ns/g", "u64");
    let mut tx = main.transaction()?;
    assert_codec_error(ns.within(&mut tx).get_as::<u64>("g"), "ns/g", "u64");
    // Raw bytes: postcard read 'h' (104) as a one-byte varint.
    main.put("raw", "hello")?;
    assert_codec_error(main.get_as::<u64>("raw"), "raw", "u64");
    // The right type still reads.
    assert_eq!(main.get_as::<String>("greeting")?.as_deref(), Some("hello"));
    main.put_as("n", &104u64)?;
    assert_eq!(main.get_as::<u64>("n")?, Some(104));
    // A u64 is not a u8 followed by more bytes either.
    main.put_as("big", &300u64)?;
    assert_codec_error(main.get_as::<u8>("big"), "big", "u8");
    Ok(())
}

#[test]
fn typed_read_with_trailing_bytes_fails_with_json_too() -> R {
    let db = Db::builder().codec(DefaultCodec::Json).memory();
    let main = db.branch("main")?;
    main.put("n", "5 6")?;
    assert_codec_error(main.get_as::<u64>("n"), "n", "u64");
    main.put("n", " 5\n")?;
    assert_eq!(main.get_as::<u64>("n")?, Some(5));
    Ok(())
}

#[test]
#[allow(deprecated)]
fn typed_merge_function_treats_a_value_of_another_type_as_a_conflict() -> R {
    let db = Db::memory();
    db.merge_fns().set("n", kvgit::merge::typed_counter());
    let main = db.branch("main")?;
    main.put_as("n", "hello")?;
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    a.put_as("n", "abc")?;
    b.put_as("n", "xyz")?;
    a.commit()?;
    let err = b.commit().expect_err("strings are not counters");
    let conflicts = err.conflicts().expect("a conflict");
    assert_eq!(conflicts.len(), 1);
    let reason = conflicts[0].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("i64"), "{reason}");
    assert!(reason.contains("left over"), "{reason}");
    Ok(())
}

// ---- The conflict message (#15 item 17) ----

#[test]
fn blind_concurrent_puts_explain_the_conflict_and_the_remedies() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    a.put("same", "1");
    b.put("same", "2");
    a.commit()?;
    let err = b.commit().expect_err("a conflict");
    let keys: Vec<&[u8]> = err
        .conflicts()
        .expect("conflicts")
        .iter()
        .map(|c| c.key.as_slice())
        .collect();
    assert_eq!(keys, vec![&b"same"[..]]);
    let shown = err.to_string();
    assert!(
        shown.starts_with("merge conflict on 1 key: same"),
        "{shown}"
    );
    for part in [
        "another writer committed",
        "since this transaction began",
        "merge function",
        "Branch::update",
        "retry",
    ] {
        assert!(shown.contains(part), "no {part:?} in: {shown}");
    }
    // The value committed first stands.
    assert_eq!(main.get("same")?.as_deref(), Some(&b"1"[..]));
    Ok(())
}

#[test]
fn conflict_message_lists_every_key() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    a.put("x", "1").put("y", "1");
    b.put("x", "2").put("y", "2");
    a.commit()?;
    let shown = b.commit().expect_err("conflicts").to_string();
    assert!(
        shown.starts_with("merge conflict on 2 keys: x, y\n"),
        "{shown}"
    );
    Ok(())
}
