//! Secrets shared by every server on one database. A per-process secret breaks as soon
//! as a load balancer sends a client's next request to another node: a Digest nonce issued
//! by one node would be "forged" on the next. Kept in the database, a secret is made once,
//! by whichever server asks first, and read by all.

use crate::{Error, Repository, Result};

impl Repository {
    /// The 32-byte secret `name`, made at random on first use. Two servers asking at
    /// once both get the one that was stored first.
    pub async fn shared_secret(&self, name: &str) -> Result<[u8; 32]> {
        let mut fresh = [0u8; 32];
        getrandom(&mut fresh)?;
        crate::db::query("INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(fresh.to_vec())
            .execute(&self.write)
            .await?;
        let (value,): (Vec<u8>,) =
            crate::db::query_as("SELECT value FROM secrets WHERE name = ?").bind(name).fetch_one(&self.write).await?;
        value.try_into().map_err(|_| Error::Internal(format!("the stored secret {name} is not 32 bytes")))
    }
}

fn getrandom(out: &mut [u8]) -> Result<()> {
    use rand_core::RngCore;
    rand_core::OsRng.try_fill_bytes(out).map_err(|e| Error::Internal(format!("the OS random source failed: {e}")))
}

#[cfg(test)]
mod tests {
    use crate::Repository;

    #[tokio::test]
    async fn a_secret_is_made_once_and_then_read_back() {
        let (_dir, repo) = Repository::scratch().await;
        let first = repo.shared_secret("digest").await.unwrap();
        assert_eq!(repo.shared_secret("digest").await.unwrap(), first);
        assert_ne!(repo.shared_secret("other").await.unwrap(), first);
    }
}
