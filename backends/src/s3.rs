//! Content-addressed blobs in S3-compatible object storage (`--blobs s3://BUCKET/PREFIX`).
//!
//! Layout under the prefix:
//! - `blobs/<id>`: committed blobs, one object each, named by content id as in a local store.
//! - `tmp/<token>`: a body longer than one part, being written as a multipart upload.
//! - `uploads/<token>`: a marker holding the multipart upload id of `tmp/<token>`, written
//!   before the first part. S3 lists no upload by itself in the requests every server
//!   implements alike, so after a crash this is how the parts of an unfinished upload are
//!   found and aborted instead of being billed forever.
//! - `quarantine/<id>`: blobs fsck found not to match their id.
//!
//! A blob's id is known only once its whole body has been read, and an object's key is
//! fixed when its upload starts. A body that fits one part is hashed in memory and PUT
//! under its id at commit; a longer one streams to `tmp/` in parts (memory: the part being
//! filled and at most [`IN_FLIGHT`] being sent) and is copied to `blobs/<id>` by the server
//! at commit, unless identical content is there already. The copy costs the server a second
//! write of a large body but no second transfer; it is what keeps an object's key its
//! content id, so that the model, fsck and garbage collection treat this store like any
//! other.
//!
//! Several servers may share a bucket. Anything a sweep removes (temp objects, unfinished
//! uploads, blobs no row references) must be older than the store's grace period, since a
//! younger one may belong to an upload another server is still committing.

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::task::JoinSet;

use crate::intake::Intake;
use crate::{invalid_input, BlobId, BlobStore, ByteStream, Error, Result, Staged, StagedInner};

/// Size of each part of a multipart upload, and the largest body kept in memory whole. S3
/// wants parts of at least 5 MiB (but the last); 8 MiB keeps a 1 GiB upload at 128 requests.
const PART: usize = 8 << 20;

/// Parts of one upload being sent at once while the next one fills.
const IN_FLIGHT: usize = 2;

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
            grace: Duration::from_secs(3600),
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
        let store = S3Store { s3: Arc::new(s3), options: Arc::new(options) };
        // A key nothing is ever stored under: not found is the answer of a bucket that
        // takes our credentials.
        match store.s3.head(&store.key("connection-check")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(store),
            Err(e) => Err(store.err(e)),
        }
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

    fn err(&self, e: object_store::Error) -> Error {
        remote(&self.options, e)
    }

    /// Objects under `folder` (`blobs`, `tmp`, ...), all of them or only those older than
    /// the grace period.
    async fn objects(&self, folder: &str, settled_only: bool) -> Result<Vec<ObjectMeta>> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let cutoff = now - self.options.grace.as_secs() as i64;
        let all: Vec<ObjectMeta> =
            self.s3.list(Some(&self.key(folder))).try_collect().await.map_err(|e| self.err(e))?;
        Ok(all.into_iter().filter(|m| !settled_only || m.last_modified.timestamp() <= cutoff).collect())
    }

    /// A body longer than one part: a multipart upload to `tmp/`, completed but not yet
    /// under its id.
    async fn stage_parts(&self, first: Vec<u8>, mut intake: Intake) -> Result<Staged> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let tmp = self.key(&format!("tmp/{token}"));
        let upload = self.s3.create_multipart(&tmp).await.map_err(|e| self.err(e))?;
        let mut pending = Pending {
            s3: self.s3.clone(),
            marker: self.key(&format!("uploads/{token}")),
            tmp,
            upload: Some(upload.clone()),
            armed: true,
        };
        let marker = PutPayload::from(upload.clone().into_bytes());
        self.s3.put(&pending.marker, marker).await.map_err(|e| self.err(e))?;
        // Part uploads run as tasks of their own so they progress while the next part
        // fills; dropping the set (a cancelled request) stops them.
        let mut sending = JoinSet::new();
        let mut parts: Vec<Option<PartId>> = Vec::new();
        let mut buf = first;
        loop {
            let last = buf.len() < PART;
            if !buf.is_empty() {
                while sending.len() >= IN_FLIGHT {
                    self.part_sent(&mut sending, &mut parts).await?;
                }
                let (s3, tmp, upload, n) = (self.s3.clone(), pending.tmp.clone(), upload.clone(), parts.len());
                let payload = PutPayload::from(Bytes::from(std::mem::take(&mut buf)));
                parts.push(None);
                sending.spawn(async move { (n, s3.put_part(&tmp, &upload, n, payload).await) });
            }
            if last {
                break;
            }
            buf = Vec::with_capacity(PART);
            intake.fill(&mut buf, PART, || {}).await?;
        }
        while !sending.is_empty() {
            self.part_sent(&mut sending, &mut parts).await?;
        }
        let parts = parts.into_iter().flatten().collect();
        self.s3.complete_multipart(&pending.tmp, &upload, parts).await.map_err(|e| self.err(e))?;
        pending.upload = None;
        Ok(Staged { id: intake.id(), size: intake.size, inner: StagedInner::S3(pending) })
    }

    async fn part_sent(
        &self,
        sending: &mut JoinSet<(usize, object_store::Result<PartId>)>,
        parts: &mut [Option<PartId>],
    ) -> Result<()> {
        match sending.join_next().await {
            Some(Ok((n, Ok(part)))) => {
                parts[n] = Some(part);
                Ok(())
            }
            Some(Ok((_, Err(e)))) => Err(self.err(e)),
            Some(Err(e)) => Err(Error::Io(io::Error::other(e))),
            None => Ok(()),
        }
    }

    /// Aborts the unfinished uploads and removes the temp objects that crashed or killed
    /// servers left, once older than the grace period. Returns how many went.
    pub async fn sweep_leftovers(&self) -> Result<u64> {
        let mut n = 0;
        for marker in self.objects("uploads", true).await? {
            let Some(token) = marker.location.filename().map(str::to_owned) else { continue };
            let upload = match self.s3.get(&marker.location).await {
                Ok(got) => String::from_utf8_lossy(&got.bytes().await.map_err(|e| self.err(e))?).into_owned(),
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.err(e)),
            };
            let pending = Pending {
                s3: self.s3.clone(),
                tmp: self.key(&format!("tmp/{token}")),
                marker: marker.location,
                upload: Some(upload),
                armed: true,
            };
            pending.clean().await;
            n += 1;
        }
        for temp in self.objects("tmp", true).await? {
            gone(self.s3.delete(&temp.location).await).map_err(|e| self.err(e))?;
            n += 1;
        }
        Ok(n)
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn stage(&self, body: ByteStream, limit: Option<u64>) -> Result<Staged> {
        let mut intake = Intake::new(body, limit);
        let mut first = Vec::new();
        intake.fill(&mut first, PART, || {}).await?;
        if first.len() < PART {
            let inner = StagedInner::Buffered(Bytes::from(first));
            return Ok(Staged { id: intake.id(), size: intake.size, inner });
        }
        self.stage_parts(first, intake).await
    }

    async fn commit(&self, staged: Staged) -> Result<BlobId> {
        let dest = self.blob_key(&staged.id);
        match staged.inner {
            // Identical content may be there already; writing it again changes nothing.
            StagedInner::Buffered(bytes) | StagedInner::Memory(bytes) => {
                self.s3.put(&dest, PutPayload::from(bytes)).await.map_err(|e| self.err(e))?;
            }
            StagedInner::S3(pending) => {
                match self.s3.head(&dest).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => {
                        self.s3.copy(&pending.tmp, &dest).await.map_err(|e| self.err(e))?
                    }
                    Err(e) => return Err(self.err(e)),
                }
                pending.clean().await;
            }
            StagedInner::File(_) => return Err(invalid_input("staged blob does not belong to an S3 store")),
        }
        Ok(staged.id)
    }

    async fn open(&self, id: &BlobId, range: Option<Range<u64>>) -> Result<ByteStream> {
        let key = self.blob_key(id);
        let not_found = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => Error::NotFound(id.clone()),
            e => self.err(e),
        };
        let empty = || -> ByteStream { Box::pin(futures_util::stream::empty()) };
        let range = match range {
            Some(r) if r.start > r.end => {
                return Err(invalid_input(format!("byte range {}..{} is reversed", r.start, r.end)))
            }
            // No S3 range is empty: answer from a HEAD, which still tells a missing blob.
            Some(r) if r.start == r.end => return self.s3.head(&key).await.map(|_| empty()).map_err(not_found),
            Some(r) => Some(GetRange::Bounded(r)),
            None => None,
        };
        let start = match &range {
            Some(GetRange::Bounded(r)) => r.start,
            _ => 0,
        };
        match self.s3.get_opts(&key, GetOptions { range, ..Default::default() }).await {
            Ok(got) => Ok(Box::pin(got.into_stream().map_err(io::Error::other))),
            Err(e @ object_store::Error::NotFound { .. }) => Err(not_found(e)),
            // A range starting at or past the end is refused (416); a local store gives
            // no bytes, and so does this one.
            Err(e) => match self.s3.head(&key).await {
                Ok(meta) if start >= meta.size => Ok(empty()),
                _ => Err(self.err(e)),
            },
        }
    }

    async fn delete(&self, id: &BlobId) -> Result<u64> {
        let key = self.blob_key(id);
        let size = match self.s3.head(&key).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(0),
            Err(e) => return Err(self.err(e)),
        };
        gone(self.s3.delete(&key).await).map_err(|e| self.err(e))?;
        Ok(size)
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

    /// Writes and removes an object under `tmp/`, as every large upload does.
    async fn probe(&self) -> Result<()> {
        let key = self.key(&format!("tmp/probe-{}", uuid::Uuid::new_v4().simple()));
        self.s3.put(&key, PutPayload::from_static(b"readiness probe")).await.map_err(|e| self.err(e))?;
        gone(self.s3.delete(&key).await).map_err(|e| self.err(e))
    }

    /// To `quarantine/<id>` in the same bucket.
    async fn quarantine(&self, id: &BlobId) -> Result<Option<PathBuf>> {
        let aside = self.key(&format!("quarantine/{id}"));
        self.s3.copy(&self.blob_key(id), &aside).await.map_err(|e| self.err(e))?;
        self.delete(id).await?;
        Ok(Some(PathBuf::from(format!("s3://{}/{aside}", self.options.bucket))))
    }
}

/// A large body's upload under `tmp/`, until it is committed or given up. Dropped without
/// `clean` (a cancelled request, a failed commit), it removes itself in the background:
/// the multipart upload if still open, the temp object and the marker.
pub(crate) struct Pending {
    s3: Arc<AmazonS3>,
    tmp: Key,
    marker: Key,
    /// The multipart upload, until completed.
    upload: Option<String>,
    armed: bool,
}

impl Pending {
    async fn clean(mut self) {
        self.armed = false;
        remove(&self.s3, &self.tmp, &self.marker, self.upload.as_deref()).await;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Without a runtime (process exit) the leftovers wait for the next sweep.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (s3, tmp, marker, upload) = (self.s3.clone(), self.tmp.clone(), self.marker.clone(), self.upload.take());
        runtime.spawn(async move { remove(&s3, &tmp, &marker, upload.as_deref()).await });
    }
}

/// Best effort: what fails here is found again by the next sweep, since the marker goes
/// last.
async fn remove(s3: &AmazonS3, tmp: &Key, marker: &Key, upload: Option<&str>) {
    if let Some(upload) = upload {
        if let Err(e) = s3.abort_multipart(tmp, &upload.to_owned()).await {
            tracing::debug!(%tmp, "aborting an unfinished upload: {e}");
        }
    }
    for key in [tmp, marker] {
        if let Err(e) = gone(s3.delete(key).await) {
            tracing::warn!(%key, "removing a temp object: {e}");
            return;
        }
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

fn remote(options: &S3Options, e: object_store::Error) -> Error {
    Error::Io(io::Error::other(format!("{}: {e}", options.url())))
}
