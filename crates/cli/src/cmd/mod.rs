//! One module per command or group of commands.

pub mod branch;
pub mod diff;
// These two still print with `println!`, which panics when standard
// output is closed; they are to write through `crate::outln!` like the
// others, and then lose this allowance.
#[allow(clippy::print_stdout)]
pub mod gc;
#[allow(clippy::print_stdout)]
pub mod init;
pub mod kv;
pub mod log;
pub mod merge;
pub mod stats;
pub mod transfer;
pub mod verify;

use std::ffi::OsString;

/// A key or value given on the command line, as bytes (on Unix, exactly
/// the bytes of the argument).
pub fn arg_bytes(arg: OsString) -> Vec<u8> {
    arg.into_encoded_bytes()
}
