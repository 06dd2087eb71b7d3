//! Rows from either database, read as the few Rust types the model stores.
//!
//! SQLite is loosely typed and PostgreSQL strictly: `SELECT 1` is an INT4 there, a flag
//! column may be BOOLEAN or BIGINT, an `EXISTS` is a BOOLEAN. Reading every integer-like
//! column as `i64` and every flag as `bool` on both keeps the queries' Rust side the same;
//! anything else (a NUMERIC from `SUM`, say) is a decode error naming the column's type,
//! and the query casts instead.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Postgres, Row as _, TypeInfo, ValueRef};

use super::Value;

/// One row of a result.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Pg(PgRow),
    /// Read by the group committer's own connection (`direct.rs`).
    Plain(Vec<Value>),
}

impl Row {
    /// Column `i` as `T`; panics on a type the query's author got wrong, as sqlx's does.
    #[track_caller]
    pub fn get<T: Col>(&self, i: usize) -> T {
        match self.try_get(i) {
            Ok(v) => v,
            Err(e) => panic!("column {i}: {e}"),
        }
    }

    pub fn try_get<T: Col>(&self, i: usize) -> Result<T, sqlx::Error> {
        match self {
            Row::Sqlite(r) => T::sqlite(r, i),
            Row::Pg(r) => T::pg(r, i),
            Row::Plain(cells) => match cells.get(i) {
                Some(v) => T::plain(v, i),
                None => Err(sqlx::Error::ColumnIndexOutOfBounds { index: i, len: cells.len() }),
            },
        }
    }
}

/// A type a column can be read as, on both databases.
pub(crate) trait Col: Sized {
    fn sqlite(row: &SqliteRow, i: usize) -> Result<Self, sqlx::Error>;
    fn pg(row: &PgRow, i: usize) -> Result<Self, sqlx::Error>;
    /// As SQLite stored it: the same leniency as sqlx's reading of SQLite's values.
    fn plain(v: &Value, i: usize) -> Result<Self, sqlx::Error>;
}

fn kind(v: &Value) -> &'static str {
    match v {
        _ if is_null(v) => "NULL",
        Value::Int(_) => "INTEGER",
        Value::Real(_) => "REAL",
        Value::Text(_) => "TEXT",
        Value::Blob(_) => "BLOB",
    }
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::Int(None) | Value::Real(None) | Value::Text(None) | Value::Blob(None))
}

fn decode_error(i: usize, e: impl Into<sqlx::error::BoxDynError>) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: i.to_string(), source: e.into() }
}

fn unexpected(i: usize, wanted: &str, found: &str) -> sqlx::Error {
    decode_error(i, format!("a {found} column read as {wanted}"))
}

/// Decodes column `i` of a PostgreSQL row as `T` (which must match its type exactly).
fn pg_exact<T: for<'r> Decode<'r, Postgres>>(row: &PgRow, i: usize) -> Result<T, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    T::decode(raw).map_err(|e| decode_error(i, e))
}

fn pg_type(row: &PgRow, i: usize) -> Result<(bool, String), sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    Ok((raw.is_null(), raw.type_info().name().to_owned()))
}

impl Col for i64 {
    fn sqlite(row: &SqliteRow, i: usize) -> Result<Self, sqlx::Error> {
        row.try_get(i)
    }

    fn plain(v: &Value, i: usize) -> Result<Self, sqlx::Error> {
        match v {
            Value::Int(Some(n)) => Ok(*n),
            other => Err(unexpected(i, "an integer", kind(other))),
        }
    }

    fn pg(row: &PgRow, i: usize) -> Result<Self, sqlx::Error> {
        let (_, ty) = pg_type(row, i)?;
        match ty.as_str() {
            "INT8" => pg_exact::<i64>(row, i),
            "INT4" => pg_exact::<i32>(row, i).map(i64::from),
            "INT2" => pg_exact::<i16>(row, i).map(i64::from),
            "BOOL" => pg_exact::<bool>(row, i).map(i64::from),
            other => Err(unexpected(i, "an integer", other)),
        }
    }
}

impl Col for bool {
    fn sqlite(row: &SqliteRow, i: usize) -> Result<Self, sqlx::Error> {
        row.try_get(i)
    }

    fn plain(v: &Value, i: usize) -> Result<Self, sqlx::Error> {
        i64::plain(v, i).map(|n| n != 0)
    }

    fn pg(row: &PgRow, i: usize) -> Result<Self, sqlx::Error> {
        let (_, ty) = pg_type(row, i)?;
        match ty.as_str() {
            "BOOL" => pg_exact::<bool>(row, i),
            _ => i64::pg(row, i).map(|n| n != 0),
        }
    }
}

impl Col for String {
    fn sqlite(row: &SqliteRow, i: usize) -> Result<Self, sqlx::Error> {
        row.try_get(i)
    }

    fn plain(v: &Value, i: usize) -> Result<Self, sqlx::Error> {
        match v {
            Value::Text(Some(s)) => Ok(s.clone()),
            other => Err(unexpected(i, "text", kind(other))),
        }
    }

    fn pg(row: &PgRow, i: usize) -> Result<Self, sqlx::Error> {
        pg_exact(row, i)
    }
}

impl Col for Vec<u8> {
    fn sqlite(row: &SqliteRow, i: usize) -> Result<Self, sqlx::Error> {
        row.try_get(i)
    }

    fn plain(v: &Value, i: usize) -> Result<Self, sqlx::Error> {
        match v {
            Value::Blob(Some(b)) => Ok(b.to_vec()),
            Value::Text(Some(s)) => Ok(s.as_bytes().to_vec()),
            other => Err(unexpected(i, "bytes", kind(other))),
        }
    }

    fn pg(row: &PgRow, i: usize) -> Result<Self, sqlx::Error> {
        pg_exact(row, i)
    }
}

impl Col for f64 {
    fn sqlite(row: &SqliteRow, i: usize) -> Result<Self, sqlx::Error> {
        row.try_get(i)
    }

    fn plain(v: &Value, i: usize) -> Result<Self, sqlx::Error> {
        match v {
            Value::Real(Some(x)) => Ok(*x),
            Value::Int(Some(n)) => Ok(*n as f64),
            other => Err(unexpected(i, "a number", kind(other))),
        }
    }

    fn pg(row: &PgRow, i: usize) -> Result<Self, sqlx::Error> {
        let (_, ty) = pg_type(row, i)?;
        match ty.as_str() {
            "FLOAT8" => pg_exact::<f64>(row, i),
            "FLOAT4" => pg_exact::<f32>(row, i).map(f64::from),
            _ => i64::pg(row, i).map(|n| n as f64),
        }
    }
}

impl<T: Col> Col for Option<T> {
    fn sqlite(row: &SqliteRow, i: usize) -> Result<Self, sqlx::Error> {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(None);
        }
        T::sqlite(row, i).map(Some)
    }

    fn pg(row: &PgRow, i: usize) -> Result<Self, sqlx::Error> {
        if pg_type(row, i)?.0 {
            return Ok(None);
        }
        T::pg(row, i).map(Some)
    }

    fn plain(v: &Value, i: usize) -> Result<Self, sqlx::Error> {
        if is_null(v) {
            return Ok(None);
        }
        T::plain(v, i).map(Some)
    }
}

/// A whole row read as a tuple of columns, for `query_as`.
pub(crate) trait FromRow: Sized {
    fn from_row(row: &Row) -> Result<Self, sqlx::Error>;
}

macro_rules! tuple_from_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Col),+> FromRow for ($($t,)+) {
            fn from_row(row: &Row) -> Result<Self, sqlx::Error> {
                Ok(($(row.try_get::<$t>($i)?,)+))
            }
        }
    };
}

tuple_from_row!(A 0);
tuple_from_row!(A 0, B 1);
tuple_from_row!(A 0, B 1, C 2);
tuple_from_row!(A 0, B 1, C 2, D 3);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
