//! Typed values: how values are turned into bytes and back.
//!
//! Every typed accessor (`get_as`, `put_as`, ...) goes through a [`Codec`].
//! The default is [`Postcard`] (compact, fast); [`Json`] is available for
//! values other tools read. A custom codec implements [`Codec`] and is
//! passed to the `*_with` accessors, or chosen for a whole [`Db`] through
//! [`DefaultCodec`] when it is one of the built-ins.
//!
//! A typed read consumes the whole value or fails: bytes left over after
//! the decoded value mean the value is not of the type asked for (postcard
//! alone would read a `u64` from the first byte of the string `"hello"`).
//! The error, [`Error::Codec`], names the key and the Rust type.
//!
//! [`Db`]: crate::Db

use std::any::type_name;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Turns typed values into bytes and back.
///
/// A typed read consumes the whole value or fails: bytes left over after
/// the decoded value mean the value is not of the type asked for. (Postcard
/// alone would read a `u64` from the first byte of the string `"hello"`;
/// [`Postcard`] here refuses.) The facade's error, [`Error::Codec`], names
/// the key and the Rust type.
pub trait Codec: Send + Sync {
    /// Encodes a value.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String>;
    /// Decodes a value. It must use all of `bytes`: a value followed by
    /// anything else is an error, not that value.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String>;
}

/// The postcard codec (the default): compact binary, integers as varints.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

impl Codec for Postcard {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(value).map_err(|e| e.to_string())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(format!(
                "{} of its {} bytes are left over after the value",
                rest.len(),
                bytes.len()
            ))
        }
    }
}

/// The JSON codec (feature `json`, on by default).
#[cfg(feature = "json")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        // `from_slice` fails on anything but whitespace after the value.
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The codec a [`Db`](crate::Db) uses for `get_as` / `put_as`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DefaultCodec {
    /// [`Postcard`].
    #[default]
    Postcard,
    /// [`Json`].
    #[cfg(feature = "json")]
    Json,
}

impl Codec for DefaultCodec {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String> {
        match self {
            DefaultCodec::Postcard => Postcard.encode(value),
            #[cfg(feature = "json")]
            DefaultCodec::Json => Json.encode(value),
        }
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        match self {
            DefaultCodec::Postcard => Postcard.decode(bytes),
            #[cfg(feature = "json")]
            DefaultCodec::Json => Json.decode(bytes),
        }
    }
}

/// Encodes `value` (of key `key`) with `codec`; the error names the key
/// and the type.
pub(crate) fn encode_for<C: Codec + ?Sized, T: Serialize + ?Sized>(
    codec: &C,
    key: &[u8],
    value: &T,
) -> Result<Vec<u8>> {
    codec.encode(value).map_err(|message| Error::Codec {
        key: String::from_utf8_lossy(key).into_owned(),
        message: format!("cannot encode a {}: {message}", type_name::<T>()),
    })
}

/// Decodes the value of `key` with `codec`: every typed read of the facade
/// passes here. The error names the key and the type.
pub(crate) fn decode_for<C: Codec + ?Sized, T: DeserializeOwned>(
    codec: &C,
    key: &[u8],
    bytes: &[u8],
) -> Result<T> {
    decode_as(codec, bytes).map_err(|message| Error::Codec {
        key: String::from_utf8_lossy(key).into_owned(),
        message,
    })
}

/// Decodes `bytes` with `codec`; the error names the type. Shared by
/// [`decode_for`] and the typed merge functions.
pub(crate) fn decode_as<C: Codec + ?Sized, T: DeserializeOwned>(
    codec: &C,
    bytes: &[u8],
) -> Result<T, String> {
    codec.decode(bytes).map_err(|message| {
        format!(
            "the value does not decode as {}: {message}",
            type_name::<T>()
        )
    })
}
