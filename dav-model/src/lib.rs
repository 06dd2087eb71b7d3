//! The DAV model: Wharf's virtual filesystem. Every protocol adapter (WebDAV, FTP, the
//! browser front end) talks to a [`Repository`]; storage semantics, conditions and locks
//! are decided here so that one tree, one lock and one property mean the same everywhere.
//!
//! Nothing in this crate's API mentions HTTP or FTP: operations take typed requests and
//! return typed results or the one [`Error`].

mod archive;
pub mod backup;
mod blobs;
mod cache;
pub mod condition;
mod content;
pub mod datadir;
mod db;
mod error;
mod evaluate;
pub mod fsck;
mod group;
mod health;
pub mod identity;
mod inline;
pub mod lock;
pub mod mount;
pub mod path;
mod proppatch;
pub mod props;
mod repo;
pub mod resource;
mod snapshot;
pub mod stats;
pub mod times;
mod tree;
mod txn;

pub use content::{PutOptions, PutOutcome};

/// For tests of this crate and of the server: where a test's repository lives.
#[doc(hidden)]
pub mod testing {
    /// With `WHARF_TEST_POSTGRES` set to a server's URL (the test command starts one, see
    /// `tests/postgres.sh`), the URL of a new, empty database on it, so that the model's
    /// tests run on PostgreSQL; `None` otherwise (SQLite).
    pub async fn postgres_database() -> Option<String> {
        use sqlx::Connection;
        let server = std::env::var("WHARF_TEST_POSTGRES").ok().filter(|u| !u.is_empty())?;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server).await.expect("the test PostgreSQL server");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("a test database");
        let _ = admin.close().await;
        let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
        Some(format!("{base}/{name}"))
    }
}
pub use error::{Error, Result};
pub use inline::{DEFAULT_CACHE_BYTES as DEFAULT_CONTENT_CACHE_BYTES, DEFAULT_INLINE_MAX, INLINE_CAP};
pub use lock::{ActiveLock, LockRequest, LockScope};
pub use path::DavPath;
pub use props::{DeadProp, PatchOp, PatchResult, PropName};
pub use repo::{Config, Quota, Repository};
pub use resource::{Entry, Resource};
pub use stats::{ArchiveStats, GcStats, LoginStats, Stats};
pub use tree::{Depth, Transfer, TransferOutcome};
pub use wharf_backends::{BlobId, ByteStream, Durability};

/// Current time in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}
