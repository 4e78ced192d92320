//! A global allocator for tests and fuzz targets that records the largest single allocation
//! made on the current thread while [`largest_allocation`] runs. Install it in the test or
//! fuzz crate:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: sls_syslog_devkit::alloc::Tracking = sls_syslog_devkit::alloc::Tracking;
//! ```
//!
//! Without it installed, [`largest_allocation`] reports 0.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;

/// Forwards to the system allocator, noting allocation sizes on tracking threads.
pub struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; `note` only touches const-initialised
// thread-locals (no allocation, no destructor).
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

fn start() {
    LARGEST.with(|m| m.set(0));
    TRACKING.with(|on| on.set(true));
}

fn stop() -> usize {
    TRACKING.with(|on| on.set(false));
    LARGEST.with(Cell::get)
}

/// The largest single allocation `f` makes on this thread, and its result.
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (usize, T) {
    start();
    let out = f();
    (stop(), out)
}

/// The same for a future, polled to completion on this thread (a current-thread runtime).
pub async fn largest_allocation_async<T>(f: impl Future<Output = T>) -> (usize, T) {
    start();
    let out = f.await;
    (stop(), out)
}
