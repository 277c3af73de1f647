//! Typed values: how values are turned into bytes and back.
//!
//! Every typed accessor (`get_as`, `put_as`, ...) goes through a [`Codec`].
//! The default is [`Postcard`] (compact, fast); [`Json`] is available for
//! values other tools read. A custom codec implements [`Codec`] and is
//! passed to the `*_with` accessors, or chosen for a whole [`Db`] through
//! [`DefaultCodec`] when it is one of the built-ins.
//!
//! [`Db`]: crate::Db

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Turns typed values into bytes and back.
pub trait Codec: Send + Sync {
    /// Encodes a value.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String>;
    /// Decodes a value.
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
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
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

pub(crate) fn encode_for<C: Codec + ?Sized, T: Serialize + ?Sized>(
    codec: &C,
    key: &[u8],
    value: &T,
) -> Result<Vec<u8>> {
    codec.encode(value).map_err(|message| Error::Codec {
        key: String::from_utf8_lossy(key).into_owned(),
        message,
    })
}

pub(crate) fn decode_for<C: Codec + ?Sized, T: DeserializeOwned>(
    codec: &C,
    key: &[u8],
    bytes: &[u8],
) -> Result<T> {
    codec.decode(bytes).map_err(|message| Error::Codec {
        key: String::from_utf8_lossy(key).into_owned(),
        message,
    })
}
