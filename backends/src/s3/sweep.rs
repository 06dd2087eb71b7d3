//! Sweeping what crashed or killed servers left in the bucket.
//!
//! Only objects older than the grace period are candidates: a younger one may belong to an
//! upload another server sharing the bucket is still sending or committing. The grace must
//! therefore exceed the longest upload (default: a day).

use std::collections::{HashMap, HashSet};

use object_store::{ObjectMeta, ObjectStoreExt};

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
            if self.is_live(&token) {
                continue;
            }
            // A readiness probe whose deletion failed (see `probe`): nothing to abort.
            if token.starts_with("probe-") {
                gone(self.s3.delete(&marker.location).await).map_err(|e| self.err(e))?;
                continue;
            }
            let upload = match self.s3.get(&marker.location).await {
                Ok(got) => String::from_utf8_lossy(&got.bytes().await.map_err(|e| self.err(e))?).into_owned(),
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.err(e)),
            };
            // An upload that completed (its data is an object) has no parts left, and
            // some servers refuse to abort it with another error than "no such upload".
            let data = self.data_key(&token);
            let completed = || async { self.s3.head(&data).await.is_ok() };
            if !super::upload::aborted(&self.s3, &data, &upload).await && !completed().await {
                continue;
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
            if data.location.filename().is_some_and(|token| !named.contains(token) && !self.is_live(token)) {
                gone(self.s3.delete(&data.location).await).map_err(|e| self.err(e))?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn is_live(&self, token: &str) -> bool {
        self.live.lock().map_or(true, |live| live.contains(token))
    }

    /// Tokens named by a pointer in `blobs/` or `quarantine/`, from listings: each
    /// adopted upload has a `names/<id>.<token>` entry (see `upload.rs`), so only an id
    /// with several entries (two servers adopted the same content at once) needs its
    /// pointer read. Entries past the grace period whose id has no pointer naming them are
    /// removed, and their data with them in the caller's pass.
    async fn named_tokens(&self) -> Result<HashSet<String>> {
        let mut ids: HashSet<String> = HashSet::new();
        for folder in ["blobs", "quarantine"] {
            ids.extend(
                self.objects(folder, false).await?.iter().filter_map(|o| o.location.filename().map(str::to_owned)),
            );
        }
        let cutoff = self.cutoff();
        let mut by_id: HashMap<String, Vec<(String, ObjectMeta)>> = HashMap::new();
        for entry in self.objects("names", false).await? {
            let Some((id, token)) = entry.location.filename().and_then(|f| f.split_once('.')) else { continue };
            by_id.entry(id.to_owned()).or_default().push((token.to_owned(), entry.clone()));
        }
        let mut named = HashSet::new();
        for (id, entries) in by_id {
            let pointed = match (ids.contains(&id), entries.len()) {
                (false, _) => HashSet::new(),
                (true, 1) => entries.iter().map(|(token, _)| token.clone()).collect(),
                (true, _) => self.pointed_tokens(&id).await?,
            };
            for (token, entry) in entries {
                if pointed.contains(&token) || entry.last_modified.timestamp() > cutoff {
                    named.insert(token);
                } else {
                    gone(self.s3.delete(&entry.location).await).map_err(|e| self.err(e))?;
                }
            }
        }
        Ok(named)
    }

    /// The tokens the pointers `blobs/<id>` and `quarantine/<id>` name.
    async fn pointed_tokens(&self, id: &str) -> Result<HashSet<String>> {
        let mut tokens = HashSet::new();
        for folder in ["blobs", "quarantine"] {
            if let Some((Some(token), _)) = self.head_key(&self.key(&format!("{folder}/{id}"))).await? {
                tokens.insert(token);
            }
        }
        Ok(tokens)
    }
}
