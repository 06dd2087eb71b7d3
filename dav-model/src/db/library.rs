//! Settings of the SQLite library itself, for the whole process. SQLite takes them only
//! before its first connection, so every opening of a database asks first (`configure`);
//! later calls are refused harmlessly.
//!
//! - Memory statistics off: with them, every allocation SQLite makes takes a
//!   process-wide mutex to count it, about 50 per small PUT; Wharf never reads them.
//! - SQLite allocates through the process's allocator (mimalloc in the `wharf` binary)
//!   instead of the C library's malloc, which cost it about twice as many instructions
//!   per allocation (callgrind).

use std::alloc::Layout;
use std::ffi::{c_int, c_void};

use rusqlite::ffi;

pub(crate) fn configure() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(malloc),
            xFree: Some(free),
            xRealloc: Some(realloc),
            xSize: Some(size),
            xRoundup: Some(roundup),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: both options are documented to be set before initialisation, with these
        // argument types; SQLite copies the methods, and refuses (SQLITE_MISUSE) once it
        // has started, changing nothing.
        let rc = unsafe {
            let a = ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
            let b = ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const ffi::sqlite3_mem_methods);
            a.max(b)
        };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(rc, "SQLite had started already; it keeps its own allocator and statistics");
        }
    });
}

/// Each block starts with its size, so that it can be freed and measured; 16 bytes keep
/// the block after it aligned as SQLite expects (8) and as the allocator prefers.
const HEADER: usize = 16;

fn layout(n: usize) -> Option<Layout> {
    Layout::from_size_align(n.checked_add(HEADER)?, HEADER).ok()
}

unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
    let Some(layout) = usize::try_from(n).ok().and_then(layout) else { return std::ptr::null_mut() };
    // SAFETY: the layout is never zero-sized (it includes the header).
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the block holds HEADER bytes before what SQLite gets, aligned for a usize.
    unsafe {
        base.cast::<usize>().write(n as usize);
        base.add(HEADER).cast()
    }
}

/// The start of the block and its size as SQLite asked for it.
///
/// # Safety
/// `p` came from [`malloc`] or [`realloc`] and was not freed.
unsafe fn block(p: *mut c_void) -> (*mut u8, usize) {
    // SAFETY: see the function's contract.
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        (base, base.cast::<usize>().read())
    }
}

unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what its allocator gave; the layout is the one it was
    // allocated with.
    unsafe {
        let (base, n) = block(p);
        std::alloc::dealloc(base, Layout::from_size_align_unchecked(n + HEADER, HEADER));
    }
}

unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    let Some(new) = usize::try_from(n).ok().and_then(layout) else { return std::ptr::null_mut() };
    // SAFETY: SQLite passes a live block of this allocator (it never reallocates NULL
    // through xRealloc); the old layout is the one it was allocated with.
    unsafe {
        let (base, old) = block(p);
        let moved = std::alloc::realloc(base, Layout::from_size_align_unchecked(old + HEADER, HEADER), new.size());
        if moved.is_null() {
            return std::ptr::null_mut();
        }
        moved.cast::<usize>().write(n as usize);
        moved.add(HEADER).cast()
    }
}

unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: as in `free`; the size came from a c_int.
    unsafe { block(p).1 as c_int }
}

unsafe extern "C" fn roundup(n: c_int) -> c_int {
    n.saturating_add(7) & !7
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_remember_their_size_through_reallocation() {
        // SAFETY: each block is used within its size and freed once.
        unsafe {
            let p = malloc(24);
            assert_eq!(p as usize % 8, 0);
            assert_eq!(size(p), 24);
            p.cast::<u8>().write_bytes(7, 24);
            let q = realloc(p, 4000);
            assert_eq!(size(q), 4000);
            assert_eq!(*q.cast::<u8>().add(23), 7);
            free(q);
            free(std::ptr::null_mut());
            assert!(malloc(-1).is_null());
            assert_eq!(roundup(13), 16);
        }
    }
}
