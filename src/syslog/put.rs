//! Appending short byte strings without a call to the C library's `memcpy`.
//!
//! A formatted log is dozens of short pieces (keys, values, separators). `Vec::extend_from_slice`
//! calls `memcpy` for each piece whose length is not known at compile time; glibc's is quick
//! on short copies, but musl's (the static build that runs on Function Compute) starts every
//! copy with `rep movsq`, and `perf` found 58% of that build's CPU in it. [`put`] copies up
//! to 64 bytes with two fixed-size, possibly overlapping, moves instead, and up to 512 with
//! at most four fixed-size moves of 128 bytes (an out-of-line [`copy_medium`]); only longer
//! pieces go to `memcpy`, where its start-up is small next to the copy.

use std::ptr;

/// Pieces up to twice this are copied inline, with two moves of up to this many bytes.
const SHORT: usize = 32;

/// Longer pieces up to this are copied by [`copy_medium`]; longer ones by `memcpy`.
const MEDIUM: usize = 512;

/// The largest fixed-size move of [`copy_medium`]: what the compiler still expands into
/// vector moves instead of calling `memcpy` (x86_64 inlines up to eight stores).
const CHUNK: usize = 128;

/// Appends `s` to `out`: the same result as `out.extend_from_slice(s)`.
#[inline(always)]
pub fn put(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len());
    // SAFETY: just reserved.
    unsafe { append_reserved(out, s) }
}

/// Appends every part of `parts`, in order, after one reservation for all of them: the
/// same result as `put` of each.
#[inline(always)]
pub fn put_all<const N: usize>(out: &mut Vec<u8>, parts: [&[u8]; N]) {
    out.reserve(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        // SAFETY: the reservation covers all the parts.
        unsafe { append_reserved(out, part) }
    }
}

/// Appends `s`, which must fit in `out`'s spare capacity.
///
/// # Safety
/// `out.capacity() - out.len() >= s.len()`.
#[inline(always)]
unsafe fn append_reserved(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    let len = out.len();
    let src = s.as_ptr();
    // SAFETY: the caller left room for `n` bytes after `len`, so `dst..dst + n` is inside the
    // allocation. Each branch writes every byte of it from the same offset of `s` (the two
    // moves of a branch overlap in the middle and write the same bytes there), all reads stay
    // in `s[..n]`, and `s` cannot lie in `out`'s spare capacity (it is borrowed while `out` is
    // borrowed mutably), so the regions do not overlap. Only then is the length set.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        if n > 2 * SHORT {
            copy_medium(src, dst, n);
        } else if n > SHORT {
            ptr::copy_nonoverlapping(src, dst, SHORT);
            ptr::copy_nonoverlapping(src.add(n - SHORT), dst.add(n - SHORT), SHORT);
        } else if n >= 16 {
            ptr::copy_nonoverlapping(src, dst, 16);
            ptr::copy_nonoverlapping(src.add(n - 16), dst.add(n - 16), 16);
        } else if n >= 8 {
            ptr::copy_nonoverlapping(src, dst, 8);
            ptr::copy_nonoverlapping(src.add(n - 8), dst.add(n - 8), 8);
        } else if n >= 4 {
            ptr::copy_nonoverlapping(src, dst, 4);
            ptr::copy_nonoverlapping(src.add(n - 4), dst.add(n - 4), 4);
        } else if n > 0 {
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
        out.set_len(len + n);
    }
}

/// Copies `n > 2 * SHORT` bytes from `src` to `dst`: up to [`MEDIUM`] with fixed-size moves
/// from both ends (no loop, which the compiler would turn back into a `memcpy` call), beyond
/// with `memcpy`.
///
/// # Safety
/// `src..src + n` readable, `dst..dst + n` writable, the two not overlapping.
#[inline(never)]
unsafe fn copy_medium(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: every move is inside `0..n` of both regions (each branch's `n` is at least the
    // span its moves cover: `n > 2 * CHUNK` for four chunks, `n > CHUNK` for two, `n > 2 *
    // SHORT` for two of `2 * SHORT`), and the moves from the end cover what those from the
    // start leave (`n <= 4 * CHUNK`, `n <= 2 * CHUNK`, `n <= CHUNK`).
    unsafe {
        if n > MEDIUM {
            ptr::copy_nonoverlapping(src, dst, n);
        } else if n > 2 * CHUNK {
            ptr::copy_nonoverlapping(src, dst, CHUNK);
            ptr::copy_nonoverlapping(src.add(CHUNK), dst.add(CHUNK), CHUNK);
            let tail = n - 2 * CHUNK;
            ptr::copy_nonoverlapping(src.add(tail), dst.add(tail), CHUNK);
            ptr::copy_nonoverlapping(src.add(n - CHUNK), dst.add(n - CHUNK), CHUNK);
        } else if n > CHUNK {
            ptr::copy_nonoverlapping(src, dst, CHUNK);
            ptr::copy_nonoverlapping(src.add(n - CHUNK), dst.add(n - CHUNK), CHUNK);
        } else {
            ptr::copy_nonoverlapping(src, dst, 2 * SHORT);
            let tail = n - 2 * SHORT;
            ptr::copy_nonoverlapping(src.add(tail), dst.add(tail), 2 * SHORT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_every_length_like_extend_from_slice() {
        let source: Vec<u8> = (0..=255u8).cycle().take(MEDIUM + 300).collect();
        for start in 0..3 {
            for n in (0..=(MEDIUM + 40)).chain([MEDIUM + 257]) {
                let s = &source[start..start + n];
                // Exact capacity and a spare one, so that both the growing and the
                // non-growing path write at the end.
                for prefix in [&b""[..], b"<134>1 ", b"0123456789abcdef0123456789abcdefX"] {
                    let mut tight = prefix.to_vec();
                    tight.shrink_to_fit();
                    let mut roomy = Vec::with_capacity(256);
                    roomy.extend_from_slice(prefix);
                    let mut want = prefix.to_vec();
                    want.extend_from_slice(s);
                    put(&mut tight, s);
                    put(&mut roomy, s);
                    assert_eq!(tight, want, "n={n} start={start}");
                    assert_eq!(roomy, want, "n={n} start={start}");
                    let mut tight = prefix.to_vec();
                    tight.shrink_to_fit();
                    want.extend_from_slice(b"=");
                    want.extend_from_slice(s);
                    put_all(&mut tight, [s, b"=", s]);
                    assert_eq!(tight, want, "n={n} start={start}");
                }
            }
        }
    }
}
