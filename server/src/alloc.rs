//! The process's allocator: mimalloc, entered by its plain `mi_malloc` where the layout
//! allows.
//!
//! The `mimalloc` crate passes every allocation through `mi_malloc_aligned`, whose checks
//! for an alignment that plain allocation already gives cost about 35 instructions each;
//! a small GET makes about a hundred allocations. Like the standard library's `System`
//! on Unix, an alignment of at most 16 bytes that is not larger than the size is left to
//! the plain call. mimalloc (v3, as built here) guarantees it: with `MI_MAX_ALIGN_SIZE` of
//! 16 its size classes are all whole multiples of 16 bytes above 8 (page-queue.c rounds
//! the small ones to an even number of words), and its pages start 16-aligned, so every
//! block of more than 8 bytes is 16-aligned whatever size was asked for.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// mimalloc's `MI_MAX_ALIGN_SIZE` on the 64-bit targets Wharf is built for.
const PLAIN_ALIGN: usize = 16;

pub struct Mimalloc;

fn plain(layout: &Layout) -> bool {
    layout.align() <= PLAIN_ALIGN && layout.align() <= layout.size()
}

// SAFETY: every block comes from mimalloc and goes back to it; `plain` only picks the
// entry point whose guarantee covers the layout's alignment (see the module comment).
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(&layout) {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(&layout) {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = Layout::from_size_align_unchecked(new_size, layout.align());
        if plain(&layout) && plain(&grown) {
            mi::mi_realloc(ptr.cast(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_their_layout_asks_for() {
        let a = Mimalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 128, 4096] {
            // Sizes that are not multiples of the alignment too, as hash tables and
            // headers make them (52 at 16, 24 at 16).
            for size in [align, 2 * align, 3 * align, 17, 24, 40, 48, 52, 56, 80, 112, 160, 1000, 70_000] {
                let Ok(layout) = Layout::from_size_align(size.max(align), align) else {
                    continue;
                };
                // SAFETY: a non-zero layout; the block is written within its size and freed once.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {} align {align}", layout.size());
                    p.write_bytes(0xa5, layout.size());
                    let q = a.realloc(p, layout, layout.size() * 3);
                    assert_eq!(q as usize % align, 0, "realloc to {} align {align}", layout.size() * 3);
                    assert_eq!(*q.add(layout.size() - 1), 0xa5);
                    a.dealloc(q, Layout::from_size_align_unchecked(layout.size() * 3, align));
                }
            }
        }
    }
}
