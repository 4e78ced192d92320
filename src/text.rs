//! One pass over the bytes of a key or value: whether they are ASCII, and whether they may
//! hold a line break. Keys and values are short (most under 40 bytes) and come unaligned
//! from the middle of a decompressed body, so the pass reads eight bytes at a time from any
//! address and leaves no byte loop for the ends (the standard library's `is_ascii` goes
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
    let p = bytes.as_ptr();
    // SAFETY: every read lies inside `bytes`: words at `i + 8 <= n` and at `n - 8` (when
    // `n >= 8`), halves at 0 and `n - 4` (when `4 <= n < 8`).
    unsafe {
        if n >= 8 {
            let mut i = 0;
            while i + 8 < n {
                word(p.add(i).cast::<u64>().read_unaligned());
                i += 8;
            }
            word(p.add(n - 8).cast::<u64>().read_unaligned());
        } else if n >= 4 {
            let a = u64::from(p.cast::<u32>().read_unaligned());
            let b = u64::from(p.add(n - 4).cast::<u32>().read_unaligned());
            word(a | b << 32);
        } else if n > 0 {
            // Three bytes (some repeated), the rest spaces (neither high nor low).
            let b = |i: usize| u64::from(*p.add(i));
            word(b(0) | b(n / 2) << 8 | b(n - 1) << 16 | 0x2020_2020_2000_0000);
        }
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
