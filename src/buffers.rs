//! Large byte buffers reused across pulls and invocations: the compressed PullLogs body, its
//! decompressed form and the batches of framed messages (megabytes each).
//!
//! Allocated afresh for every pull, they cost twice: the kernel hands out and zeroes their
//! pages again each time (musl returns big blocks to the system at once), and glibc, which
//! keeps freed blocks instead, ends up holding several generations of them (a 1M-log range
//! peaked at 48 MiB where the working set is about half that). Reused, the working set stays
//! put and nothing is faulted in again.

use std::sync::{Mutex, MutexGuard};

/// Buffers kept at most: one invocation holds up to five at once (compressed body, two
/// decoded bodies, two batches), so this keeps what about two concurrent invocations need.
const KEEP: usize = 10;

/// Smaller buffers are not worth keeping; larger ones (a pathological pull) are freed.
const KEEP_MIN: usize = 64 * 1024;
const KEEP_MAX: usize = 64 * 1024 * 1024;

/// A list of buffers waiting for reuse.
pub struct Spares {
    free: Mutex<Vec<Vec<u8>>>,
}

/// The process's buffers.
static SPARES: Spares = Spares::new();

/// [`Spares::take`] from the process's buffers.
pub fn take(want: usize) -> Vec<u8> {
    SPARES.take(want)
}

/// [`Spares::give`] to the process's buffers.
pub fn give(buf: Vec<u8>) {
    SPARES.give(buf)
}

/// Makes room for `want` bytes in `buf` (what it holds is kept). A buffer that must grow gets
/// an eighth more than `want`: successive answers differ by a few KiB, and a kept buffer
/// exactly one answer long would not hold the next slightly longer one, which would then grow
/// another buffer (a fresh mapping, faulted in page by page) instead of reusing it.
pub fn reserve(buf: &mut Vec<u8>, want: usize) {
    if buf.capacity() < want {
        // len <= capacity < want
        buf.reserve_exact(want + want / 8 - buf.len());
    }
}

impl Spares {
    pub const fn new() -> Spares {
        Spares {
            free: Mutex::new(Vec::new()),
        }
    }

    fn free(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        // A panic while holding the lock cannot leave the list inconsistent: use it as is.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept buffer best suited to hold `want` bytes: the smallest that can, else the
    /// largest (the caller grows it); a new, unallocated one when none is kept. It never
    /// allocates, so `want` may come from an unchecked header. A kept buffer comes with what
    /// it held: the caller clears it, or overwrites it (then its bytes need no zeroing).
    pub fn take(&self, want: usize) -> Vec<u8> {
        let mut free = self.free();
        let fits = |b: &Vec<u8>| b.capacity() >= want;
        let best = free
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| {
                (
                    !fits(b),
                    if fits(b) {
                        b.capacity()
                    } else {
                        usize::MAX - b.capacity()
                    },
                )
            })
            .map(|(i, _)| i);
        best.map_or_else(Vec::new, |i| free.swap_remove(i))
    }

    /// Keeps a buffer for reuse, as it is. When the list is full it replaces the smallest
    /// kept buffer if it is larger.
    pub fn give(&self, buf: Vec<u8>) {
        if !(KEEP_MIN..=KEEP_MAX).contains(&buf.capacity()) {
            return;
        }
        let mut free = self.free();
        if free.len() < KEEP {
            free.push(buf);
        } else if let Some(smallest) = free.iter_mut().min_by_key(|b| b.capacity()) {
            if smallest.capacity() < buf.capacity() {
                *smallest = buf;
            }
        }
    }

    /// Bytes held by kept buffers.
    #[cfg(test)]
    fn kept_bytes(&self) -> usize {
        self.free().iter().map(Vec::capacity).sum()
    }
}

impl Default for Spares {
    fn default() -> Spares {
        Spares::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_best_fit_and_bounds_what_it_keeps() {
        let spares = Spares::new();
        let give = |b| spares.give(b);
        let take = |n| spares.take(n);
        let big = Vec::<u8>::with_capacity(4 << 20);
        let small = Vec::<u8>::with_capacity(256 << 10);
        let (big_ptr, small_ptr) = (big.as_ptr(), small.as_ptr());
        give(big);
        give(small);
        give(Vec::with_capacity(100)); // too small to keep
        give(Vec::with_capacity(KEEP_MAX + 1)); // too large to keep

        // Best fit: a 200 KiB request gets the 256 KiB buffer, not the 4 MiB one.
        let a = take(200 << 10);
        assert_eq!(a.as_ptr(), small_ptr);
        let b = take(1 << 20);
        assert_eq!(b.as_ptr(), big_ptr);
        // Nothing kept: a new buffer, not allocated (the size may be hostile).
        let c = take(usize::MAX);
        assert_eq!(c.capacity(), 0);
        // Nothing fits: the largest kept.
        give(Vec::with_capacity(KEEP_MIN));
        give(Vec::with_capacity(2 * KEEP_MIN));
        assert!(take(8 << 20).capacity() >= 2 * KEEP_MIN);
        assert!(take(8 << 20).capacity() < 2 * KEEP_MIN);

        // Given back with contents: they come back with it (a decoder overwrites them
        // instead of zeroing the buffer again).
        let mut d = Vec::with_capacity(KEEP_MIN);
        d.extend_from_slice(&[1; 1000]);
        give(d);
        let d = take(KEEP_MIN);
        assert!(d == [1; 1000] && d.capacity() >= KEEP_MIN);

        // Never more than KEEP buffers; a full list keeps the largest ones.
        for _ in 0..KEEP + 5 {
            give(Vec::with_capacity(KEEP_MIN));
        }
        assert!(spares.free().len() <= KEEP);
        give(Vec::with_capacity(2 * KEEP_MIN));
        assert!(spares.free().iter().any(|b| b.capacity() >= 2 * KEEP_MIN));
        assert!(spares.kept_bytes() <= KEEP * KEEP_MAX);
        drop((a, b, c));
    }

    #[test]
    fn growing_leaves_room_for_a_slightly_longer_next_answer() {
        let mut buf = vec![7u8; 10];
        reserve(&mut buf, 800_000);
        assert!(buf.capacity() >= 900_000 && buf == [7; 10]);
        let (ptr, cap) = (buf.as_ptr(), buf.capacity());
        // What fits is left alone: no reallocation.
        reserve(&mut buf, 890_000);
        reserve(&mut buf, 5);
        assert_eq!((buf.as_ptr(), buf.capacity()), (ptr, cap));
    }
}
