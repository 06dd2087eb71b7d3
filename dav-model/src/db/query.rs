//! Statements with bound values, run on either database.
//!
//! Values are kept as [`Value`]s rather than handed to a driver at once, so that one
//! statement (or a [`crate::txn::Batch`] of them) can be run on SQLite or PostgreSQL, and
//! run again after a failed group commit. Statements are written with SQLite's `?`
//! placeholders; PostgreSQL gets them numbered (see `sql.rs`).

use bytes::Bytes;
use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Encode, Type};

use super::row::{FromRow, Row};
use super::{Link, On, Pool, Target};

/// A value bound to a placeholder. Each kind carries its own NULL, since PostgreSQL
/// wants to know a NULL's type.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Bytes>),
}

macro_rules! value_from {
    ($variant:ident: $($t:ty => $conv:expr),+ $(,)?) => {
        $(
            impl From<$t> for Value {
                fn from(v: $t) -> Value {
                    #[allow(clippy::redundant_closure_call)]
                    Value::$variant(Some(($conv)(v)))
                }
            }
            impl From<Option<$t>> for Value {
                fn from(v: Option<$t>) -> Value {
                    #[allow(clippy::redundant_closure_call)]
                    Value::$variant(v.map($conv))
                }
            }
        )+
    };
}

value_from!(Int: i64 => |v| v, i32 => i64::from, u32 => i64::from, bool => i64::from);
value_from!(Real: f64 => |v| v);
value_from!(Text: String => |v| v, &str => str::to_owned, &String => String::clone, &std::sync::Arc<str> => |v: &std::sync::Arc<str>| v.to_string());
value_from!(Blob: Bytes => |v| v, Vec<u8> => Bytes::from, &[u8] => Bytes::copy_from_slice);

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Value {
        Value::Text(v.clone())
    }
}

impl From<&Vec<u8>> for Value {
    fn from(v: &Vec<u8>) -> Value {
        Value::Blob(Some(Bytes::copy_from_slice(v)))
    }
}

pub(crate) fn sqlite_arguments(values: &[Value]) -> Result<SqliteArguments<'_>, sqlx::Error> {
    arguments(values)
}

pub(crate) fn pg_arguments(values: &[Value]) -> Result<PgArguments, sqlx::Error> {
    arguments(values)
}

/// `values` as a driver's arguments: the one place a [`Value`] becomes a bound value.
fn arguments<'q, A>(values: &'q [Value]) -> Result<A, sqlx::Error>
where
    A: Arguments<'q>,
    Option<i64>: Encode<'q, A::Database> + Type<A::Database>,
    Option<f64>: Encode<'q, A::Database> + Type<A::Database>,
    Option<&'q str>: Encode<'q, A::Database> + Type<A::Database>,
    Option<&'q [u8]>: Encode<'q, A::Database> + Type<A::Database>,
{
    let mut args = A::default();
    for v in values {
        let added = match v {
            Value::Int(n) => args.add(*n),
            Value::Real(x) => args.add(*x),
            Value::Text(s) => args.add(s.as_deref()),
            Value::Blob(b) => args.add(b.as_deref()),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

/// What a statement that returns no rows did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    rows: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows
    }
}

/// A statement and its values; see [`query`].
#[must_use = "a query does nothing until it is run"]
pub(crate) struct Query<'q> {
    sql: &'q str,
    values: Vec<Value>,
}

/// A statement to run with [`Query::execute`] or one of the fetches.
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query { sql, values: Vec::new() }
}

/// A statement whose rows are read as `O` (a tuple of columns).
pub(crate) fn query_as<O: FromRow>(sql: &str) -> QueryAs<'_, O> {
    QueryAs { query: query(sql), out: std::marker::PhantomData }
}

impl<'q> Query<'q> {
    /// Binds the next `?`.
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }

    pub async fn execute<'e>(self, on: impl On<'e>) -> Result<Done, sqlx::Error> {
        run(self.sql, &self.values, on.target(), Want::Nothing).await.map(|(done, _)| done)
    }

    pub async fn fetch_all<'e>(self, on: impl On<'e>) -> Result<Vec<Row>, sqlx::Error> {
        run(self.sql, &self.values, on.target(), Want::All).await.map(|(_, rows)| rows)
    }

    pub async fn fetch_optional<'e>(self, on: impl On<'e>) -> Result<Option<Row>, sqlx::Error> {
        let rows = run(self.sql, &self.values, on.target(), Want::First).await?.1;
        Ok(rows.into_iter().next())
    }

    pub async fn fetch_one<'e>(self, on: impl On<'e>) -> Result<Row, sqlx::Error> {
        self.fetch_optional(on).await?.ok_or(sqlx::Error::RowNotFound)
    }
}

/// A [`Query`] whose rows are read as `O`.
#[must_use = "a query does nothing until it is run"]
pub(crate) struct QueryAs<'q, O> {
    query: Query<'q>,
    out: std::marker::PhantomData<fn() -> O>,
}

impl<'q, O: FromRow> QueryAs<'q, O> {
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.query = self.query.bind(value);
        self
    }

    pub async fn fetch_all<'e>(self, on: impl On<'e>) -> Result<Vec<O>, sqlx::Error> {
        self.query.fetch_all(on).await?.iter().map(O::from_row).collect()
    }

    pub async fn fetch_optional<'e>(self, on: impl On<'e>) -> Result<Option<O>, sqlx::Error> {
        self.query.fetch_optional(on).await?.as_ref().map(O::from_row).transpose()
    }

    pub async fn fetch_one<'e>(self, on: impl On<'e>) -> Result<O, sqlx::Error> {
        O::from_row(&self.query.fetch_one(on).await?)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Nothing,
    First,
    All,
}

/// Runs one statement.
async fn run(sql: &str, values: &[Value], on: Target<'_>, want: Want) -> Result<(Done, Vec<Row>), sqlx::Error> {
    match on {
        Target::Pool(Pool::Sqlite(pool)) => sqlite(sql, values, pool, want).await,
        Target::Link(Link::Sqlite(conn)) => sqlite(sql, values, conn, want).await,
        Target::Pool(Pool::Pg { pool, .. }) => pg(sql, values, pool, want).await,
        Target::Link(Link::Pg(conn)) => pg(sql, values, conn, want).await,
    }
}

async fn sqlite<'e>(
    sql: &str,
    values: &[Value],
    on: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    want: Want,
) -> Result<(Done, Vec<Row>), sqlx::Error> {
    let q = sqlx::query_with(sql, sqlite_arguments(values)?);
    match want {
        Want::Nothing => {
            let done = q.execute(on).await?;
            Ok((Done { rows: done.rows_affected() }, Vec::new()))
        }
        Want::First => Ok((Done { rows: 0 }, q.fetch_optional(on).await?.into_iter().map(Row::Sqlite).collect())),
        Want::All => Ok((Done { rows: 0 }, q.fetch_all(on).await?.into_iter().map(Row::Sqlite).collect())),
    }
}

async fn pg<'e>(
    sql: &str,
    values: &[Value],
    on: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    want: Want,
) -> Result<(Done, Vec<Row>), sqlx::Error> {
    let sql = super::sql::numbered(sql);
    let q = sqlx::query_with(&sql, pg_arguments(values)?);
    match want {
        Want::Nothing => {
            let done = q.execute(on).await?;
            Ok((Done { rows: done.rows_affected() }, Vec::new()))
        }
        Want::First => Ok((Done { rows: 0 }, q.fetch_optional(on).await?.into_iter().map(Row::Pg).collect())),
        Want::All => Ok((Done { rows: 0 }, q.fetch_all(on).await?.into_iter().map(Row::Pg).collect())),
    }
}
