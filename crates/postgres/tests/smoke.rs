//! First contact: open, create the schema, objects, refs, metadata.
mod common;

use kvgit_core::{Backend, CasOutcome, ObjectId};
use kvgit_postgres::PgBackend;

#[test]
fn open_and_round_trip() {
    let db = common::TestDb::new("smoke");
    let b = PgBackend::open(&db.url).expect("opens");
    let bytes = b"hello".to_vec();
    let id = ObjectId::hash(&bytes);
    b.put_objects(vec![(id, bytes.clone())]).unwrap();
    b.put_objects(vec![(id, bytes.clone())]).unwrap();
    assert_eq!(b.get_object(&id).unwrap(), Some(bytes));
    assert_eq!(
        b.cas_ref("heads/main", None, Some(&id)).unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(
        b.cas_ref("heads/main", None, Some(&id)).unwrap(),
        CasOutcome::Mismatch { actual: Some(id) }
    );
    assert_eq!(
        b.list_refs("heads/").unwrap(),
        vec![("heads/main".to_string(), id)]
    );
    b.put_meta(vec![
        (b"a".to_vec(), Some(b"1".to_vec())),
        (b"b".to_vec(), None),
    ])
    .unwrap();
    assert_eq!(
        b.scan_meta(b"").unwrap(),
        vec![(b"a".to_vec(), b"1".to_vec())]
    );
    drop(b);
    // Reopening finds the schema in place.
    let b = PgBackend::open(&db.url).expect("reopens");
    assert_eq!(b.get_ref("heads/main").unwrap(), Some(id));
    assert!(b.size_on_disk().unwrap() > 0);
}
