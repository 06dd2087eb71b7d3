//! Shares as rows, with their grants and the collection (or mount) each one serves. A
//! share and its collection change in one transaction, so a crash never leaves a share
//! without its tree.

use super::principal::{share_path, Rights};
use super::users::{ensure_collection, insert_mount, remove_collection, unique_or, user_id, validate_name};
use crate::db::Handle;
use crate::mount::{MountInfo, HOST};
use crate::{Error, Repository, Result};

/// A share and who may use it with which rights, ordered by user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInfo {
    pub name: String,
    pub grants: Vec<(String, Rights)>,
    /// The folder it serves, for a share of a host folder.
    pub mount: Option<MountInfo>,
}

impl Repository {
    /// Creates a share and its collection `/shares/<name>`.
    pub async fn add_share(&self, name: &str) -> Result<()> {
        validate_name("share", name)?;
        let mut tx = self.write.begin().await?;
        insert_share(&mut tx, name).await?;
        self.commit(tx).await?;
        tracing::debug!(share = name, "share created");
        Ok(())
    }

    /// Creates a share that serves the host folder `dir` in place (`read_only`: for
    /// everyone, whatever their grant says; `quota_bytes`: a cap on what its files hold).
    pub async fn add_host_share(
        &self,
        name: &str,
        dir: &std::path::Path,
        read_only: bool,
        quota_bytes: Option<u64>,
    ) -> Result<()> {
        validate_name("share", name)?;
        let source = self.host_folder(dir, &share_path(name)?).await?;
        self.add_mounted_share(name, HOST, &source, read_only, quota_bytes).await
    }

    /// Creates a share that serves the archive file `file` (zip, tar, tar.gz, tar.zst on
    /// the host) as a read-only folder of its members.
    pub async fn add_archive_share(&self, name: &str, file: &std::path::Path) -> Result<()> {
        validate_name("share", name)?;
        let source = self.archive_file(file).await?;
        self.add_mounted_share(name, crate::archive::ARCHIVE, &source, true, None).await
    }

    /// The share `name` and its mount of `kind` serving `source`, in one transaction.
    async fn add_mounted_share(
        &self,
        name: &str,
        kind: &str,
        source: &str,
        read_only: bool,
        quota_bytes: Option<u64>,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let stored = insert_share(&mut tx, name).await?;
        insert_mount(&mut tx, &stored, kind, source, read_only, quota_bytes).await?;
        self.commit(tx).await?;
        self.reload_mounts().await?;
        tracing::debug!(share = name, kind, %source, "mounted share created");
        Ok(())
    }

    /// Deletes a share, its grants, and its collection with everything in it. A share of
    /// a host folder only stops serving it: the folder is left as it is.
    pub async fn delete_share(&self, name: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let id = share_id(&mut tx, name).await?.ok_or(Error::NotFound)?;
        crate::db::query("DELETE FROM grants WHERE share_id = ?").bind(id).execute(&mut tx).await?;
        crate::db::query("DELETE FROM shares WHERE id = ?").bind(id).execute(&mut tx).await?;
        remove_collection(&mut tx, &share_path(name)?).await?;
        self.commit(tx).await?;
        self.reload_mounts().await?;
        tracing::debug!(share = name, "share deleted");
        self.collect_garbage().await?;
        Ok(())
    }

    /// Gives `user` `rights` on `share`, replacing what they had. Empty rights are refused:
    /// that is what [`Repository::revoke`] is for.
    pub async fn grant(&self, share: &str, user: &str, rights: Rights) -> Result<()> {
        if rights == Rights::default() {
            return Err(Error::BadRequest("no rights given (to take a share away, revoke it)".into()));
        }
        let mut tx = self.write.begin().await?;
        let share_id = share_id(&mut tx, share).await?.ok_or(Error::NotFound)?;
        let user_id = user_id(&mut tx, user).await?.ok_or(Error::NotFound)?;
        crate::db::query(
            "INSERT INTO grants (share_id, user_id, rights) VALUES (?, ?, ?) \
             ON CONFLICT (share_id, user_id) DO UPDATE SET rights = excluded.rights",
        )
        .bind(share_id)
        .bind(user_id)
        .bind(rights.to_string())
        .execute(&mut tx)
        .await?;
        self.commit(tx).await?;
        tracing::debug!(share, user, %rights, "share granted");
        Ok(())
    }

    /// Takes `share` away from `user`; `NotFound` when they did not have it.
    pub async fn revoke(&self, share: &str, user: &str) -> Result<()> {
        let done = crate::db::query(
            "DELETE FROM grants WHERE share_id = (SELECT id FROM shares WHERE name = ?) \
             AND user_id = (SELECT id FROM users WHERE name = ?)",
        )
        .bind(share)
        .bind(user)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        tracing::debug!(share, user, "share revoked");
        Ok(())
    }

    /// Every share with its grants, by name.
    pub async fn list_shares(&self) -> Result<Vec<ShareInfo>> {
        let rows: Vec<(String, Option<String>, Option<String>)> = crate::db::query_as(
            "SELECT s.name, u.name, g.rights FROM shares s \
             LEFT JOIN grants g ON g.share_id = s.id LEFT JOIN users u ON u.id = g.user_id \
             ORDER BY s.name, u.name",
        )
        .fetch_all(&self.read)
        .await?;
        let mounts = self.list_mounts().await?;
        let mut out: Vec<ShareInfo> = Vec::new();
        for (share, user, rights) in rows {
            if out.last().is_none_or(|s| s.name != share) {
                let stored = share_path(&share)?;
                let mount = mounts.iter().find(|m| m.stored == stored).cloned();
                out.push(ShareInfo { name: share, grants: Vec::new(), mount });
            }
            if let (Some(user), Some(rights), Some(info)) = (user, rights, out.last_mut()) {
                info.grants.push((user, stored_rights(&rights)?));
            }
        }
        Ok(out)
    }
}

/// Rights as stored; only [`Repository::grant`] writes them, so a bad value means the
/// database was edited by hand.
pub(super) fn stored_rights(letters: &str) -> Result<Rights> {
    Rights::parse(letters).map_err(|_| Error::Internal(format!("stored rights {letters:?} are invalid")))
}

/// The share's row and its collection; returns the collection's stored path.
async fn insert_share(conn: &mut dyn Handle, name: &str) -> Result<crate::path::DavPath> {
    if share_id(&mut *conn, name).await?.is_some() {
        return Err(Error::AlreadyExists);
    }
    crate::db::query("INSERT INTO shares (name) VALUES (?)").bind(name).execute(&mut *conn).await.map_err(unique_or)?;
    let stored = share_path(name)?;
    ensure_collection(conn, &stored).await?;
    Ok(stored)
}

async fn share_id(conn: &mut dyn Handle, name: &str) -> Result<Option<i64>> {
    let row: Option<(i64,)> =
        crate::db::query_as("SELECT id FROM shares WHERE name = ?").bind(name).fetch_optional(conn).await?;
    Ok(row.map(|(id,)| id))
}
