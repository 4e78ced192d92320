//! PullLogs response bodies: a raw LZ4 block (no frame, no size prefix) whose decoded size is
//! `x-log-bodyrawsize`, or an uncompressed body.

use bytes::Bytes;

/// The largest decoded body accepted, checked before anything is allocated. SLS caps a
/// LogGroup at 5 MB on write and a pull at 1000 groups; real bodies are a few MB.
pub const MAX_RAW_SIZE: usize = 256 * 1024 * 1024;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("x-log-bodyrawsize {0} is larger than the {MAX_RAW_SIZE}-byte limit")]
    TooLarge(usize),
    #[error("unsupported x-log-compresstype {0:?}")]
    Unsupported(String),
    #[error("corrupt lz4 body: {0}")]
    Lz4(String),
    #[error("body is {actual} bytes once decoded, but x-log-bodyrawsize says {expected}")]
    SizeMismatch { expected: usize, actual: usize },
}

/// Decodes `body` as `x-log-compresstype` (`compress_type`) says. A raw size of 0 is an empty
/// body whatever the compression (LZ4-decoding an empty block fails in several libraries).
pub fn decode_body(body: Bytes, compress_type: &str, raw_size: usize) -> Result<Bytes, CodecError> {
    if raw_size == 0 {
        return Ok(Bytes::new());
    }
    if raw_size > MAX_RAW_SIZE {
        return Err(CodecError::TooLarge(raw_size));
    }
    let decoded = match compress_type.trim() {
        t if t.eq_ignore_ascii_case("lz4") => {
            let out = lz4_flex::block::decompress(&body, raw_size)
                .map_err(|e| CodecError::Lz4(e.to_string()))?;
            Bytes::from(out)
        }
        "" => body,
        other => return Err(CodecError::Unsupported(other.to_string())),
    };
    if decoded.len() != raw_size {
        return Err(CodecError::SizeMismatch {
            expected: raw_size,
            actual: decoded.len(),
        });
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sls::proto::tests::{hex, VECTOR_HEX};

    /// research/sls-api.md §3.4: the LZ4 raw block of the 109-byte vector.
    const LZ4_HEX: &str = "f1210a6b0a280880e2cfaa06120d0a056c6576656c1204494e464f120c0a036d7367120568656c6c6f2515cd5b070a1408812a00041b00f021776f726c641a07746f7069632d61220831302e302e302e3132160a0c5f5f686f73746e616d655f5f1206686f73742d31";

    #[test]
    fn decodes_the_sdk_lz4_block() {
        let body = Bytes::from(hex(LZ4_HEX));
        assert_eq!(body.len(), 105);
        let out = decode_body(body, "lz4", 109).unwrap();
        assert_eq!(&out[..], &hex(VECTOR_HEX)[..]);
    }

    #[test]
    fn round_trips_our_own_compression() {
        let raw = hex(VECTOR_HEX);
        let block = lz4_flex::block::compress(&raw);
        assert_eq!(
            &decode_body(Bytes::from(block), "LZ4", raw.len()).unwrap()[..],
            &raw[..]
        );
    }

    #[test]
    fn uncompressed_body_is_passed_through_and_size_checked() {
        let raw = Bytes::from(hex(VECTOR_HEX));
        assert_eq!(decode_body(raw.clone(), "", 109).unwrap(), raw);
        assert_eq!(
            decode_body(raw, "", 100),
            Err(CodecError::SizeMismatch {
                expected: 100,
                actual: 109
            })
        );
    }

    #[test]
    fn raw_size_zero_skips_decoding() {
        assert!(decode_body(Bytes::new(), "lz4", 0).unwrap().is_empty());
        assert!(decode_body(Bytes::from_static(b"junk"), "zstd", 0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn corrupt_or_hostile_bodies_are_errors() {
        assert!(matches!(
            decode_body(Bytes::from_static(b"\xff\xff\xff"), "lz4", 109),
            Err(CodecError::Lz4(_))
        ));
        // Wrong raw size: too small for the block.
        assert!(decode_body(Bytes::from(hex(LZ4_HEX)), "lz4", 50).is_err());
        // Hostile size is refused before allocating.
        assert_eq!(
            decode_body(Bytes::from(hex(LZ4_HEX)), "lz4", usize::MAX),
            Err(CodecError::TooLarge(usize::MAX))
        );
        assert!(matches!(
            decode_body(Bytes::from_static(b"x"), "zstd", 1),
            Err(CodecError::Unsupported(_))
        ));
    }
}
