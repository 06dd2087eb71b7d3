//! Sweeping what crashed or killed servers left in the bucket.
//!
//! Only objects older than the grace period are candidates: a younger one may belong to an
//! upload another server sharing the bucket is still sending or committing. The grace must
//! therefore exceed the longest upload (default: a day).

use std::collections::HashSet;

use object_store::multipart::MultipartStore;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt};

use super::read::pointer;
use super::{gone, S3Store};
use crate::Result;

impl S3Store {
    /// Aborts the multipart uploads of markers past the grace period, then removes `data/`
    /// objects past it that no pointer names (an upload completed but never adopted, a
    /// deletion cut between pointer and data, two servers adopting the same content at
    /// once). Returns how many leftovers went.
    pub async fn sweep_leftovers(&self) -> Result<u64> {
        let mut n = 0;
        for marker in self.objects("uploads", true).await? {
            let Some(token) = marker.location.filename().map(str::to_owned) else { continue };
            let upload = match self.s3.get(&marker.location).await {
                Ok(got) => String::from_utf8_lossy(&got.bytes().await.map_err(|e| self.err(e))?).into_owned(),
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.err(e)),
            };
            if let Err(e) = self.s3.abort_multipart(&self.data_key(&token), &upload).await {
                tracing::debug!(%token, "aborting a left-over upload: {e}");
            }
            gone(self.s3.delete(&marker.location).await).map_err(|e| self.err(e))?;
            n += 1;
        }
        let stale = self.objects("data", true).await?;
        if stale.is_empty() {
            return Ok(n);
        }
        let named = self.named_tokens().await?;
        for data in stale {
            if data.location.filename().is_some_and(|token| !named.contains(token)) {
                gone(self.s3.delete(&data.location).await).map_err(|e| self.err(e))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Tokens named by a pointer in `blobs/` or `quarantine/`. Pointers are the empty
    /// objects; only those need a HEAD.
    async fn named_tokens(&self) -> Result<HashSet<String>> {
        let mut named = HashSet::new();
        for folder in ["blobs", "quarantine"] {
            for object in self.objects(folder, false).await?.into_iter().filter(|o| o.size == 0) {
                let options = GetOptions { head: true, ..Default::default() };
                match self.s3.get_opts(&object.location, options).await {
                    Ok(got) => named.extend(pointer(&got.attributes)),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.err(e)),
                }
            }
        }
        Ok(named)
    }
}
