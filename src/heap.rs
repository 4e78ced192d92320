//! The function's global allocator: the system's, keeping a few freed medium blocks
//! (16–128 KiB) for the next allocation of the same size.
//!
//! The HTTP client reads each PullLogs answer 32 KiB at a time into a fresh buffer whenever the
//! last chunk it handed over is still held, and frees it once that chunk is copied out. musl
//! serves a block that size from a mapping of its own and unmaps it when it is freed, so the
//! static build mapped, faulted in page by page and unmapped about one such buffer per 2,000
//! logs shipped (`strace`: 552 `mmap`s of 36,864 bytes over a 1M-log range), each unmap also
//! flushing the other worker thread's TLB. Kept here instead, the same few blocks go round:
//! page faults over a 1M-log range fell from 3.5 to 0.1 per 1000 logs.
//!
//! Sizes are rounded up to whole pages, so requests a few bytes apart share blocks; at most
//! [`SLOTS`] blocks (1 MiB) are kept. Everything else goes straight to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Blocks kept at most.
pub const SLOTS: usize = 8;
/// Smallest size kept (smaller blocks live in the system allocator's shared pages).
const MIN: usize = 16 * 1024;
/// Largest size kept.
const MAX: usize = 128 * 1024;
const PAGE: usize = 4096;
/// Largest alignment kept: what `malloc` gives anyway, so every kept block came from `malloc`
/// and can go back through `free` whatever size it is asked for.
const ALIGN: usize = 16;

/// The system allocator with a few freed medium blocks kept for reuse.
pub struct Recycling {
    /// Free blocks; the first word of each holds its size (what it was allocated with).
    slots: [AtomicPtr<u8>; SLOTS],
}

impl Recycling {
    pub const fn new() -> Recycling {
        Recycling {
            slots: [const { AtomicPtr::new(null_mut()) }; SLOTS],
        }
    }

    /// Blocks currently kept.
    pub fn kept(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count()
    }
}

impl Default for Recycling {
    fn default() -> Recycling {
        Recycling::new()
    }
}

/// The size a block of `layout` is allocated with when it may be kept: `layout`'s rounded up
/// to whole pages.
fn keepable(size: usize, align: usize) -> Option<usize> {
    (align <= ALIGN && (MIN..=MAX).contains(&size)).then(|| size.div_ceil(PAGE) * PAGE)
}

// SAFETY: every block handed out comes from `System` with at least the size and alignment asked
// for: a kept block was allocated (or reallocated) with the page-rounded size of a keepable
// layout, and is handed out again only for a layout that rounds to that same size. A block is
// kept in one slot at a time and taken out with an atomic swap, so two callers never get the
// same block. Kept blocks are only ever given back to `System` through `free` (alignment ≤ 16).
unsafe impl GlobalAlloc for Recycling {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(size) = keepable(layout.size(), layout.align()) else {
            return System.alloc(layout);
        };
        for slot in &self.slots {
            if slot.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let block = slot.swap(null_mut(), Ordering::Acquire);
            if block.is_null() {
                continue;
            }
            let had = block.cast::<usize>().read();
            if had == size {
                return block;
            }
            // Another size: back where it was, or to the system if that slot was filled since.
            if slot
                .compare_exchange(null_mut(), block, Ordering::Release, Ordering::Relaxed)
                .is_err()
            {
                System.dealloc(block, Layout::from_size_align_unchecked(had, ALIGN));
            }
        }
        System.alloc(Layout::from_size_align_unchecked(size, layout.align()))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match keepable(layout.size(), layout.align()) {
            Some(_) => {
                let block = self.alloc(layout);
                if !block.is_null() {
                    block.write_bytes(0, layout.size());
                }
                block
            }
            None => System.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if let Some(size) = keepable(layout.size(), layout.align()) {
            block.cast::<usize>().write(size);
            for slot in &self.slots {
                if slot
                    .compare_exchange(null_mut(), block, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
        System.dealloc(block, layout)
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A block that grows or shrinks into the kept range gets its rounded size, as if it
        // had been allocated there: it may be kept when freed.
        let size = keepable(new_size, layout.align()).unwrap_or(new_size);
        System.realloc(block, layout, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    /// Frees what `heap` keeps.
    fn drain(heap: &Recycling) {
        for slot in &heap.slots {
            let block = slot.swap(null_mut(), Ordering::Acquire);
            if !block.is_null() {
                unsafe {
                    let size = block.cast::<usize>().read();
                    System.dealloc(block, Layout::from_size_align_unchecked(size, ALIGN));
                }
            }
        }
    }

    #[test]
    fn a_freed_medium_block_serves_the_next_request_of_its_rounded_size() {
        let heap = Recycling::new();
        unsafe {
            let a = heap.alloc(layout(30_000));
            heap.dealloc(a, layout(30_000));
            assert_eq!(heap.kept(), 1);
            // 29,000 and 30,000 both round to 32 KiB: the same block, whole pages usable.
            let b = heap.alloc(layout(29_000));
            assert_eq!(b, a);
            assert_eq!(heap.kept(), 0);
            b.write_bytes(0xA5, 32 * 1024);
            heap.dealloc(b, layout(29_000));

            // Another size does not take it, and leaves it kept.
            let c = heap.alloc(layout(64 * 1024));
            assert_ne!(c, a);
            assert_eq!(heap.kept(), 1);
            heap.dealloc(c, layout(64 * 1024));
            assert_eq!(heap.kept(), 2);
            assert_eq!(heap.alloc(layout(32 * 1024)), a);
            heap.dealloc(a, layout(32 * 1024));

            // Small, large and over-aligned blocks are never kept.
            for l in [
                layout(MIN - 1),
                layout(MAX + 1),
                Layout::from_size_align(32 * 1024, 64).unwrap(),
            ] {
                let p = heap.alloc(l);
                assert!(!p.is_null() && p as usize % l.align() == 0);
                heap.dealloc(p, l);
            }
            assert_eq!(heap.kept(), 2);

            // At most SLOTS blocks; the rest go back to the system.
            let blocks: Vec<*mut u8> = (0..SLOTS + 3).map(|_| heap.alloc(layout(20_000))).collect();
            for &p in &blocks {
                heap.dealloc(p, layout(20_000));
            }
            assert_eq!(heap.kept(), SLOTS);
        }
        drain(&heap);
    }

    #[test]
    fn zeroed_and_reallocated_blocks_are_whole() {
        let heap = Recycling::new();
        unsafe {
            let a = heap.alloc(layout(40_000));
            a.write_bytes(0xFF, 40_960);
            heap.dealloc(a, layout(40_000));
            let z = heap.alloc_zeroed(layout(40_000));
            assert_eq!(z, a);
            assert!(std::slice::from_raw_parts(z, 40_000)
                .iter()
                .all(|&b| b == 0));
            heap.dealloc(z, layout(40_000));

            // Grown from a small block into the range: allocated with the rounded size, so
            // when kept and handed out for that size, all of it is usable.
            let small = heap.alloc(layout(100));
            small.write_bytes(7, 100);
            let grown = heap.realloc(small, layout(100), 20_481);
            assert!(std::slice::from_raw_parts(grown, 100)
                .iter()
                .all(|&b| b == 7));
            heap.dealloc(grown, layout(20_481));
            let again = heap.alloc(layout(24 * 1024));
            assert_eq!(again, grown);
            again.write_bytes(1, 24 * 1024);
            // Shrunk out of the range: not kept.
            let shrunk = heap.realloc(again, layout(24 * 1024), 1000);
            heap.dealloc(shrunk, layout(1000));
        }
        drain(&heap);
    }

    #[test]
    fn threads_never_share_a_block() {
        static HEAP: Recycling = Recycling::new();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..2000usize {
                        let size = MIN + (i * 7919 + usize::from(t) * 104_729) % (MAX - MIN);
                        let rounded = size.div_ceil(PAGE) * PAGE;
                        unsafe {
                            let p = HEAP.alloc(layout(size));
                            let mark = t.wrapping_mul(31).wrapping_add(i as u8);
                            p.write_bytes(mark, rounded);
                            std::thread::yield_now();
                            let all = std::slice::from_raw_parts(p, rounded);
                            assert!(all.iter().all(|&b| b == mark), "block shared");
                            HEAP.dealloc(p, layout(size));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(HEAP.kept() <= SLOTS);
        drain(&HEAP);
    }
}
