//! One pass over the bytes of a key or value: whether they are ASCII, and whether they may
//! hold a line break. Keys and values are short (most under 40 bytes) and come unaligned
//! from the middle of a decompressed body, so the pass reads eight bytes at a time (safe
//! slices of eight, which compile to unaligned loads) and leaves no byte loop for the ends (the standard library's `is_ascii` goes
//! byte by byte under 64 bytes), and the message it is written into needs no second pass
//! for CR and LF before LF framing.

/// What one pass over a key or value found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pub ascii: bool,
    /// A byte below 0x0E: a CR or LF, or a tab or another control character. A message
    /// with none of these in its parts needs no search for line breaks before LF framing.
    pub low: bool,
}

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

/// [`Scan`]s `bytes` eight at a time (overlapping words for what is left, so that the short
/// keys and values of logs cost one or two loads and no byte loop).
#[inline(always)]
pub fn scan(bytes: &[u8]) -> Scan {
    let (mut or, mut low) = (0u64, 0u64);
    let mut word = |w: u64| {
        or |= w;
        low |= low_bits(w);
    };
    let n = bytes.len();
    if n >= 8 {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            word(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
        }
        if !words.remainder().is_empty() {
            word(u64::from_le_bytes(bytes[n - 8..].try_into().unwrap_or([0; 8])));
        }
    } else if n >= 4 {
        let half = |i: usize| {
            u64::from(u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap_or([0; 4])))
        };
        word(half(0) | half(n - 4) << 32);
    } else if n > 0 {
        // Three bytes (some repeated), the rest spaces (neither high nor low).
        let b = |i: usize| u64::from(bytes[i]);
        word(b(0) | b(n / 2) << 8 | b(n - 1) << 16 | 0x2020_2020_2000_0000);
    }
    Scan {
        ascii: or & HIGH == 0,
        low: low & HIGH != 0,
    }
}

/// The [`Scan`] of eight bytes.
#[inline(always)]
pub fn scan_word(w: u64) -> Scan {
    Scan {
        ascii: w & HIGH == 0,
        low: low_bits(w) & HIGH != 0,
    }
}
