//! The function's global allocator: the system's, keeping a few freed medium blocks
//! (16–128 KiB) for the next allocation of the same size.
//!
//! The HTTP client reads each PullLogs answer 32 KiB at a time into a fresh buffer whenever the
//! last chunk it handed over is still held, and frees it once that chunk is copied out. musl
//! gave each such buffer fresh pages: the kernel's copy of the answer into them (`recvfrom`)
//! was the largest steady source of page faults (perf, page-fault events with call graphs),
//! and unmapping them flushed the other worker thread's TLB. Kept here instead, the same few
//! blocks go round: page faults over a 1M-log range fell from 2.8–5.4 to 0.1–1.1 per 1000
//! logs, and `recvfrom`'s share of the CPU samples from 1.8% to 0.8%.
//!
//! Sizes in that range are rounded up to whole pages (a block grown into it by `realloc`
//! too), so requests a few bytes apart share blocks. At most [`SLOTS`] blocks (1 MiB) are
//! kept; when all are taken, a freed block replaces one of them (the newest sizes are the ones
//! asked for again). Other sizes, and every alignment over 16, go straight to the system
//! allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Blocks kept at most.
pub const SLOTS: usize = 8;
/// Smallest size kept (smaller blocks live in the system allocator's shared pages).
const MIN: usize = 16 * 1024;
/// Largest size kept.
const MAX: usize = 128 * 1024;
const PAGE: usize = 4096;
/// Largest alignment kept: what `malloc` gives anyway on the 64-bit targets below, so every
/// kept block came from `malloc`, suits any alignment up to this, and can go back through
/// `free`. (Elsewhere `malloc` may only align to 8: nothing is kept there.)
const ALIGN: usize = 16;
const ENABLED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// The system allocator with a few freed medium blocks kept for reuse.
pub struct Recycling {
    /// Free blocks; the first word of each holds its size (what it was allocated with).
    slots: [AtomicPtr<u8>; SLOTS],
    /// Which slot a freed block replaces when all are taken (counts round).
    evict: AtomicUsize,
}

impl Recycling {
    pub const fn new() -> Recycling {
        Recycling {
            slots: [const { AtomicPtr::new(null_mut()) }; SLOTS],
            evict: AtomicUsize::new(0),
        }
    }

    /// A kept block of `size` bytes, taken out of its slot.
    ///
    /// # Safety
    /// Only as [`GlobalAlloc`] methods may call it.
    unsafe fn take(&self, size: usize) -> Option<*mut u8> {
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
                return Some(block);
            }
            // Another size: back where it was, or to the system if that slot was filled since.
            if slot
                .compare_exchange(null_mut(), block, Ordering::Release, Ordering::Relaxed)
                .is_err()
            {
                System.dealloc(block, Layout::from_size_align_unchecked(had, ALIGN));
            }
        }
        None
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
    (ENABLED && align <= ALIGN && (MIN..=MAX).contains(&size)).then(|| size.div_ceil(PAGE) * PAGE)
}

// SAFETY: every block handed out comes from `System` with at least the size and alignment asked
// for: a kept block was allocated (or reallocated) with the page-rounded size of a keepable
// layout, and is handed out again only for a layout that rounds to that same size. A block is
// in one slot at most: it goes into an empty slot, or by a swap that takes the slot's block
// out (which is then freed), and is taken out with a swap, so two callers never get the same
// block. Kept blocks are only ever given back to `System` through `free` (alignment ≤ 16).
unsafe impl GlobalAlloc for Recycling {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(size) = keepable(layout.size(), layout.align()) else {
            return System.alloc(layout);
        };
        match self.take(size) {
            Some(block) => block,
            None => System.alloc(Layout::from_size_align_unchecked(size, layout.align())),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some(size) = keepable(layout.size(), layout.align()) else {
            return System.alloc_zeroed(layout);
        };
        match self.take(size) {
            Some(block) => {
                block.write_bytes(0, layout.size());
                block
            }
            None => System.alloc_zeroed(Layout::from_size_align_unchecked(size, layout.align())),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(size) = keepable(layout.size(), layout.align()) else {
            return System.dealloc(block, layout);
        };
        block.cast::<usize>().write(size);
        for slot in &self.slots {
            if slot
                .compare_exchange(null_mut(), block, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
        // All taken: this one replaces the oldest-filled slot in turn.
        let i = self.evict.fetch_add(1, Ordering::Relaxed) % SLOTS;
        let old = self.slots[i].swap(block, Ordering::AcqRel);
        if !old.is_null() {
            let had = old.cast::<usize>().read();
            System.dealloc(old, Layout::from_size_align_unchecked(had, ALIGN));
        }
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
    use std::collections::HashSet;
    use std::sync::Mutex;

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

            // The ends of the range, and alignment 16, are kept.
            for l in [
                layout(MIN),
                layout(MAX),
                Layout::from_size_align(50_000, 16).unwrap(),
            ] {
                let p = heap.alloc(l);
                assert!(p as usize % l.align() == 0);
                p.write_bytes(1, l.size().div_ceil(PAGE) * PAGE);
                heap.dealloc(p, l);
                assert_eq!(heap.alloc(l), p);
                heap.dealloc(p, l);
            }
            assert_eq!(heap.kept(), 5);

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
            assert_eq!(heap.kept(), 5);
        }
        drain(&heap);
    }

    #[test]
    fn when_every_slot_is_taken_the_newest_block_replaces_one() {
        let heap = Recycling::new();
        unsafe {
            let olds: Vec<*mut u8> = (0..SLOTS).map(|_| heap.alloc(layout(20_000))).collect();
            for &p in &olds {
                heap.dealloc(p, layout(20_000));
            }
            assert_eq!(heap.kept(), SLOTS);
            let new = heap.alloc(layout(100_000));
            heap.dealloc(new, layout(100_000));
            assert_eq!(heap.kept(), SLOTS);
            // One old block went back to the system; the other SLOTS - 1 are still kept.
            // (Counted in the slots: the system may hand the freed block's address out again.)
            let kept_sizes = || -> Vec<usize> {
                heap.slots
                    .iter()
                    .map(|s| s.load(Ordering::Acquire))
                    .filter(|p| !p.is_null())
                    .map(|p| p.cast::<usize>().read())
                    .collect()
            };
            let sizes = kept_sizes();
            assert_eq!(sizes.iter().filter(|&&n| n == 102_400).count(), 1);
            assert_eq!(sizes.iter().filter(|&&n| n == 20_480).count(), SLOTS - 1);
            let old_kept = heap
                .slots
                .iter()
                .filter(|s| olds.contains(&s.load(Ordering::Acquire)))
                .count();
            assert_eq!(old_kept, SLOTS - 1);
            assert_eq!(heap.alloc(layout(100_000)), new);
            heap.dealloc(new, layout(100_000));
            assert_eq!(kept_sizes().len(), SLOTS);
        }
        drain(&heap);
    }

    #[test]
    fn zeroed_and_reallocated_blocks_are_whole() {
        let heap = Recycling::new();
        unsafe {
            // Zeroed with nothing kept, then from a kept block that held other bytes.
            let a = heap.alloc_zeroed(layout(40_000));
            assert!(std::slice::from_raw_parts(a, 40_000)
                .iter()
                .all(|&b| b == 0));
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
            // Grown within the range, kept, and handed out whole again.
            let bigger = heap.realloc(again, layout(24 * 1024), 100_001);
            assert!(std::slice::from_raw_parts(bigger, 24 * 1024)
                .iter()
                .all(|&b| b == 1));
            heap.dealloc(bigger, layout(100_001));
            let whole = heap.alloc(layout(102_400));
            assert_eq!(whole, bigger);
            whole.write_bytes(2, 102_400);
            // Shrunk out of the range: not kept.
            let kept = heap.kept();
            let shrunk = heap.realloc(whole, layout(102_400), 1000);
            heap.dealloc(shrunk, layout(1000));
            assert_eq!(heap.kept(), kept);
        }
        drain(&heap);
    }

    #[test]
    fn threads_never_share_a_block() {
        static HEAP: Recycling = Recycling::new();
        // Blocks held at this moment: a block handed out twice shows up here at once.
        static LIVE: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
        let hold = |p: *mut u8| {
            let mut live = LIVE.lock().unwrap();
            assert!(
                live.get_or_insert_with(HashSet::new).insert(p as usize),
                "handed out twice"
            );
        };
        let release = |p: *mut u8| {
            LIVE.lock().unwrap().as_mut().unwrap().remove(&(p as usize));
        };
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..3000u64 {
                        // Two sizes, so blocks go round; now and then a third, to fill slots
                        // with another size and put blocks back.
                        let size: usize = match i % 7 {
                            0 => 100_000,
                            n if n % 2 == 0 => 33_000,
                            _ => 17_000,
                        };
                        let rounded = size.div_ceil(PAGE) * PAGE;
                        let mark = t << 32 | i;
                        unsafe {
                            let p = HEAP.alloc(layout(size));
                            hold(p);
                            let words =
                                std::slice::from_raw_parts_mut(p.cast::<u64>(), rounded / 8);
                            words.fill(mark);
                            std::thread::yield_now();
                            assert!(words.iter().all(|&w| w == mark), "block shared");
                            release(p);
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
