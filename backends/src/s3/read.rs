//! Reading, deleting and quarantining blobs, following pointers to `data/`.
//!
//! A GET of `blobs/<id>` answers with the bytes of a small blob, or with an empty pointer
//! whose metadata names the large blob's `data/` object: a second GET. A ranged GET of a
//! pointer is refused (416: it has no bytes), and a HEAD then finds the pointer. The token
//! of every large blob read is remembered, so later reads (a video being seeked) go to
//! `data/` at once. A remembered token can only go stale if the blob is deleted and
//! uploaded again (a new token): `data/` then answers 404, and the pointer is read afresh.

use std::io;
use std::ops::Range;
use std::path::PathBuf;

use futures_util::TryStreamExt;
use object_store::{Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use super::upload::{DATA, SIZE};
use super::{gone, S3Store};
use crate::{invalid_input, BlobId, ByteStream, Error, Result};

/// The content id of no bytes at all, the one blob that is rightly an empty object.
const EMPTY: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

/// Remembered pointers at most; past that the memory starts over (a few MB at most).
const REMEMBERED: usize = 100_000;

impl S3Store {
    pub(super) fn remember(&self, id: &BlobId, token: &str) {
        let Ok(mut pointers) = self.pointers.lock() else { return };
        if pointers.len() >= REMEMBERED {
            pointers.clear();
        }
        pointers.insert(id.clone(), token.to_owned());
    }

    fn remembered(&self, id: &BlobId) -> Option<String> {
        self.pointers.lock().ok()?.get(id).cloned()
    }

    fn forget(&self, id: &BlobId) {
        if let Ok(mut pointers) = self.pointers.lock() {
            pointers.remove(id);
        }
    }

    pub(super) async fn read(&self, id: &BlobId, range: Option<Range<u64>>) -> Result<ByteStream> {
        if let Some(r) = &range {
            if r.start > r.end {
                return Err(invalid_input(format!("byte range {}..{} is reversed", r.start, r.end)));
            }
            if r.start == r.end {
                // No S3 range is empty: a HEAD still tells a missing blob.
                return self.head(id).await.map(|_| empty());
            }
        }
        if let Some(token) = self.remembered(id) {
            match self.get(id, &self.data_key(&token), range.clone()).await {
                Err(Error::NotFound(_)) => self.forget(id),
                other => return other,
            }
        }
        let key = self.blob_key(id);
        let options = GetOptions { range: range.clone().map(GetRange::Bounded), ..Default::default() };
        let token = match self.s3.get_opts(&key, options).await {
            Ok(got) => match pointer(&got.attributes) {
                Some(token) => token,
                None if got.meta.size == 0 && id.as_str() != EMPTY => return Err(self.lost_pointer(id)),
                None => return Ok(Box::pin(got.into_stream().map_err(io::Error::other))),
            },
            Err(object_store::Error::NotFound { .. }) => return Err(Error::NotFound(id.clone())),
            // A ranged GET of a pointer, or of a small blob from past its end (416).
            Err(e) => match self.head(id).await {
                Ok((Some(token), _)) => token,
                Ok((None, 0)) if id.as_str() != EMPTY => return Err(self.lost_pointer(id)),
                Ok((None, size)) if range.as_ref().is_some_and(|r| r.start >= size) => return Ok(empty()),
                _ => return Err(self.err(e)),
            },
        };
        self.remember(id, &token);
        self.get(id, &self.data_key(&token), range).await
    }

    /// An empty object under the id of content that isn't empty: a pointer whose metadata
    /// the S3 server dropped or lost. Serving it would answer a large file with no bytes.
    fn lost_pointer(&self, id: &BlobId) -> Error {
        self.err_msg(format!("blobs/{id} is empty but names no data: its metadata was lost"))
    }

    /// GET of an object, a range of it, or nothing when the range starts at or past its end
    /// (a local store gives no bytes there, and so does this one).
    async fn get(&self, id: &BlobId, key: &object_store::path::Path, range: Option<Range<u64>>) -> Result<ByteStream> {
        let start = range.as_ref().map_or(0, |r| r.start);
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        match self.s3.get_opts(key, options).await {
            Ok(got) => Ok(Box::pin(got.into_stream().map_err(io::Error::other))),
            Err(object_store::Error::NotFound { .. }) => Err(Error::NotFound(id.clone())),
            Err(e) => match self.s3.head(key).await {
                Ok(meta) if start >= meta.size => Ok(empty()),
                _ => Err(self.err(e)),
            },
        }
    }

    /// The pointer's token (if `blobs/<id>` is one) and the blob's size.
    pub(super) async fn head(&self, id: &BlobId) -> Result<(Option<String>, u64)> {
        self.head_key(&self.blob_key(id)).await?.ok_or_else(|| Error::NotFound(id.clone()))
    }

    /// What a HEAD of `key` tells: the token it names if it is a pointer, and the size of
    /// the blob it stands for; `None` if there is no such object.
    pub(super) async fn head_key(&self, key: &object_store::path::Path) -> Result<Option<(Option<String>, u64)>> {
        let options = GetOptions { head: true, ..Default::default() };
        match self.s3.get_opts(key, options).await {
            Ok(got) => {
                let size = metadata(&got.attributes, SIZE).and_then(|s| s.parse().ok()).unwrap_or(got.meta.size);
                Ok(Some((pointer(&got.attributes), size)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Removes `blobs/<id>`, then the `data/` object it pointed to: a crash in between
    /// leaves unnamed data for the sweep, never a pointer to nothing.
    pub(super) async fn remove(&self, id: &BlobId) -> Result<u64> {
        let (token, size) = match self.head(id).await {
            Ok(found) => found,
            Err(Error::NotFound(_)) => return Ok(0),
            Err(e) => return Err(e),
        };
        gone(self.s3.delete(&self.blob_key(id)).await).map_err(|e| self.err(e))?;
        if let Some(token) = token {
            self.forget(id);
            gone(self.s3.delete(&self.data_key(&token)).await).map_err(|e| self.err(e))?;
            gone(self.s3.delete(&self.name_key(id, &token)).await).map_err(|e| self.err(e))?;
        }
        Ok(size)
    }

    /// `blobs/<id>` to `quarantine/<id>`. A pointer moves as a pointer (the sweep counts
    /// quarantined pointers as naming their data); small bytes are copied.
    pub(super) async fn move_aside(&self, id: &BlobId) -> Result<Option<PathBuf>> {
        let aside = self.key(&format!("quarantine/{id}"));
        let (token, size) = self.head(id).await?;
        match token {
            Some(token) => {
                self.put_pointer(&aside, &token, size).await?;
                self.forget(id);
                gone(self.s3.delete(&self.blob_key(id)).await).map_err(|e| self.err(e))?;
            }
            None => {
                self.s3.copy(&self.blob_key(id), &aside).await.map_err(|e| self.err(e))?;
                self.remove(id).await?;
            }
        }
        Ok(Some(PathBuf::from(format!("s3://{}/{aside}", self.options.bucket))))
    }
}

/// The `data/` token a pointer names.
fn pointer(attributes: &Attributes) -> Option<String> {
    metadata(attributes, DATA).filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn metadata(attributes: &Attributes, name: &'static str) -> Option<String> {
    attributes.get(&Attribute::Metadata(name.into())).map(|v| v.as_ref().to_owned())
}

fn empty() -> ByteStream {
    Box::pin(futures_util::stream::empty())
}
