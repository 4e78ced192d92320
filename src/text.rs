//! Whether a key or value holds a control byte (below 0x0E: a CR or LF, a tab or another
//! control character). A message with none in its parts needs no search for line breaks
//! before LF framing. Keys and values are short (most under 40 bytes) and come unaligned from
//! the middle of a decompressed body, so the check reads eight bytes at a time (slices of
//! eight, which compile to unaligned loads), with overlapping words for the ends instead of a
//! byte loop.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The top bit of each byte of `w` below 0x0E is set, and maybe of bytes above one (a byte
/// below 0x0E borrows in `w - 0x0E0E…` and has its top bit clear in `!w`; a borrow from a
/// lower byte sets a top bit only above a byte that is itself below 0x0E): exact for "has
/// such a byte".
#[inline(always)]
fn low_bits(w: u64) -> u64 {
    w.wrapping_sub(ONES * 0x0E) & !w
}

/// Whether `bytes` holds a byte below 0x0E, read eight bytes at a time (overlapping words
/// for what is left, so that the short keys and values of logs cost one or two loads).
#[inline(always)]
pub fn has_control(bytes: &[u8]) -> bool {
    let mut low = 0u64;
    let mut word = |w: u64| low |= low_bits(w);
    let n = bytes.len();
    if n >= 8 {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            word(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
        }
        if !words.remainder().is_empty() {
            word(u64::from_le_bytes(
                bytes[n - 8..].try_into().unwrap_or([0; 8]),
            ));
        }
    } else if n >= 4 {
        let half = |i: usize| {
            u64::from(u32::from_le_bytes(
                bytes[i..i + 4].try_into().unwrap_or([0; 4]),
            ))
        };
        word(half(0) | half(n - 4) << 32);
    } else if n > 0 {
        // Three bytes (some repeated), the rest spaces (no control byte).
        let b = |i: usize| u64::from(bytes[i]);
        word(b(0) | b(n / 2) << 8 | b(n - 1) << 16 | 0x2020_2020_2000_0000);
    }
    low & HIGH != 0
}

/// [`has_control`] of eight bytes.
#[inline(always)]
pub fn word_has_control(w: u64) -> bool {
    low_bits(w) & HIGH != 0
}
