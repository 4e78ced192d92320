//! PullLogs response bodies: a raw LZ4 block (no frame, no size prefix) whose decoded size is
//! `x-log-bodyrawsize`, or an uncompressed body.

use bytes::Bytes;

/// The largest decoded body accepted, checked before anything is allocated. SLS caps a
/// LogGroup at 5 MB on write and a pull at 1000 groups; real bodies are a few MB.
pub const MAX_RAW_SIZE: usize = 256 * 1024 * 1024;

/// LZ4's best compression ratio: a match length grows by at most 255 per input byte, so a
/// block of `n` bytes never decodes to more than `255 * n` (plus a little for its first
/// sequence). A larger `x-log-bodyrawsize` is refused before anything is allocated.
const LZ4_MAX_RATIO: usize = 255;

/// The most bytes an LZ4 block of `compressed` bytes can decode to.
pub fn lz4_max_decoded(compressed: usize) -> usize {
    compressed.saturating_mul(LZ4_MAX_RATIO).saturating_add(64)
}

/// The most wire bytes a PullLogs body may have: an LZ4 block of [`MAX_RAW_SIZE`]
/// incompressible bytes (LZ4 adds at most 1 byte per 255 and a few; this allows 1/8).
pub const MAX_WIRE_SIZE: usize = MAX_RAW_SIZE + MAX_RAW_SIZE / 8;

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
    #[error("x-log-bodyrawsize {raw_size} is more than a {compressed}-byte lz4 block can hold")]
    Impossible { raw_size: usize, compressed: usize },
}

/// Decodes `body` as `x-log-compresstype` (`compress_type`) says. A raw size of 0 is an empty
/// body whatever the compression (LZ4-decoding an empty block fails in several libraries).
pub fn decode_body(body: Bytes, compress_type: &str, raw_size: usize) -> Result<Bytes, CodecError> {
    let mut out = Vec::new();
    decode_into(&body, compress_type, raw_size, &mut out)?;
    Ok(Bytes::from(out))
}

/// [`decode_body`] into `out`, whose allocation is reused (its contents are replaced, and it
/// is left empty on error). Every size check runs before `out` is grown.
pub fn decode_into(
    body: &[u8],
    compress_type: &str,
    raw_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let result = decode_reusing(body, compress_type, raw_size, out);
    if result.is_err() {
        out.clear();
    }
    result
}

/// [`decode_into`], leaving `out` as it is on error.
fn decode_reusing(
    body: &[u8],
    compress_type: &str,
    raw_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if raw_size == 0 {
        out.clear();
        return Ok(());
    }
    if raw_size > MAX_RAW_SIZE {
        return Err(CodecError::TooLarge(raw_size));
    }
    match compress_type.trim() {
        t if t.eq_ignore_ascii_case("lz4") => {
            if raw_size > lz4_max_decoded(body.len()) {
                return Err(CodecError::Impossible {
                    raw_size,
                    compressed: body.len(),
                });
            }
            // The decoder writes into initialised memory: what `out` already holds (a reused
            // buffer, given back with its length) is overwritten, only growth is zeroed.
            crate::buffers::reserve(out, raw_size);
            out.truncate(raw_size);
            out.resize(raw_size, 0);
            match lz4_flex::block::decompress_into(body, out) {
                Ok(n) if n == raw_size => Ok(()),
                Ok(n) => Err(CodecError::SizeMismatch {
                    expected: raw_size,
                    actual: n,
                }),
                Err(e @ lz4_flex::block::DecompressError::OutputTooSmall { .. }) => {
                    Err(CodecError::Lz4(format!(
                        "{e} (x-log-bodyrawsize {raw_size} is too small, or the block is corrupt)"
                    )))
                }
                Err(e) => Err(CodecError::Lz4(e.to_string())),
            }
        }
        "" if body.len() != raw_size => Err(CodecError::SizeMismatch {
            expected: raw_size,
            actual: body.len(),
        }),
        "" => {
            out.clear();
            out.extend_from_slice(body);
            Ok(())
        }
        other => Err(CodecError::Unsupported(other.to_string())),
    }
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
    fn a_reused_buffer_holds_exactly_the_new_body() {
        let raw = hex(VECTOR_HEX);
        let block = lz4_flex::block::compress(&raw);
        // What a buffer given back to the spares holds: longer, then shorter, than the body.
        for old in [vec![0xAA; 4096], vec![0xAA; 7]] {
            for compress_type in ["lz4", ""] {
                let body = if compress_type.is_empty() {
                    &raw
                } else {
                    &block
                };
                let mut out = old.clone();
                decode_into(body, compress_type, raw.len(), &mut out).unwrap();
                assert_eq!(out, raw, "{compress_type:?}");
                // A failed decode leaves nothing of either body behind.
                let mut out = old.clone();
                let short = raw.len() - 1;
                assert!(decode_into(body, compress_type, short, &mut out).is_err());
                assert!(out.is_empty());
            }
            let mut out = old.clone();
            decode_into(&block, "lz4", 0, &mut out).unwrap();
            assert!(out.is_empty());
        }
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

    #[test]
    fn a_raw_size_no_block_of_that_size_can_hold_is_refused_before_decoding() {
        // Within MAX_RAW_SIZE, but 105 bytes of LZ4 cannot decode to 100 MB: nothing is
        // allocated for it (tests/hardening_alloc.rs measures that).
        assert_eq!(
            decode_body(Bytes::from(hex(LZ4_HEX)), "lz4", 100 << 20),
            Err(CodecError::Impossible {
                raw_size: 100 << 20,
                compressed: 105
            })
        );
        // The best real ratio fits under the bound: 1 MiB of one byte repeated.
        let raw = vec![b'x'; 1 << 20];
        let block = lz4_flex::block::compress(&raw);
        assert!(raw.len() <= lz4_max_decoded(block.len()), "{}", block.len());
        assert_eq!(
            &decode_body(Bytes::from(block), "lz4", raw.len()).unwrap()[..],
            &raw[..]
        );
        // A 4 GiB claim is refused as too large, whatever the body.
        assert_eq!(
            decode_body(Bytes::from(hex(LZ4_HEX)), "lz4", 4 << 30),
            Err(CodecError::TooLarge(4 << 30))
        );
    }
}
