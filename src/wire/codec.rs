//! CBOR encoding of message bodies with ciborium.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::WireError;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Appends the CBOR encoding of `value` to `buf`.
///
/// ```
/// let mut buf = Vec::new();
/// procession::wire::encode_body(&(1u8, "x"), &mut buf).unwrap();
/// let back: (u8, String) = procession::wire::decode_body(&buf, "pair").unwrap();
/// assert_eq!(back, (1, "x".to_string()));
/// ```
///
/// # Errors
/// [`WireError::Encode`] if the value cannot be serialized (a map with non-string keys is
/// fine; a serializer error is not).
pub fn encode_body<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), WireError> {
    ciborium::into_writer(value, buf).map_err(|e| WireError::Encode(e.to_string()))
}

/// Decodes a CBOR body as `T`; `what` names the expected type in the error.
/// Trailing bytes after the value are an error: a frame carries exactly one value.
///
/// # Errors
/// [`WireError::Decode`] if `body` is not the CBOR of a `T` (it names `what`).
pub fn decode_body<T: DeserializeOwned>(body: &[u8], what: &'static str) -> Result<T, WireError> {
    let mut rest = body;
    let decoded = {
        // ciborium copies byte strings through a scratch buffer, and its from_reader
        // zero-fills a fresh 4 KiB one for every value. A per-thread buffer, as large as
        // the body (at least 4 KiB), costs nothing per decode and moves a large payload in
        // one piece instead of 4 KiB at a time into a growing Vec.
        // (At thread exit the buffer may be gone already: decode without it then.)
        let mut fallback = rest;
        let scratch = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                if scratch.len() < body.len().max(4096) {
                    scratch.resize(body.len().max(4096), 0);
                }
                let res = ciborium::de::from_reader_with_buffer(&mut rest, &mut scratch[..]);
                if scratch.len() > crate::wire::DEFAULT_MAX_FRAME {
                    *scratch = Vec::new();
                }
                res
            }
            Err(_) => ciborium::from_reader(&mut rest),
        });
        match scratch {
            Ok(res) => res,
            Err(_) => {
                let res = ciborium::from_reader(&mut fallback);
                rest = fallback;
                res
            }
        }
    };
    let value = decoded.map_err(|e| WireError::Decode {
        tag: what.into(),
        message: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(WireError::Decode {
            tag: what.into(),
            message: format!("{} trailing bytes after the value", rest.len()),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_body_is_a_decode_error() {
        let err = decode_body::<u64>(&[0xff, 0x00, 0x13], "u64").unwrap_err();
        assert!(matches!(err, WireError::Decode { ref tag, .. } if tag == "u64"));
    }

    #[test]
    fn trailing_bytes_are_a_decode_error() {
        let mut buf = Vec::new();
        encode_body(&5u64, &mut buf).unwrap();
        buf.push(0);
        assert!(matches!(
            decode_body::<u64>(&buf, "u64"),
            Err(WireError::Decode { .. })
        ));
    }

    #[test]
    fn byte_buffers_encode_as_one_cbor_byte_string() {
        let payload = serde_bytes::ByteBuf::from(vec![7u8; 1 << 20]);
        let mut buf = Vec::new();
        encode_body(&payload, &mut buf).unwrap();
        assert!(
            buf.len() < (1 << 20) + 16,
            "bytes must not be encoded one integer each"
        );
        let back: serde_bytes::ByteBuf = decode_body(&buf, "bytes").unwrap();
        assert_eq!(back, payload);
    }
}
