//! Content-addressed blobs in S3-compatible object storage (`--blobs s3://BUCKET/PREFIX`).
//!
//! Layout under the prefix:
//! - `blobs/<id>`: one object per blob, named by content id as in a local store. A body of
//!   less than one part holds the bytes itself; a larger one is a *pointer*: an empty
//!   object whose metadata (`x-amz-meta-wharf-data`) names the `data/` object with the bytes.
//! - `data/<token>`: the bytes of a large blob, written as a multipart upload under a key
//!   chosen before its content id is known (see `upload.rs`).
//! - `names/<id>.<token>`: an empty object for each adopted upload, so that a sweep can
//!   tell from listings alone which `data/` objects a pointer names.
//! - `uploads/<token>`: a marker holding the multipart upload id of `data/<token>` while it
//!   is being written. S3 lists no upload by itself in the requests every server implements
//!   alike, so after a crash this is how the parts of an unfinished upload are found and
//!   aborted instead of being billed forever.
//! - `quarantine/<id>`: blobs (or pointers) fsck found not to match their id.
//!
//! Why pointers: an object's key is fixed when its upload starts, and a blob's id is known
//! only once its whole body has been read. Copying a finished upload under its id would
//! cost the S3 server a second write of every large body, and one copy is limited to 5 GiB
//! on AWS; a pointer costs one small PUT, and one extra request on the first read of a
//! large blob (the pointer is remembered after that).
//!
//! Several servers may share a bucket. Anything a sweep removes (unfinished uploads, data
//! no pointer names, blobs no row references) must be older than the store's grace period,
//! which must exceed the longest upload: a younger one may belong to an upload another
//! server is still committing (see `sweep.rs`).

mod read;
mod sweep;
mod upload;

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::intake::Intake;
use crate::{invalid_input, BlobId, BlobStore, ByteStream, Result, Staged, StagedInner};

pub(crate) use upload::Pending;

/// Size of each part of a multipart upload, and the largest body kept in memory whole. S3
/// wants parts of at least 5 MiB (but the last); 8 MiB keeps a 1 GiB upload at 128 requests.
const PART: usize = 8 << 20;

/// Parts of one upload being sent at once while the next one fills.
const IN_FLIGHT: usize = 2;

/// Parts being sent at once by all uploads together: with many uploads at a time, each
/// waits its turn rather than the server holding two parts per upload in memory.
const ALL_IN_FLIGHT: usize = 32;

/// Where the blobs are and how to reach them. Credentials come from the usual AWS
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), as do
/// endpoint and region when not given here (`AWS_ENDPOINT_URL`, `AWS_REGION`).
#[derive(Debug, Clone)]
pub struct S3Options {
    pub bucket: String,
    /// Key prefix without leading or trailing slashes; may be empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Bucket in the host name (`BUCKET.s3.example`) rather than the path; `None` leaves it
    /// to `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, else path style.
    pub virtual_hosted: Option<bool>,
    /// How old a leftover must be before a sweep removes it (see the module doc).
    pub grace: Duration,
    /// Access key id and secret, when not from the environment (tests).
    pub credentials: Option<(String, String)>,
}

impl S3Options {
    /// Parses `s3://BUCKET` or `s3://BUCKET/PREFIX`; anything else is `None`.
    pub fn from_url(url: &str) -> Option<S3Options> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return None;
        }
        Some(S3Options {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            endpoint: None,
            region: None,
            virtual_hosted: None,
            grace: Duration::from_secs(24 * 3600),
            credentials: None,
        })
    }

    /// `s3://BUCKET/PREFIX`, for messages and for telling stores apart.
    pub fn url(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }
}

/// A blob store in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    s3: Arc<AmazonS3>,
    options: Arc<S3Options>,
    /// The `data/` token of large blobs read before (see `read.rs`).
    pointers: Arc<Mutex<HashMap<BlobId, String>>>,
    /// Uploads under way in this process, which its sweeps skip (see `upload.rs`).
    live: upload::LiveTokens,
    /// Permits for parts in flight (see [`ALL_IN_FLIGHT`]).
    sending: Arc<tokio::sync::Semaphore>,
}

impl S3Store {
    /// Connects, proves the bucket answers (a wrong endpoint, bucket or key fails here, not
    /// at the first upload) and sweeps leftovers older than the grace period.
    pub async fn open(options: S3Options) -> Result<S3Store> {
        let store = S3Store::connect(options).await?;
        store.sweep_leftovers().await?;
        Ok(store)
    }

    /// Connects and proves the bucket answers, changing nothing (for fsck).
    pub async fn connect(options: S3Options) -> Result<S3Store> {
        // reqwest is built without a TLS provider of its own: the process's one is rustls
        // on ring, as for Wharf's own HTTPS and FTPS. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&options.bucket);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some((key, secret)) = &options.credentials {
            builder = builder.with_access_key_id(key).with_secret_access_key(secret);
        }
        if let Some(virtual_hosted) = options.virtual_hosted {
            builder = builder.with_virtual_hosted_style_request(virtual_hosted);
        }
        let s3 = builder.build().map_err(|e| remote(&options, e))?;
        let store = S3Store {
            s3: Arc::new(s3),
            options: Arc::new(options),
            pointers: Default::default(),
            live: Default::default(),
            sending: Arc::new(tokio::sync::Semaphore::new(ALL_IN_FLIGHT)),
        };
        // A key nothing is ever stored under: not found is the answer of a bucket that
        // takes our credentials.
        match store.s3.head(&store.key("connection-check")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(store),
            Err(e) => Err(store.err(e)),
        }
    }

    /// Marks the prefix as holding the blobs of one repository (`repository`: its
    /// database's random id), or refuses a prefix that holds another's: each repository's
    /// garbage collection would delete the blobs only the other's rows use. Servers sharing
    /// one database share its id, and so the prefix.
    pub async fn claim(&self, repository: &str) -> Result<()> {
        let key = self.key("repository");
        for _ in 0..3 {
            match self.s3.get(&key).await {
                Ok(got) => {
                    let owner = got.bytes().await.map_err(|e| self.err(e))?;
                    if owner.as_ref() == repository.as_bytes() {
                        return Ok(());
                    }
                    return Err(self.err_msg(format!(
                        "holds the blobs of another repository ({}), not of this database ({repository}); \
                         give each repository a prefix of its own",
                        String::from_utf8_lossy(&owner)
                    )));
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(e)),
            }
            // Create-only, so two repositories starting at once can't both win; a server
            // that ignores the condition (Garage) makes this a plain PUT.
            let mark = PutPayload::from(repository.to_owned().into_bytes());
            let create = PutOptions { mode: PutMode::Create, ..Default::default() };
            match self.s3.put_opts(&key, mark.clone(), create).await {
                Ok(_) => return Ok(()),
                // Someone else's claim landed first: read it.
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
                Err(object_store::Error::NotImplemented { .. }) => {
                    return self.s3.put(&key, mark).await.map(|_| ()).map_err(|e| self.err(e));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
        Err(self.err_msg("the repository claim keeps changing: is another server starting on this prefix?".into()))
    }

    fn key(&self, rest: &str) -> Key {
        match self.options.prefix.as_str() {
            "" => Key::from(rest),
            prefix => Key::from(format!("{prefix}/{rest}")),
        }
    }

    fn blob_key(&self, id: &BlobId) -> Key {
        self.key(&format!("blobs/{id}"))
    }

    fn data_key(&self, token: &str) -> Key {
        self.key(&format!("data/{token}"))
    }

    fn err(&self, e: object_store::Error) -> crate::Error {
        remote(&self.options, e)
    }

    fn err_msg(&self, message: String) -> crate::Error {
        remote(&self.options, message)
    }

    /// Objects last modified at or before this time (seconds since the epoch) are past the
    /// grace period.
    fn cutoff(&self) -> i64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        now - self.options.grace.as_secs() as i64
    }

    fn name_key(&self, id: &BlobId, token: &str) -> Key {
        self.key(&format!("names/{id}.{token}"))
    }

    /// Objects under `folder` (`blobs`, `data`, ...), all of them or only those older than
    /// the grace period.
    async fn objects(&self, folder: &str, settled_only: bool) -> Result<Vec<ObjectMeta>> {
        let cutoff = self.cutoff();
        let under = self.key(folder);
        let all: Vec<ObjectMeta> = self.s3.list(Some(&under)).try_collect().await.map_err(|e| self.err(e))?;
        // Listings reach any depth; only the folder's own objects are ours (another
        // repository's prefix may lie beneath, `s3://b/data` beside `s3://b` say).
        let depth = under.parts().count() + 1;
        let ours = |m: &ObjectMeta| m.location.parts().count() == depth;
        Ok(all.into_iter().filter(|m| ours(m) && (!settled_only || m.last_modified.timestamp() <= cutoff)).collect())
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn stage(&self, body: ByteStream, limit: Option<u64>) -> Result<Staged> {
        let mut intake = Intake::new(body, limit);
        let mut first = Vec::new();
        intake.fill(&mut first, PART, || {}).await?;
        if first.len() < PART {
            return Ok(intake.staged(StagedInner::Buffered(Bytes::from(first))));
        }
        self.stage_parts(first, intake).await
    }

    async fn commit(&self, staged: Staged) -> Result<BlobId> {
        match staged.inner {
            // Identical content may be there already; writing it again changes nothing.
            StagedInner::Buffered(bytes) | StagedInner::Memory(bytes) => {
                let dest = self.blob_key(&staged.id);
                self.s3.put(&dest, PutPayload::from(bytes)).await.map_err(|e| self.err(e))?;
            }
            StagedInner::S3(pending) => self.adopt(pending, &staged.id, staged.size).await?,
            StagedInner::File(_) => return Err(invalid_input("staged blob does not belong to an S3 store")),
        }
        Ok(staged.id)
    }

    async fn open(&self, id: &BlobId, range: Option<Range<u64>>) -> Result<ByteStream> {
        self.read(id, range).await
    }

    async fn delete(&self, id: &BlobId) -> Result<u64> {
        self.remove(id).await
    }

    async fn list(&self) -> Result<Vec<BlobId>> {
        Ok(ids(self.objects("blobs", false).await?))
    }

    async fn list_settled(&self) -> Result<Vec<BlobId>> {
        Ok(ids(self.objects("blobs", true).await?))
    }

    async fn sweep_leftovers(&self) -> Result<u64> {
        S3Store::sweep_leftovers(self).await
    }

    /// Writes and removes an object under `uploads/`, as every large upload does.
    async fn probe(&self) -> Result<()> {
        let key = self.key(&format!("uploads/probe-{}", uuid::Uuid::new_v4().simple()));
        self.s3.put(&key, PutPayload::from_static(b"readiness probe")).await.map_err(|e| self.err(e))?;
        gone(self.s3.delete(&key).await).map_err(|e| self.err(e))
    }

    /// To `quarantine/<id>` in the same bucket.
    async fn quarantine(&self, id: &BlobId) -> Result<Option<PathBuf>> {
        self.move_aside(id).await
    }
}

/// A deletion that found nothing to delete did its job.
fn gone(result: object_store::Result<()>) -> object_store::Result<()> {
    match result {
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        other => other,
    }
}

fn ids(objects: Vec<ObjectMeta>) -> Vec<BlobId> {
    objects.iter().filter_map(|m| m.location.filename().and_then(BlobId::parse)).collect()
}

/// An error of the store, named by its URL (never its credentials).
fn remote(options: &S3Options, what: impl std::fmt::Display) -> crate::Error {
    crate::Error::Io(io::Error::other(format!("{}: {what}", options.url())))
}
