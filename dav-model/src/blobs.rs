//! Where a repository's blobs live: in `blobs/` beside its database (the default), or in
//! an S3 bucket (`--blobs s3://BUCKET/PREFIX`).
//!
//! The place is recorded in the database the first time the server opens it. Rows name
//! blobs only by content id, so a database served against another store would answer 404
//! for every file, and its garbage collector would find the other store's blobs
//! unreferenced; a start with a location other than the recorded one is refused instead.
//! Maintenance commands (fsck, backup) read the record, so they need no flag for it.

use std::path::Path;
use std::sync::Arc;

use wharf_backends::{BlobStore, Durability, LocalStore, S3Options, S3Store};

use crate::db::{Handle, Pool};
use crate::{Error, Result};

/// The URL a local store is recorded under.
const LOCAL: &str = "local";

/// A repository's blob store, opened but not yet checked against its database.
pub(crate) enum Opened {
    Local(LocalStore),
    S3(S3Store),
}

impl Opened {
    /// Opens the store `s3` names, or the local one under `dir` (discarding what
    /// interrupted uploads left in its `tmp/`: only this process uses it).
    pub async fn open(dir: &Path, s3: Option<&S3Options>, durability: Durability) -> Result<Opened> {
        Ok(match s3 {
            Some(options) => Opened::S3(S3Store::connect(options.clone()).await?),
            None => Opened::Local(LocalStore::open(dir.join("blobs"), durability).await?),
        })
    }

    pub fn store(&self) -> Arc<dyn BlobStore> {
        match self {
            Opened::Local(local) => Arc::new(local.clone()),
            Opened::S3(s3) => Arc::new(s3.clone()),
        }
    }

    /// Checks the store against the database (`check_location`); a bucket is then
    /// claimed for this repository and swept of what crashed uploads left.
    ///
    /// A first start records the repository in a write transaction: servers sharing a
    /// database and starting at once (a cluster's first start) then take turns, so that
    /// the first records the repository's id and the others claim the bucket with that
    /// same id instead of each with its own. Later starts hold no node's writes up.
    pub async fn check(&self, pool: &Pool, s3: Option<&S3Options>) -> Result<()> {
        let (repository, new) = check_location(&mut pool.acquire().await?, s3).await?;
        if !new {
            return self.claim_and_sweep(&repository).await;
        }
        let mut tx = pool.begin().await?;
        let (repository, new) = check_location(&mut tx, s3).await?;
        if let Opened::S3(store) = self {
            store.claim(&repository).await?;
        }
        // Recorded only once the bucket took the claim: a refused start leaves the
        // database free to be started against another prefix.
        if new {
            record(&mut tx, s3, &repository).await?;
        }
        tx.commit().await?;
        if let Opened::S3(store) = self {
            store.sweep_leftovers().await?;
        }
        Ok(())
    }

    async fn claim_and_sweep(&self, repository: &str) -> Result<()> {
        if let Opened::S3(store) = self {
            store.claim(repository).await?;
            store.sweep_leftovers().await?;
        }
        Ok(())
    }
}

/// Refuses `s3` (or the local store) if another location is recorded. A database from
/// before the record existed had local blobs. Returns the repository's id, and whether it
/// is new (nothing recorded yet).
async fn check_location(tx: &mut dyn Handle, s3: Option<&S3Options>) -> Result<(String, bool)> {
    let recorded: Option<(String, String)> =
        crate::db::query_as("SELECT url, repository FROM blob_location WHERE id = 1").fetch_optional(&mut *tx).await?;
    let wanted = location_url(s3);
    if let Some((recorded, repository)) = recorded {
        if recorded != wanted {
            return Err(Error::Internal(format!(
                "this repository's blobs are in {recorded}, not {wanted}: start it with {}",
                if recorded == LOCAL { "no --blobs".to_owned() } else { format!("--blobs {recorded}") }
            )));
        }
        return Ok((repository, false));
    }
    let file_blobs: (i64,) =
        crate::db::query_as("SELECT COUNT(*) FROM blobs WHERE data IS NULL").fetch_one(&mut *tx).await?;
    if file_blobs.0 > 0 && s3.is_some() {
        return Err(Error::Internal(format!(
            "this repository's blobs are in its blobs/ folder, not {wanted}: start it without --blobs"
        )));
    }
    Ok((uuid::Uuid::new_v4().simple().to_string(), true))
}

async fn record(tx: &mut dyn Handle, s3: Option<&S3Options>, repository: &str) -> Result<()> {
    let sql = "INSERT INTO blob_location (id, url, endpoint, region, virtual_hosted, repository) \
               VALUES (1, ?, ?, ?, ?, ?)";
    crate::db::query(sql)
        .bind(location_url(s3))
        .bind(s3.and_then(|o| o.endpoint.clone()))
        .bind(s3.and_then(|o| o.region.clone()))
        .bind(s3.and_then(|o| o.virtual_hosted))
        .bind(repository)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// How a location is recorded: the S3 URL, or `local`.
fn location_url(s3: Option<&S3Options>) -> String {
    s3.map_or_else(|| LOCAL.to_owned(), S3Options::url)
}

/// A `blob_location` row: URL, endpoint, region, addressing style.
type Recorded = (String, Option<String>, Option<String>, Option<bool>);

/// The recorded S3 location of the repository whose database is at `url`, for commands
/// that open it beside (or instead of) the server: `None` for local blobs. Credentials
/// come from the environment, as for the server.
pub(crate) async fn recorded_s3(url: &str) -> Result<Option<S3Options>> {
    let pool = crate::db::Pool::connect_existing(url).await?;
    let row: Option<Recorded> =
        match crate::db::query_as("SELECT url, endpoint, region, virtual_hosted FROM blob_location WHERE id = 1")
            .fetch_optional(&pool)
            .await
        {
            Ok(row) => row,
            // A database from before the record: its blobs are local.
            Err(sqlx::Error::Database(e))
                if e.message().contains("no such table") || e.code().as_deref() == Some("42P01") =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
    pool.close().await;
    let Some((url, endpoint, region, virtual_hosted)) = row.filter(|(url, ..)| url != LOCAL) else { return Ok(None) };
    let mut options = S3Options::from_url(&url)
        .ok_or_else(|| Error::Internal(format!("the recorded blob location {url} is not an s3:// URL")))?;
    options.endpoint = endpoint;
    options.region = region;
    options.virtual_hosted = virtual_hosted;
    Ok(Some(options))
}
