//! The committer's prepared statements, run through SQLite's C interface directly.
//!
//! rusqlite's statement cache finds a statement by hashing its whole text (several
//! hundred bytes for a plain PUT's guarded INSERT) twice per use, and allocates its key
//! each time; with its binding and reading this was a tenth of a small PUT's
//! instructions. Most texts here are made once for the whole process (`&'static`), so
//! they are found by their address instead; a text made for one batch is found by its
//! content.

use std::collections::HashMap;
use std::ffi::{c_int, CStr};
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr::NonNull;

use rusqlite::ffi;

use super::{Row, Value};
use crate::{Error, Result};

/// Statements by text, each prepared once. Dropped before its connection closes (see
/// `Direct`): SQLite refuses to close a connection with statements left.
#[derive(Default)]
pub(super) struct Prepared {
    /// Texts that live as long as the process: their address names them for good.
    by_address: HashMap<(usize, usize), Statement, BuildHasherDefault<AddressHasher>>,
    by_text: HashMap<Box<str>, Statement>,
}

/// Texts made per batch are few kinds (a statement's text depends on its shape, never on
/// a value); this bounds them should that change.
const MAX_TRANSIENT: usize = 128;

/// Where a statement's text lives.
pub(super) enum Text<'a> {
    Static(&'static str),
    Transient(&'a str),
}

impl<'a> Text<'a> {
    /// A borrowed text of a batch is `'static`; an owned one lives as long as its batch.
    #[allow(clippy::ptr_arg)] // Which variant it is matters, not just the text.
    pub fn of(sql: &'a std::borrow::Cow<'static, str>) -> Text<'a> {
        match sql {
            std::borrow::Cow::Borrowed(s) => Text::Static(s),
            std::borrow::Cow::Owned(s) => Text::Transient(s),
        }
    }
}

impl Prepared {
    /// Runs one statement of a batch on `db` and returns its rows.
    ///
    /// # Safety
    /// `db` is the open connection every statement of this cache was prepared on.
    pub unsafe fn run(&mut self, db: *mut ffi::sqlite3, text: Text<'_>, values: &[Value]) -> Result<Vec<Row>> {
        let statement = match text {
            Text::Static(sql) => match self.by_address.entry((sql.as_ptr() as usize, sql.len())) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                // SAFETY: the caller's `db`.
                std::collections::hash_map::Entry::Vacant(e) => e.insert(unsafe { Statement::prepare(db, sql)? }),
            },
            Text::Transient(sql) => {
                if !self.by_text.contains_key(sql) {
                    if self.by_text.len() >= MAX_TRANSIENT {
                        self.by_text.clear();
                    }
                    // SAFETY: the caller's `db`.
                    let made = unsafe { Statement::prepare(db, sql)? };
                    self.by_text.insert(sql.into(), made);
                }
                self.by_text.get_mut(sql).ok_or_else(|| Error::Internal("a prepared statement vanished".into()))?
            }
        };
        // SAFETY: prepared on the caller's `db`.
        unsafe { statement.run(db, values) }
    }
}

/// One prepared statement, finalized when dropped.
struct Statement(NonNull<ffi::sqlite3_stmt>);

// SAFETY: the connection is opened in SQLite's multi-thread mode, where a statement may
// move between threads as long as one uses it at a time, which `&mut` ensures.
unsafe impl Send for Statement {}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: a statement this value owns, finalized once.
        unsafe { ffi::sqlite3_finalize(self.0.as_ptr()) };
    }
}

impl Statement {
    /// # Safety
    /// `db` is an open connection.
    unsafe fn prepare(db: *mut ffi::sqlite3, sql: &str) -> Result<Statement> {
        let len = c_int::try_from(sql.len()).map_err(|_| Error::Internal("a statement too long to prepare".into()))?;
        let (mut raw, mut tail) = (std::ptr::null_mut(), std::ptr::null());
        let flags = ffi::SQLITE_PREPARE_PERSISTENT;
        // SAFETY: `sql` is valid for `len` bytes; SQLite writes the statement to `raw` and
        // where its text ended to `tail`.
        let rc = unsafe { ffi::sqlite3_prepare_v3(db, sql.as_ptr().cast(), len, flags, &mut raw, &mut tail) };
        if rc != ffi::SQLITE_OK {
            // SAFETY: `db` is open.
            return Err(unsafe { error(db, rc) });
        }
        let statement =
            NonNull::new(raw).map(Statement).ok_or_else(|| Error::Internal(format!("no statement in: {sql}")))?;
        // SQLite compiles the first statement only; a second would be skipped without a
        // word here, where the pools run them all. `tail` points into `sql`.
        let rest = sql.get((tail as usize).saturating_sub(sql.as_ptr() as usize)..).unwrap_or_default();
        if !rest.trim_matches(|c: char| c.is_whitespace() || c == ';').is_empty() {
            return Err(Error::Internal(format!("more than one statement in: {sql}")));
        }
        Ok(statement)
    }

    /// Binds `values`, steps through the rows and reads them, and leaves the statement
    /// reset with nothing bound, whatever happened.
    ///
    /// # Safety
    /// `db` is the connection this statement was prepared on.
    unsafe fn run(&mut self, db: *mut ffi::sqlite3, values: &[Value]) -> Result<Vec<Row>> {
        let s = self.0.as_ptr();
        let _reset = Reset(s);
        // SAFETY: `s` is a live statement of `db`; the values outlive the steps (bound
        // without a copy, unbound by `Reset` before this returns).
        unsafe {
            let expected = usize::try_from(ffi::sqlite3_bind_parameter_count(s)).unwrap_or(0);
            if expected != values.len() {
                let sql = CStr::from_ptr(ffi::sqlite3_sql(s)).to_string_lossy();
                return Err(Error::Internal(format!("{} values bound to: {sql}", values.len())));
            }
            for (i, v) in values.iter().enumerate() {
                let rc = bind(s, i as c_int + 1, v);
                if rc != ffi::SQLITE_OK {
                    return Err(error(db, rc));
                }
            }
            let columns = ffi::sqlite3_column_count(s);
            // Room for a listing's rows in a few steps rather than many doublings.
            let mut rows = Vec::with_capacity(16);
            loop {
                match ffi::sqlite3_step(s) {
                    ffi::SQLITE_ROW => rows.push(Row::Plain((0..columns).map(|i| column(s, i)).collect())),
                    ffi::SQLITE_DONE => return Ok(rows),
                    rc => return Err(error(db, rc)),
                }
            }
        }
    }
}

/// Resets its statement and clears its values when dropped.
struct Reset(*mut ffi::sqlite3_stmt);

impl Drop for Reset {
    fn drop(&mut self) {
        // SAFETY: a live statement; both calls are valid in any state of it.
        unsafe {
            ffi::sqlite3_reset(self.0);
            ffi::sqlite3_clear_bindings(self.0);
        }
    }
}

/// # Safety
/// `s` is a live statement, reset; a text or blob is bound without a copy, so it must
/// stay valid until the statement is reset.
unsafe fn bind(s: *mut ffi::sqlite3_stmt, i: c_int, v: &Value) -> c_int {
    // SAFETY: as the function's contract says.
    unsafe {
        match v {
            Value::Int(Some(n)) => ffi::sqlite3_bind_int64(s, i, *n),
            Value::Real(Some(x)) => ffi::sqlite3_bind_double(s, i, *x),
            // An empty String's pointer is dangling; SQLite may still copy zero bytes from it.
            Value::Text(Some(t)) if t.is_empty() => {
                ffi::sqlite3_bind_text64(s, i, c"".as_ptr(), 0, ffi::SQLITE_STATIC(), ffi::SQLITE_UTF8 as u8)
            }
            Value::Text(Some(t)) => ffi::sqlite3_bind_text64(
                s,
                i,
                t.as_ptr().cast(),
                t.len() as u64,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as u8,
            ),
            // An empty blob, not NULL (SQLite reads a null pointer as NULL).
            Value::Blob(Some(b)) if b.is_empty() => ffi::sqlite3_bind_zeroblob(s, i, 0),
            Value::Blob(Some(b)) => {
                ffi::sqlite3_bind_blob64(s, i, b.as_ptr().cast(), b.len() as u64, ffi::SQLITE_STATIC())
            }
            Value::Int(None) | Value::Real(None) | Value::Text(None) | Value::Blob(None) => {
                ffi::sqlite3_bind_null(s, i)
            }
        }
    }
}

/// Column `i` of the current row, as the pools' rows decode it.
///
/// # Safety
/// `s` is a live statement on a row, and `i` one of its columns.
unsafe fn column(s: *mut ffi::sqlite3_stmt, i: c_int) -> Value {
    // SAFETY: as the function's contract says; text and blob pointers are read (text
    // first, then its length, as SQLite documents) and copied before the next step.
    unsafe {
        match ffi::sqlite3_column_type(s, i) {
            ffi::SQLITE_INTEGER => Value::Int(Some(ffi::sqlite3_column_int64(s, i))),
            ffi::SQLITE_FLOAT => Value::Real(Some(ffi::sqlite3_column_double(s, i))),
            ffi::SQLITE_TEXT => {
                let p = ffi::sqlite3_column_text(s, i);
                let bytes = slice(p, ffi::sqlite3_column_bytes(s, i));
                // Validating first is much cheaper than the lossy conversion's chunks.
                let text = match std::str::from_utf8(bytes) {
                    Ok(text) => text.to_owned(),
                    Err(_) => String::from_utf8_lossy(bytes).into_owned(),
                };
                Value::Text(Some(text))
            }
            ffi::SQLITE_BLOB => {
                let p = ffi::sqlite3_column_blob(s, i).cast::<u8>();
                Value::Blob(Some(bytes::Bytes::copy_from_slice(slice(p, ffi::sqlite3_column_bytes(s, i)))))
            }
            _ => Value::Int(None),
        }
    }
}

/// # Safety
/// `p` points to `len` readable bytes, or `len` is not positive.
unsafe fn slice<'a>(p: *const u8, len: c_int) -> &'a [u8] {
    match usize::try_from(len) {
        // SAFETY: as the function's contract says.
        Ok(n) if n > 0 && !p.is_null() => unsafe { std::slice::from_raw_parts(p, n) },
        _ => &[],
    }
}

/// A full disk is the client's 507, as a full blob store is; anything else is ours.
///
/// # Safety
/// `db` is an open connection.
pub(super) unsafe fn error(db: *mut ffi::sqlite3, rc: c_int) -> Error {
    if rc & 0xff == ffi::SQLITE_FULL {
        return Error::InsufficientStorage;
    }
    // SAFETY: SQLite's message for the connection's last error, a C string it owns.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)).to_string_lossy().into_owned() };
    Error::Internal(format!("database error: {message} (code {rc})"))
}

/// Folds a text's address and length; no client chooses them.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_usize(usize::from(*b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
