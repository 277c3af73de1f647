//! Three-way merges against a model: a registry of merge functions and
//! side policies, a base map and two sides' edits, all read from the
//! input bytes; the merged tree (or exactly the conflicts), the strategy
//! and the resolved / from-theirs key lists must be the model's, and the
//! merged root id must be the id of the model's map built from scratch.
//!
//! The check lives in `crates/merge/tests/support/merge_model.rs`, shared
//! with the test `crates/merge/tests/merge_model.rs`, which replays the
//! inputs kept in `fuzz/regressions/merge_model/` byte for byte.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/merge/tests/support/merge_model.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    model::check(data);
});
