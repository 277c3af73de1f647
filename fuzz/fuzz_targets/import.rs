//! Arbitrary bytes into the JSON lines import (`kvgit::jsonl::import`):
//! an error naming the first bad line, or a store holding exactly what a
//! model parse of the input says; never a panic. The check is shared with
//! `crates/kvgit/tests/import.rs`, which replays `fuzz/regressions/import/*`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/kvgit/tests/import/check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
