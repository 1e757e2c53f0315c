//! The heap, and how much of it the firmware has used at most.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_alloc::LlffHeap;

/// A heap that counts the bytes allocated: now, and at the peak.
pub struct CountingHeap {
    heap: LlffHeap,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingHeap {
    pub const fn empty() -> CountingHeap {
        CountingHeap {
            heap: LlffHeap::empty(),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Gives the heap its arena.
    ///
    /// # Safety
    ///
    /// Once, before any allocation, with memory used for nothing else.
    pub unsafe fn init(&self, start: usize, size: usize) {
        // SAFETY: as the caller promises.
        unsafe { self.heap.init(start, size) }
    }

    /// Bytes allocated now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes allocated at once since start.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let block = unsafe { self.heap.alloc(layout) };
        if !block.is_null() {
            let used = self.used.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(used, Ordering::Relaxed);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        self.used.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { self.heap.dealloc(block, layout) }
    }
}
