//! One module per command or group of commands.

pub mod branch;
pub mod diff;
pub mod gc;
pub mod init;
pub mod kv;
pub mod log;
pub mod merge;
pub mod remote;
pub mod stats;
pub mod transfer;
pub mod verify;

pub mod completions;
pub mod edit;
pub mod switch;
pub mod tag;

use std::ffi::OsString;

/// A key or value given on the command line, as bytes (on Unix, exactly
/// the bytes of the argument).
pub fn arg_bytes(arg: OsString) -> Vec<u8> {
    arg.into_encoded_bytes()
}
