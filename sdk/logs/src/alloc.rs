//! The allocator of log processors on wasm32: a bump arena that starts over
//! whenever everything in it has been freed, in front of the standard one.
//!
//! A `process` call allocates thousands of short-lived blocks per batch: every
//! body the host lowers, every attribute key and value a plugin parses out,
//! every list the bindings build to return them, and all of them are freed
//! again by the time the host's post-return has run. wasi-libc's `malloc`
//! (dlmalloc) spends about as long on that as the plugin spends parsing.
//! Here, from the first `process` call on, a block is a pointer bump in the
//! arena, freeing one only counts it, and when the count of live blocks
//! reaches zero (at the end of every post-return, usually) the arena starts
//! over at its beginning. Blocks come out in the order they are used, so the
//! host reads a batch's results from one run of memory.
//!
//! Safe for any processor, however its state lives:
//!
//! - Allocations before the first `process` call (`init`: the config, the
//!   processor's state) and during `metrics` use the standard allocator,
//!   and so does growing a block that came from it.
//! - If something allocated in the arena outlives a call (a buffer kept in
//!   the processor between batches, say), the arena will not have started
//!   over by the next `process` call. It then stops serving new blocks for
//!   good: the instance goes on with the standard allocator, and the blocks
//!   still in the arena stay valid until they are freed. The cost is the
//!   arena's memory (about one batch's worth), not correctness.
//! - The arena grows only when a batch needs more than it ever did; if
//!   growing fails (the instance's memory cap), the standard allocator is
//!   tried, as before.
//!
//! This crate registers it as the global allocator of wasm builds (cargo
//! feature `call-arena`, on by default; turn default features off to keep
//! dlmalloc or register another). Native builds (tests, the harness) keep
//! the system allocator.

#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use std::alloc::System;

/// The arena grows by at least this much at a time.
const GROWTH: usize = 1 << 20;
/// Separate stretches of memory the arena may hold (growth that adjoins the
/// last one extends it; dlmalloc growing memory in between starts a new one).
const MAX_RANGES: usize = 32;

#[derive(Clone, Copy)]
struct Range {
    start: usize,
    end: usize,
}

/// See the module docs. One per single-threaded wasm instance.
pub struct CallArena {
    ranges: [Cell<Range>; MAX_RANGES],
    n_ranges: Cell<usize>,
    /// The range being bumped, its next free byte, and the start of the
    /// last block handed out (which can grow or be given back in place).
    current: Cell<usize>,
    next: Cell<usize>,
    last: Cell<usize>,
    /// Blocks handed out and not yet freed.
    live: Cell<usize>,
    /// Serving blocks now (after the first `process`, outside `metrics`).
    active: Cell<bool>,
    /// A block outlived a call: never serve again.
    retired: Cell<bool>,
    /// Set when the arena starts over, cleared at every `process` start.
    restarted: Cell<bool>,
    /// Seen a `process` call yet.
    started: Cell<bool>,
}

// SAFETY: wasm32-wasip2 components are single-threaded; nothing else can
// observe the cells concurrently. (Natively the type is never registered as
// the global allocator; its tests use it from one thread.)
unsafe impl Sync for CallArena {}

const EMPTY: Range = Range { start: 0, end: 0 };

impl CallArena {
    pub const fn new() -> Self {
        Self {
            ranges: [const { Cell::new(EMPTY) }; MAX_RANGES],
            n_ranges: Cell::new(0),
            current: Cell::new(0),
            next: Cell::new(0),
            last: Cell::new(usize::MAX),
            live: Cell::new(0),
            active: Cell::new(false),
            retired: Cell::new(false),
            restarted: Cell::new(false),
            started: Cell::new(false),
        }
    }

    /// Called as every `process` call starts (the export macro does). The
    /// first one switches the arena on; any later one finds out whether the
    /// arena emptied since the previous one, and retires it if not.
    pub fn process_started(&self) {
        if !self.started.get() {
            self.started.set(true);
            self.active.set(true);
        } else if !self.restarted.get() && self.live.get() > 0 && self.active.get() {
            // Something from an earlier call is still allocated in the arena
            // (blocks of this batch's lowering are in it too, which is why
            // the test is whether it started over in between, not whether
            // it is empty now).
            self.retired.set(true);
            self.active.set(false);
        }
        self.restarted.set(false);
    }

    /// Runs `f` with the arena switched off (for `metrics`, whose results
    /// may be kept by the processor).
    pub fn outside<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = self.active.replace(false);
        let r = f();
        self.active.set(was && !self.retired.get());
        r
    }

    /// Whether `ptr` lies in memory the arena owns.
    #[inline]
    fn owns(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        self.ranges[..self.n_ranges.get()].iter().any(|r| {
            let r = r.get();
            p >= r.start && p < r.end
        })
    }

    /// A block from the arena, or null when it cannot grow.
    #[inline]
    fn bump(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        loop {
            let i = self.current.get();
            if i < self.n_ranges.get() {
                let range = self.ranges[i].get();
                // Checked: in wasm32 the arena may end at the last byte of memory.
                if let Some(start) = self.next.get().checked_add(align - 1).map(|p| p & !(align - 1))
                    && let Some(end) = start.checked_add(size)
                    && end <= range.end
                {
                    self.next.set(end);
                    self.last.set(start);
                    self.live.set(self.live.get() + 1);
                    return start as *mut u8;
                }
                if i + 1 < self.n_ranges.get() {
                    self.current.set(i + 1);
                    self.next.set(self.ranges[i + 1].get().start);
                    continue;
                }
            }
            if !self.grow(size.saturating_add(align)) {
                return core::ptr::null_mut();
            }
        }
    }

    /// Adds at least `min` bytes at the end; false if memory cannot grow.
    #[cold]
    fn grow(&self, min: usize) -> bool {
        let n = self.n_ranges.get();
        let Some(bytes) = min.max(GROWTH).checked_next_multiple_of(PAGE) else { return false };
        let Some(start) = fresh_memory(bytes) else { return false };
        // Memory can end at exactly 4 GiB, one past wasm32's usize.
        let Some(end) = start.checked_add(bytes) else { return false };
        if n > 0 {
            let mut last = self.ranges[n - 1].get();
            if last.end == start {
                last.end = end;
                self.ranges[n - 1].set(last);
                if self.current.get() >= n {
                    self.current.set(n - 1);
                }
                return true;
            }
        }
        if n == MAX_RANGES {
            // Not tracked, so not reused: rare enough (dlmalloc growing
            // memory between 32 growths of the arena) to leave at that.
            return false;
        }
        self.ranges[n].set(Range { start, end });
        self.n_ranges.set(n + 1);
        self.current.set(n);
        self.next.set(start);
        true
    }

    /// Gives back an arena block; the arena starts over once all are.
    #[inline]
    fn release(&self, ptr: *mut u8, size: usize) {
        let live = self.live.get() - 1;
        self.live.set(live);
        if live == 0 && !self.retired.get() {
            self.current.set(0);
            self.next.set(self.ranges[0].get().start);
            self.last.set(usize::MAX);
            self.restarted.set(true);
        } else if ptr as usize == self.last.get() && ptr as usize + size == self.next.get() {
            self.next.set(ptr as usize);
            self.last.set(usize::MAX);
        }
    }
}

impl Default for CallArena {
    fn default() -> Self {
        Self::new()
    }
}

const PAGE: usize = 65536;

/// `bytes` (a multiple of PAGE) of memory nobody else uses.
#[cfg(target_arch = "wasm32")]
fn fresh_memory(bytes: usize) -> Option<usize> {
    let old = core::arch::wasm32::memory_grow(0, bytes / PAGE);
    (old != usize::MAX).then(|| old * PAGE)
}

/// Natively (the unit tests): memory from the system allocator, never freed.
#[cfg(not(target_arch = "wasm32"))]
fn fresh_memory(bytes: usize) -> Option<usize> {
    // SAFETY: a non-zero size and a power-of-two alignment.
    let p = unsafe { System.alloc(Layout::from_size_align_unchecked(bytes, 16)) };
    (!p.is_null()).then_some(p as usize)
}

// SAFETY: an arena block is `layout.size()` bytes at `layout.align()`, cut
// from memory only the arena owns and handed out once until the arena starts
// over, which happens only when no block is live. Every other block comes
// from `System` with the caller's layout and goes back to it: `dealloc` and
// `realloc` tell the two apart by address.
unsafe impl GlobalAlloc for CallArena {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.active.get() {
            let p = self.bump(layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            self.release(ptr, layout.size());
        } else {
            // SAFETY: not an arena block, so it came from System with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // A block of the standard allocator stays with it (state from `init`).
            // SAFETY: it came from System with `layout`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let p = ptr as usize;
        if new_size <= layout.size() {
            // Shrinking (`into_boxed_slice`): the block stays where it is.
            if p == self.last.get() && p + layout.size() == self.next.get() {
                self.next.set(p + new_size);
            }
            return ptr;
        }
        // The last block grows in place while its range has room (a Vec or
        // String being filled).
        if p == self.last.get()
            && p + layout.size() == self.next.get()
            && self.active.get()
            && let Some(end) = p.checked_add(new_size)
            && end <= self.ranges[self.current.get()].get().end
        {
            self.next.set(end);
            return ptr;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the
        // GlobalAlloc contract for realloc); the new block is at least
        // `new_size` bytes, the old one `layout.size()`, and they are distinct.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn blocks_are_bumped_in_order_and_the_arena_starts_over_when_empty() {
        let a = CallArena::new();
        a.process_started();
        // SAFETY: each block is used within its layout and freed once.
        unsafe {
            let p = a.alloc(l(24));
            let q = a.alloc(l(10));
            assert_eq!(q as usize, p as usize + 24, "one after the other");
            let r = a.alloc(l(8));
            assert_eq!(r as usize % 8, 0);
            a.dealloc(p, l(24));
            a.dealloc(r, l(8));
            a.dealloc(q, l(10));
            assert_eq!(a.alloc(l(24)), p, "all freed: back to the start");
        }
    }

    #[test]
    fn blocks_grow_in_place_and_keep_their_bytes_when_moved() {
        let a = CallArena::new();
        a.process_started();
        // SAFETY: as above.
        unsafe {
            let p = a.alloc(l(10));
            p.copy_from(b"0123456789".as_ptr(), 10);
            assert_eq!(a.realloc(p, l(10), 40), p, "the last block grows in place");
            let q = a.alloc(l(8));
            let moved = a.realloc(p, l(40), 80);
            assert_ne!(moved, p);
            assert_eq!(std::slice::from_raw_parts(moved, 10), b"0123456789");
            let big = a.realloc(moved, l(80), 3 * GROWTH);
            assert_eq!(std::slice::from_raw_parts(big, 10), b"0123456789", "a block bigger than a growth step");
            a.dealloc(big, l(3 * GROWTH));
            a.dealloc(q, l(8));
        }
    }

    #[test]
    fn a_block_outliving_a_call_retires_the_arena_and_stays_valid() {
        let a = CallArena::new();
        // Before the first `process` (init): the standard allocator.
        // SAFETY: as above.
        unsafe {
            let state = a.alloc(l(16));
            assert!(!a.owns(state));
            a.process_started();
            let kept = a.alloc(l(16));
            kept.write_bytes(7, 16);
            let batch = a.alloc(l(16));
            a.dealloc(batch, l(16));
            a.process_started(); // `kept` is still live: retired
            let after = a.alloc(l(16));
            assert!(!a.owns(after), "retired: the standard allocator from now on");
            assert!(a.owns(kept));
            assert_eq!(std::slice::from_raw_parts(kept, 16), [7; 16]);
            a.dealloc(kept, l(16));
            a.dealloc(after, l(16));
            a.dealloc(state, l(16));
            a.process_started();
            let later = a.alloc(l(16));
            assert!(!a.owns(later), "stays retired");
            a.dealloc(later, l(16));
        }
    }

    #[test]
    fn metrics_use_the_standard_allocator() {
        let a = CallArena::new();
        a.process_started();
        // SAFETY: as above.
        unsafe {
            let cached = a.outside(|| a.alloc(l(32)));
            assert!(!a.owns(cached));
            let p = a.alloc(l(32));
            assert!(a.owns(p), "on again after `metrics`");
            a.dealloc(p, l(32));
            a.process_started();
            assert!(a.owns(a.alloc(l(32))), "a block kept from `metrics` does not retire the arena");
        }
    }
}
