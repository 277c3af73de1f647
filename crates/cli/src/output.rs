//! How bytes, ids and JSON reach standard output.

use std::borrow::Cow;
use std::io::{self, BufWriter, StdoutLock, Write};

use base64::Engine;
use serde_json::{json, Value};

/// Buffered standard output.
pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::new(io::stdout().lock())
}

/// Bytes as text for people: invalid UTF-8 shown with replacement
/// characters.
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Bytes as JSON: a string if they are UTF-8, else `{"base64": "..."}`.
pub fn json_bytes(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) }),
    }
}

/// The inverse of [`json_bytes`]; `None` if `value` is neither form.
pub fn bytes_from_json(value: &Value) -> Option<Result<Vec<u8>, String>> {
    match value {
        Value::String(s) => Some(Ok(s.as_bytes().to_vec())),
        Value::Object(map) if map.len() == 1 => {
            let encoded = map.get("base64")?.as_str()?;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| format!("bad base64: {e}")),
            )
        }
        _ => None,
    }
}

/// Writes `value` as one line of JSON.
pub fn write_json(out: &mut impl Write, value: &Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_json() {
        for bytes in [&b""[..], b"plain", "caf\u{e9}".as_bytes(), &[0xff, 0, 0x80]] {
            let v = json_bytes(bytes);
            assert_eq!(bytes_from_json(&v), Some(Ok(bytes.to_vec())));
        }
        assert!(json_bytes(&[0xff]).get("base64").is_some());
        assert_eq!(bytes_from_json(&json!(3)), None);
        assert_eq!(bytes_from_json(&json!({"base64": 1})), None);
        assert!(matches!(
            bytes_from_json(&json!({"base64": "!!"})),
            Some(Err(_))
        ));
    }
}
