//! An optional bump allocator for plugins (cargo feature `bump-allocator`).
//!
//! The host gives every call a fresh instance and throws it away afterwards,
//! so a plugin never needs to free memory: allocation can be a pointer bump,
//! and `free` a no-op. For collectors that allocate many small strings this
//! removes most of the allocator's cost. The memory cap still applies: a
//! plugin that allocates more in total than `limits.memory` during one call
//! fails that call, so keep to the default allocator if yours streams large
//! data through memory.
//!
//! **Not for plugins that use `std::net`** (or anything else reaching WASI
//! through wasi-libc's sockets): wasi-libc receives socket data in buffers the
//! component's `cabi_realloc`, which is this allocator, hands out, and frees
//! them with its own `malloc`'s `free`; that traps with an out-of-bounds
//! access. `wasmon_sdk::http` talks to `wasi:http` from Rust and is fine.
//!
//! Enable it in the plugin's Cargo.toml and register it at the crate root:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: wasmon_sdk::bump::BumpAllocator = wasmon_sdk::bump::BumpAllocator::new();
//! ```

#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

const PAGE: usize = 65536;

/// A grow-only allocator over pages obtained with `memory.grow`.
pub struct BumpAllocator {
    /// Next free byte and end of the current region.
    next: Cell<usize>,
    end: Cell<usize>,
    /// Start of the last allocation, so it can grow in place.
    last: Cell<usize>,
}

// SAFETY: wasm32-wasip2 plugins are single-threaded; nothing else can observe
// the cells concurrently.
unsafe impl Sync for BumpAllocator {}

impl BumpAllocator {
    pub const fn new() -> Self {
        Self { next: Cell::new(0), end: Cell::new(0), last: Cell::new(usize::MAX) }
    }

    /// Make room for `size` bytes at `align`; returns the start or null.
    fn reserve(&self, size: usize, align: usize) -> *mut u8 {
        let start = (self.next.get() + align - 1) & !(align - 1);
        let Some(end) = start.checked_add(size) else { return core::ptr::null_mut() };
        if self.next.get() == 0 || end > self.end.get() {
            // Take a fresh region from the end of memory (other code, such as
            // wasi-libc's own malloc, may have grown memory in between).
            let pages = size.div_ceil(PAGE).max(16);
            let old = core::arch::wasm32::memory_grow(0, pages);
            if old == usize::MAX {
                return core::ptr::null_mut();
            }
            let base = old * PAGE;
            let start = (base + align - 1) & !(align - 1);
            self.end.set(base + pages * PAGE);
            self.next.set(start + size);
            self.last.set(start);
            return start as *mut u8;
        }
        self.next.set(end);
        self.last.set(start);
        start as *mut u8
    }
}

impl Default for BumpAllocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every returned pointer is aligned as asked, points at `size` bytes
// no other allocation uses, and lies in linear memory obtained from
// `memory.grow` and never handed out twice.
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.reserve(layout.size(), layout.align())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Freeing the last allocation gives its bytes back; anything else
        // waits for the instance to be dropped after the call.
        if ptr as usize == self.last.get() && ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
            self.last.set(usize::MAX);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        // The last allocation grows in place while the region has room
        // (the common case: a Vec or String being filled).
        if start == self.last.get()
            && start + layout.size() == self.next.get()
            && let Some(end) = start.checked_add(new_size)
            && end <= self.end.get()
        {
            self.next.set(end);
            return ptr;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the
        // GlobalAlloc contract for realloc); the copy stays within both blocks.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            }
            new
        }
    }
}
