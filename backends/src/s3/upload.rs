//! Large bodies: a multipart upload to `data/<token>`, then a pointer under the blob's id.
//!
//! Parts are sent by tasks of their own, so they progress while the next part fills from
//! the client; memory per upload is the part being filled and at most [`IN_FLIGHT`] being
//! sent. The marker `uploads/<token>` exists from before the first part until the pointer
//! is written (or the upload given up), so a crash at any point leaves something a sweep
//! can find.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use tokio::task::JoinSet;

use super::{gone, S3Store, IN_FLIGHT, PART};
use crate::intake::Intake;
use crate::{BlobId, Error, Result, Staged, StagedInner};

/// Metadata of a pointer: the token of the `data/` object holding the bytes, and their size.
pub(super) const DATA: &str = "wharf-data";
pub(super) const SIZE: &str = "wharf-size";

impl S3Store {
    /// A body longer than one part: a multipart upload to `data/`, completed but not yet
    /// named by a pointer.
    pub(super) async fn stage_parts(&self, first: Vec<u8>, mut intake: Intake) -> Result<Staged> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let data = self.data_key(&token);
        let live = Live::new(&self.live, &token);
        let upload = self.s3.create_multipart(&data).await.map_err(|e| self.err(e))?;
        let mut pending = Pending {
            s3: self.s3.clone(),
            marker: self.key(&format!("uploads/{token}")),
            data,
            token,
            upload: Some(upload.clone()),
            armed: true,
            _live: live,
        };
        let marker = PutPayload::from(upload.clone().into_bytes());
        self.s3.put(&pending.marker, marker).await.map_err(|e| self.err(e))?;
        // Dropping the set (a cancelled request) stops the part uploads.
        let mut sending = JoinSet::new();
        let mut parts: Vec<Option<PartId>> = Vec::new();
        let (mut buf, mut cap) = (first, PART);
        loop {
            let last = buf.len() < cap;
            if !buf.is_empty() {
                while sending.len() >= IN_FLIGHT {
                    self.part_sent(&mut sending, &mut parts).await?;
                }
                let permit =
                    self.sending.clone().acquire_owned().await.map_err(|e| Error::Io(std::io::Error::other(e)))?;
                let (s3, data, upload, n) = (self.s3.clone(), pending.data.clone(), upload.clone(), parts.len());
                let payload = PutPayload::from(Bytes::from(std::mem::take(&mut buf)));
                parts.push(None);
                sending.spawn(async move {
                    let sent = s3.put_part(&data, &upload, n, payload).await;
                    drop(permit);
                    (n, sent)
                });
            }
            if last {
                break;
            }
            cap = part_size(parts.len());
            buf = Vec::with_capacity(cap);
            intake.fill(&mut buf, cap, || {}).await?;
        }
        while !sending.is_empty() {
            self.part_sent(&mut sending, &mut parts).await?;
        }
        let parts = parts.into_iter().flatten().collect();
        self.s3.complete_multipart(&pending.data, &upload, parts).await.map_err(|e| self.err(e))?;
        pending.upload = None;
        Ok(intake.staged(StagedInner::S3(pending)))
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
            Some(Err(e)) => Err(Error::Io(std::io::Error::other(e))),
            None => Ok(()),
        }
    }

    /// Names a completed upload by `id` with a pointer, unless the blob is stored already
    /// (the upload is then removed).
    ///
    /// From the first request on, a failure or a cancelled request leaves the upload to the
    /// sweep rather than removing it: the pointer PUT may have taken effect even when it
    /// reports an error (a retried request that timed out), and a pointer must never
    /// outlive its data. The sweep removes the data only if no pointer names it. The marker
    /// goes last, so until the pointer exists the upload stays findable.
    pub(super) async fn adopt(&self, mut pending: Pending, id: &BlobId, size: u64) -> Result<()> {
        pending.armed = false;
        if self.stored(id).await? {
            pending.clean().await;
            return Ok(());
        }
        // A sweep by another server sharing the bucket could have taken an upload older
        // than its grace period; a pointer to nothing would lose the file.
        self.s3.head(&pending.data).await.map_err(|e| self.err(e))?;
        // The name first: a sweep never takes data with a name younger than its grace.
        let name = self.name_key(id, &pending.token);
        self.s3.put(&name, PutPayload::new()).await.map_err(|e| self.err(e))?;
        self.put_pointer(&self.blob_key(id), &pending.token, size).await?;
        self.remember(id, &pending.token);
        if let Err(e) = gone(self.s3.delete(&pending.marker).await) {
            tracing::warn!(marker = %pending.marker, "removing an upload's marker: {e}");
        }
        Ok(())
    }

    /// Writes at `key` an empty object naming the `data/` object `token` and its size.
    pub(super) async fn put_pointer(&self, key: &Key, token: &str, size: u64) -> Result<()> {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::Metadata(DATA.into()), token.to_owned().into());
        attributes.insert(Attribute::Metadata(SIZE.into()), size.to_string().into());
        let options = PutOptions { attributes, ..Default::default() };
        self.s3.put_opts(key, PutPayload::new(), options).await.map(|_| ()).map_err(|e| self.err(e))
    }

    /// Whether `id` is stored whole: its object, or a pointer whose data is there.
    async fn stored(&self, id: &BlobId) -> Result<bool> {
        match self.head(id).await {
            Ok((None, _)) => Ok(true),
            Ok((Some(token), _)) => match self.s3.head(&self.data_key(&token)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.err(e)),
            },
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Part `n`'s size: S3 takes at most 10,000 parts, so past every 1,000 they double
/// (8 MiB parts up to 8 GiB, then 16 MiB, ...; at most 512 MiB, which bounds an upload's
/// memory at 1.5 GiB and its size at 2.4 TiB).
fn part_size(n: usize) -> usize {
    PART << (n / 1000).min(6)
}

/// Tokens of the uploads this process has under way, which its sweeps leave alone
/// whatever their age (an upload can outlast the grace period).
pub(super) type LiveTokens = Arc<Mutex<HashSet<String>>>;

/// A token in [`LiveTokens`] while held.
struct Live {
    tokens: LiveTokens,
    token: String,
}

impl Live {
    fn new(tokens: &LiveTokens, token: &str) -> Live {
        if let Ok(mut live) = tokens.lock() {
            live.insert(token.to_owned());
        }
        Live { tokens: tokens.clone(), token: token.to_owned() }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Ok(mut live) = self.tokens.lock() {
            live.remove(&self.token);
        }
    }
}

/// A large body's upload under `data/`, until a pointer names it or it is given up.
/// Dropped without either (a cancelled request, a failed commit), it removes itself in the
/// background: the multipart upload if still open, the data object and the marker.
pub(crate) struct Pending {
    s3: Arc<AmazonS3>,
    token: String,
    data: Key,
    marker: Key,
    /// The multipart upload, until completed.
    upload: Option<String>,
    armed: bool,
    _live: Live,
}

impl Pending {
    async fn clean(mut self) {
        self.armed = false;
        remove(&self.s3, &self.data, &self.marker, self.upload.as_deref()).await;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Without a runtime (process exit) the leftovers wait for the next sweep.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (s3, data, marker, upload) = (self.s3.clone(), self.data.clone(), self.marker.clone(), self.upload.take());
        runtime.spawn(async move { remove(&s3, &data, &marker, upload.as_deref()).await });
    }
}

/// Best effort: what fails here is found again by the next sweep, since the marker goes
/// last, and only once the upload is known to be aborted.
pub(super) async fn remove(s3: &AmazonS3, data: &Key, marker: &Key, upload: Option<&str>) {
    if let Some(upload) = upload {
        if !aborted(s3, data, upload).await {
            return;
        }
    }
    for key in [data, marker] {
        if let Err(e) = gone(s3.delete(key).await) {
            tracing::warn!(%key, "removing an upload's object: {e}");
            return;
        }
    }
}

/// Aborts a multipart upload; true once it is gone (aborted now, or unknown to S3).
pub(super) async fn aborted(s3: &AmazonS3, data: &Key, upload: &str) -> bool {
    match s3.abort_multipart(data, &upload.to_owned()).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => true,
        Err(e) => {
            tracing::warn!(%data, "aborting an unfinished upload: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_that_ten_thousand_hold_over_two_tebibytes() {
        assert_eq!((part_size(0), part_size(999)), (PART, PART));
        assert_eq!(part_size(1000), 2 * PART);
        assert_eq!(part_size(9999), 64 * PART, "512 MiB at most");
        let total: u64 = (0..10_000).map(|n| part_size(n) as u64).sum();
        assert!(total >= 2 << 40, "{total}");
    }
}
