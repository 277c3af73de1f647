//! Pins the worked examples of `docs/FORMAT.md`: every hex string, object
//! id and hash value shown there is asserted here, built through the public
//! API, so the document cannot drift from the code. If one of these tests
//! fails, either the format changed (bump the format version and update
//! FORMAT.md) or the code has a bug.

use std::collections::BTreeMap;

use kvgit_core::object::{Commit, Node};
use kvgit_core::tree::chunker::{is_boundary, key_hash};
use kvgit_core::{CommitSpec, ObjectId, Repo, Tree};

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hex` with spaces and newlines removed, so expected strings can be laid
/// out like the document lays them out.
fn squash(spaced: &str) -> String {
    spaced.split_whitespace().collect()
}

/// Checks that the stored object `id` has exactly the bytes `expected_hex`
/// and that `id` is their blake3 hash and has the hex form `expected_id`.
fn check_object(repo: &Repo, id: &ObjectId, expected_hex: &str, expected_id: &str) -> Vec<u8> {
    let bytes = repo.object_bytes(id).expect("the object was written");
    assert_eq!(hex(&bytes), squash(expected_hex), "bytes of {id}");
    assert_eq!(
        ObjectId::hash(&bytes),
        *id,
        "the id is the hash of the bytes"
    );
    assert_eq!(id.to_hex(), expected_id);
    bytes
}

fn entry(key: &str, value: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (key.as_bytes().to_vec(), value.to_vec())
}

const LEAF1_ID: &str = "7baf6839c5bfb855c01884b5d1210d9983dd84fdbb1a08dab5fb696826cfd3ca";
const COMMIT1_ID: &str = "b1607d1ad94689cd6486a8c807dc282145b53a2baa5bc4822f3dcaf99bd65d06";
const BLOB_ID: &str = "1de6152ae6deb0332fd2df1ea293677831e4448f3909ffdbd6088aec1b515105";
const LEAF2_ID: &str = "ba432113241aefbcd9f1e184e3dbb663cf4eb3dd5417f3243349939bc5e9296a";
const COMMIT2_ID: &str = "0ff6b4e4f4b7f21a6194de23b74ba108dce2b0354ce1b06bed98d18427aa3e19";
const EMPTY_ID: &str = "44c659d145ea5700686e4b14564a7ab07c3a2e665b0e602827c8a1af3e134ee3";

/// 2023-11-14T22:13:20Z in microseconds.
const TIME1: u64 = 1_700_000_000_000_000;
const TIME2: u64 = 1_700_000_001_000_000;

/// FORMAT.md, "Example 1" to "Example 5".
#[test]
fn leaf_commit_blob_examples() {
    let repo = Repo::memory();

    // Example 1: a leaf holding a=1, b=2.
    let tree1 = repo
        .build_tree(vec![entry("a", b"1"), entry("b", b"2")])
        .expect("build");
    let leaf1 = check_object(
        &repo,
        &tree1.root(),
        "01 01  02  01 61  00 01 31  01 62  00 01 32",
        LEAF1_ID,
    );
    let node = Node::decode(&tree1.root(), &leaf1).expect("decodes");
    assert_eq!(node.len(), 2);
    assert_eq!((tree1.len(), tree1.value_bytes(), tree1.level()), (2, 2, 0));

    // Example 2: a root commit of that tree.
    let spec1 = CommitSpec {
        parents: Vec::new(),
        message: "first".to_string(),
        metadata: BTreeMap::from([("author".to_string(), "ann".to_string())]),
        time_micros: Some(TIME1),
    };
    let c1 = repo.write_commit(&tree1, &spec1).expect("commit");
    let c1_bytes = check_object(
        &repo,
        &c1,
        &format!(
            "01 04  {LEAF1_ID}  00  01  80 80 f9 c0 c1 c4 82 03  05 6669727374
             01  06 617574686f72  03 616e6e"
        ),
        COMMIT1_ID,
    );
    let commit1 = Commit::decode(&c1, &c1_bytes).expect("decodes");
    assert_eq!(commit1.root, tree1.root());
    assert_eq!((commit1.height, commit1.time_micros), (1, TIME1));

    // Example 3: a 300-byte value is stored as a blob.
    let big = vec![b'x'; 300];
    let tree2 = repo
        .apply(
            &tree1,
            vec![(b"b".to_vec(), None), (b"big".to_vec(), Some(big.clone()))],
        )
        .expect("apply");
    let blob_id: ObjectId = BLOB_ID.parse().expect("hex id");
    check_object(
        &repo,
        &blob_id,
        &format!("01 03  ac 02  {}", "78".repeat(300)),
        BLOB_ID,
    );

    // Example 4: the leaf after deleting b and putting big.
    check_object(
        &repo,
        &tree2.root(),
        &format!("01 01  02  01 61  00 01 31  03 626967  01 {BLOB_ID} ac 02"),
        LEAF2_ID,
    );
    assert_eq!(repo.get(&tree2, b"big").expect("get"), Some(big));

    // Example 5: a commit with one parent.
    let spec2 = CommitSpec {
        parents: vec![c1],
        message: "second".to_string(),
        metadata: BTreeMap::new(),
        time_micros: Some(TIME2),
    };
    let c2 = repo.write_commit(&tree2, &spec2).expect("commit");
    check_object(
        &repo,
        &c2,
        &format!(
            "01 04  {LEAF2_ID}  01 {COMMIT1_ID}  02  c0 84 b6 c1 c1 c4 82 03
             06 7365636f6e64  00"
        ),
        COMMIT2_ID,
    );
}

/// FORMAT.md, "The empty tree".
#[test]
fn empty_tree_example() {
    let repo = Repo::memory();
    let empty = repo.empty_tree().expect("empty tree");
    check_object(&repo, &empty.root(), "01 01 00", EMPTY_ID);
    let built = repo.build_tree(Vec::new()).expect("build");
    assert_eq!(built.root(), empty.root());
    let one = repo.build_tree(vec![entry("a", b"1")]).expect("build");
    let none = repo
        .apply(&one, vec![(b"a".to_vec(), None)])
        .expect("apply");
    assert_eq!(none.root(), empty.root());
}

/// FORMAT.md, "The boundary hash": the test vectors.
#[test]
fn key_hash_vectors() {
    let vectors: [(u8, &[u8], u64); 5] = [
        (0, b"", 0x9ca0_66f1_a4ab_2eea),
        (0, b"a", 0x4dc5_ebda_e78c_2fa1),
        (0, b"k00000042", 0x49b4_53d6_f0bf_946f),
        (0, b"abcdefghij", 0x08b0_7a47_bf2b_369d),
        (3, b"user/alice", 0xd8a5_9ee6_bebd_b79f),
    ];
    for (level, key, expected) in vectors {
        assert_eq!(key_hash(level, key), expected, "level {level} key {key:?}");
    }
}

/// FORMAT.md, "Example 6": 2,000 keys, eight leaves under one internal
/// root. Pins the chunk-boundary rule end to end.
#[test]
fn two_thousand_keys_example() {
    let repo = Repo::memory();
    let tree: Tree = repo
        .build_tree(
            (0..2000u32).map(|i| (format!("k{i:08}").into_bytes(), i.to_string().into_bytes())),
        )
        .expect("build");
    assert_eq!(
        (tree.len(), tree.value_bytes(), tree.level()),
        (2000, 6890, 1)
    );

    // (first key, leaf id, key count, value bytes, encoded leaf length)
    let children: [(&str, &str, u64, u64, usize); 8] = [
        (
            "k00000000",
            "408ece9bbf717382e6214205d6068e9a5b0335c499c480e1e8f854a77c306996",
            163,
            379,
            2339,
        ),
        (
            "k00000163",
            "0a8d542311ccfeb5d055ae6d041626dd64497a9d17a778e245c652d87b36c68c",
            290,
            870,
            4354,
        ),
        (
            "k00000453",
            "a50cbd806558a772d967d15dbd332439d53a2b89af41a489ccf3b885d85c7726",
            390,
            1170,
            5854,
        ),
        (
            "k00000843",
            "0e4d468b3f6358f0cd487c467d3de596574446e2edace574e5beb8ec5035766d",
            363,
            1295,
            5655,
        ),
        (
            "k00001206",
            "173c824af2fb0fb9518cfded47f543d5155f99ae831946c84050fbe1857c5869",
            274,
            1096,
            4388,
        ),
        (
            "k00001480",
            "00c0a022ae08fee68584112c3a38891c2b9c1909ac657de0797450aac00fe89a",
            350,
            1400,
            5604,
        ),
        (
            "k00001830",
            "7b31569f3e1630927bfaa0fe2dc973070a4129b2e6395a5cbd00cf1135e8faa0",
            150,
            600,
            2404,
        ),
        (
            "k00001980",
            "3b6d8469cb98ea51d3850ed9317e6588dd988e8741afec8e6ba047db07f4e84a",
            20,
            80,
            323,
        ),
    ];
    // Read the root with a parser written from FORMAT.md alone, not the
    // crate's: version, kind, level, count, then the child entries.
    let root = repo.object_bytes(&tree.root()).expect("root");
    assert_eq!(root.len(), 370, "4 header bytes and 366 bytes of entries");
    let mut r = SpecReader(&root);
    assert_eq!((r.byte(), r.byte(), r.byte()), (0x01, 0x02, 1));
    assert_eq!(r.varint(), children.len() as u64);
    let mut expected_root = String::from("01 02 01 08");
    for (key, id, count, bytes, encoded_len) in children {
        let key_len = usize::try_from(r.varint()).expect("small");
        assert_eq!(r.take(key_len), key.as_bytes());
        assert_eq!(hex(r.take(32)), id);
        assert_eq!((r.varint(), r.varint()), (count, bytes));
        let leaf_id: ObjectId = id.parse().expect("hex id");
        let leaf = repo.object_bytes(&leaf_id).expect("leaf");
        assert_eq!(leaf.len(), encoded_len);
        assert_eq!(ObjectId::hash(&leaf), leaf_id);
        expected_root.push_str(&format!(
            " 09 {} {id} {} {}",
            hex(key.as_bytes()),
            hex(&varint(count)),
            hex(&varint(bytes))
        ));
    }
    assert!(r.0.is_empty(), "no bytes after the last entry");
    check_object(
        &repo,
        &tree.root(),
        &expected_root,
        "e70e2856c83671600a6fc2370429ead69a2ea378df175a3c3f68c11b63b41334",
    );

    // The first leaf ends after k00000162: 2,320 bytes of entries before
    // it, a 15-byte entry, and a key hash below the hazard 0x8447ab6e1a781a.
    let hazard = ((2335u128.pow(4) - 2320u128.pow(4)) << 64) / 4400u128.pow(4);
    assert_eq!(hazard, 0x0084_47ab_6e1a_781a);
    assert_eq!(key_hash(0, b"k00000162"), 0x003d_f844_3af3_be06);
    assert!(is_boundary(0, b"k00000162", 2320, 15, 163));
    assert!(!is_boundary(0, b"k00000161", 2305, 15, 162));
}

/// Reads the primitives of FORMAT.md, independently of the crate.
struct SpecReader<'a>(&'a [u8]);

impl<'a> SpecReader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn byte(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn varint(&mut self) -> u64 {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte();
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return n;
            }
        }
        panic!("varint longer than 10 bytes");
    }
}

/// Unsigned LEB128, written independently of the crate's encoder.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let low = u8::try_from(n & 0x7f).expect("seven bits fit a byte");
        n >>= 7;
        if n == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}
