//! The three-way merge against a model (see `support/merge_model.rs`, shared
//! with the fuzz target `merge_model`): the inputs kept in
//! `fuzz/regressions/merge_model/` replayed byte for byte, then random
//! inputs through proptest (`PROPTEST_CASES`, default 256).

use kvgit_merge::Strategy;
use proptest::prelude::*;

mod common;
#[path = "support/merge_model.rs"]
mod model;

use model::Summary;

/// Every kept input of the fuzz target, replayed.
#[test]
fn kept_fuzz_inputs_replay() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/merge_model");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    for path in files {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| model::check(&data));
        assert!(outcome.is_ok(), "{} fails", path.display());
    }
}

/// Short inputs (mostly zeros once read): the empty registry, empty maps.
#[test]
fn short_inputs() {
    model::check(&[]);
    for b in 0..=255u8 {
        model::check(&[b]);
        model::check(&[b; 24]);
    }
}

/// The input format reaches every kind of outcome: each strategy, keys
/// resolved and taken from theirs, conflicts with and without a reason
/// (a deterministic sample, so this cannot pass by luck).
#[test]
fn inputs_reach_every_outcome() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut no_op, mut ff, mut three_way, mut resolved, mut from_theirs) = (0, 0, 0, 0, 0);
    let (mut reasoned, mut unreasoned) = (0, 0);
    for _ in 0..600 {
        let len = (next() % 300) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match model::check(&data) {
            Summary::Merged {
                strategy,
                resolved: r,
                from_theirs: f,
            } => {
                match strategy {
                    Strategy::NoOp => no_op += 1,
                    Strategy::FastForward => ff += 1,
                    Strategy::ThreeWay => three_way += 1,
                }
                resolved += usize::from(r > 0);
                from_theirs += usize::from(f > 0);
            }
            Summary::Conflicts {
                with_reason,
                without,
            } => {
                reasoned += usize::from(with_reason > 0);
                unreasoned += usize::from(without > 0);
            }
        }
    }
    let counts = [
        no_op,
        ff,
        three_way,
        resolved,
        from_theirs,
        reasoned,
        unreasoned,
    ];
    assert!(counts.iter().all(|&n| n >= 5), "{counts:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(256)))]

    #[test]
    fn merges_match_the_model(data in prop::collection::vec(any::<u8>(), 0..400)) {
        model::check(&data);
    }
}
