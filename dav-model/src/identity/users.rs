//! Users as rows, and the homes that belong to them. Every change that touches both is one
//! transaction, so a crash never leaves a user without a home. Shares are in `shares.rs`,
//! with the same rule for a share and its collection.

use super::password::{digest_ha1, hash_password_async, random_password};
use super::principal::{home_of, Flags, Principal, Rights, PUBLIC};
use super::shares::stored_rights;
use crate::db::Handle;
use crate::mount::HOST;
use crate::path::DavPath;
use crate::resource::{self, ROOT_ID};
use crate::{now_ns, Error, Repository, Result};

/// Name of the administrator created on first start.
pub const FIRST_ADMIN: &str = "admin";

/// Longest user or share name: it becomes a path segment and appears in logs and listings.
const MAX_NAME: usize = 64;

/// How a user is created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserOptions {
    /// Only read rights, in their home and in every share.
    pub read_only: bool,
    /// May administer the server (reserved for the admin interfaces).
    pub admin: bool,
    /// Also store the RFC 7616 Digest HA1 values, so the user can log in with Digest.
    pub digest: bool,
}

/// A user as listed (never with secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub read_only: bool,
    pub admin: bool,
    /// Whether Digest HA1 values are stored, i.e. the user can log in with Digest.
    pub digest: bool,
}

/// What a login needs to know about a user; crate-internal because it holds secrets.
pub(crate) struct Credentials {
    pub password_hash: String,
    pub digest_md5: Option<String>,
    pub digest_sha256: Option<String>,
}

/// Checks a user or share name: 1–64 of `A-Z a-z 0-9 . _ -`, not starting with `.`.
/// Names become path segments and appear in Digest's `user:realm:password`, so they are
/// kept to characters that need no escaping anywhere and can't hide a dot-file.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_NAME || name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(Error::BadRequest(format!(
            "invalid {kind} name {name:?}: use 1 to {MAX_NAME} letters, digits, '.', '_' or '-', not starting with '.'"
        )));
    }
    Ok(())
}

fn validate_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::BadRequest("the password must not be empty".into()));
    }
    Ok(())
}

/// Two racing creators both pass the existence check; the UNIQUE index decides.
pub(super) fn unique_or(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::AlreadyExists,
        _ => Error::Db(e),
    }
}

/// The argon2id hash and, when asked, both Digest HA1 values of a new password.
async fn secrets(name: &str, password: &str, digest: bool) -> Result<(String, Option<String>, Option<String>)> {
    validate_password(password)?;
    let hash = hash_password_async(password.to_owned()).await?;
    let md5 = digest.then(|| digest_ha1(name, password, false));
    let sha256 = digest.then(|| digest_ha1(name, password, true));
    Ok((hash, md5, sha256))
}

impl Repository {
    /// Creates a user and their home collection `/home/<name>`.
    pub async fn add_user(&self, name: &str, password: &str, opts: UserOptions) -> Result<User> {
        validate_name("user", name)?;
        let (hash, md5, sha256) = secrets(name, password, opts.digest).await?;
        let mut tx = self.write.begin().await?;
        if user_id(&mut tx, name).await?.is_some() {
            return Err(Error::AlreadyExists);
        }
        let id = crate::db::query_as::<(i64,)>(
            "INSERT INTO users (name, password_hash, digest_md5, digest_sha256, read_only, admin, created_ns) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(&hash)
        .bind(&md5)
        .bind(&sha256)
        .bind(opts.read_only)
        .bind(opts.admin)
        .bind(now_ns())
        .fetch_one(&mut tx)
        .await
        .map_err(unique_or)?
        .0;
        ensure_collection(&mut tx, &home_of(name)?).await?;
        self.commit(tx).await?;
        tracing::debug!(user = name, "user created");
        Ok(User { id, name: name.to_owned(), read_only: opts.read_only, admin: opts.admin, digest: opts.digest })
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows: Vec<(i64, String, bool, bool, bool)> =
            crate::db::query_as("SELECT id, name, read_only, admin, digest_md5 IS NOT NULL FROM users ORDER BY name")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, read_only, admin, digest)| User { id, name, read_only, admin, digest })
            .collect())
    }

    pub async fn user_count(&self) -> Result<u64> {
        let (n,): (i64,) = crate::db::query_as("SELECT COUNT(*) FROM users").fetch_one(&self.read).await?;
        Ok(n.max(0) as u64)
    }

    /// Replaces a password. Digest HA1 values are recomputed when `digest`, else removed:
    /// old ones would still open the account with the old password.
    pub async fn set_password(&self, name: &str, password: &str, digest: bool) -> Result<()> {
        let (hash, md5, sha256) = secrets(name, password, digest).await?;
        let done = crate::db::query(
            "UPDATE users SET password_hash = ?, digest_md5 = ?, digest_sha256 = ?, \
             password_version = password_version + 1 WHERE name = ?",
        )
        .bind(&hash)
        .bind(&md5)
        .bind(&sha256)
        .bind(name)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        tracing::debug!(user = name, "password changed");
        Ok(())
    }

    /// Changes the flags given; `None` keeps a flag as it is.
    pub async fn set_user_flags(&self, name: &str, read_only: Option<bool>, admin: Option<bool>) -> Result<User> {
        let done = crate::db::query(
            "UPDATE users SET read_only = COALESCE(?, read_only), admin = COALESCE(?, admin) WHERE name = ?",
        )
        .bind(read_only)
        .bind(admin)
        .bind(name)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        let users = self.list_users().await?;
        users.into_iter().find(|u| u.name == name).ok_or(Error::NotFound)
    }

    /// Deletes a user with their grants, their home and everything in it, and the locks
    /// they held anywhere (left behind, those would block others until they expire).
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let id = user_id(&mut tx, name).await?.ok_or(Error::NotFound)?;
        crate::db::query("DELETE FROM grants WHERE user_id = ?").bind(id).execute(&mut tx).await?;
        crate::db::query("DELETE FROM users WHERE id = ?").bind(id).execute(&mut tx).await?;
        crate::db::query("DELETE FROM locks WHERE principal = ?").bind(name).execute(&mut tx).await?;
        remove_collection(&mut tx, &home_of(name)?).await?;
        self.commit(tx).await?;
        self.reload_mounts().await?;
        tracing::debug!(user = name, "user deleted");
        self.collect_garbage().await?;
        Ok(())
    }

    /// The principal `name` logs in as: their home plus every share granted to them.
    pub async fn principal_for(&self, name: &str) -> Result<Principal> {
        let mut conn = self.read.acquire().await?;
        let row: Option<(i64, bool, bool)> =
            crate::db::query_as("SELECT id, read_only, admin FROM users WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut conn)
                .await?;
        let (id, read_only, admin) = row.ok_or(Error::NotFound)?;
        let grants: Vec<(String, String, bool)> = crate::db::query_as(
            "SELECT s.name, g.rights, COALESCE(m.read_only, 0) FROM grants g JOIN shares s ON s.id = g.share_id \
             LEFT JOIN mounts m ON m.stored_path = '/shares/' || s.name WHERE g.user_id = ? ORDER BY s.name",
        )
        .bind(id)
        .fetch_all(&mut conn)
        .await?;
        // A read-only folder caps every grant to read.
        let cap = |r: Rights, ro: bool| if ro { r.read_only() } else { r };
        let shares = grants
            .into_iter()
            .map(|(share, r, ro)| Ok((share, cap(stored_rights(&r)?, ro))))
            .collect::<Result<Vec<_>>>()?;
        Principal::user(name, Flags { read_only, admin }, &shares)
    }

    /// Secrets of a user for a login, or `None` when there is no such user.
    pub(crate) async fn credentials(&self, name: &str) -> Result<Option<Credentials>> {
        let row: Option<(String, Option<String>, Option<String>)> =
            crate::db::query_as("SELECT password_hash, digest_md5, digest_sha256 FROM users WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(password_hash, digest_md5, digest_sha256)| Credentials {
            password_hash,
            digest_md5,
            digest_sha256,
        }))
    }

    /// A hash of everything a cached login depends on: users (names, password versions,
    /// flags), shares and grants. Cheap enough to poll; another process (`wharf user ...`)
    /// changing any of it changes the value.
    pub(crate) async fn identity_fingerprint(&self) -> Result<blake3::Hash> {
        let mut conn = self.read.acquire().await?;
        let users: Vec<(String, i64, bool, bool)> =
            crate::db::query_as("SELECT name, password_version, read_only, admin FROM users ORDER BY id")
                .fetch_all(&mut conn)
                .await?;
        let grants: Vec<(String, Option<i64>, Option<String>)> = crate::db::query_as(
            "SELECT s.name, g.user_id, g.rights FROM shares s LEFT JOIN grants g ON g.share_id = s.id \
             ORDER BY s.id, g.user_id",
        )
        .fetch_all(&mut conn)
        .await?;
        let mounts: Vec<(i64, String, String, bool)> =
            crate::db::query_as("SELECT id, stored_path, source, read_only FROM mounts ORDER BY id")
                .fetch_all(&mut conn)
                .await?;
        let mut h = blake3::Hasher::new();
        for (id, stored, source, read_only) in mounts {
            h.update(format!("m\0{id}\0{stored}\0{source}\0{read_only}\n").as_bytes());
        }
        for (name, version, read_only, admin) in users {
            h.update(format!("u\0{name}\0{version}\0{read_only}\0{admin}\n").as_bytes());
        }
        for (share, user, rights) in grants {
            h.update(format!("s\0{share}\0{user:?}\0{rights:?}\n").as_bytes());
        }
        Ok(h.finalize())
    }

    /// On first start: creates the `/public` area and, when there is no user at all, the
    /// administrator `admin` with `password` or, without one, a random password that is
    /// returned so the caller can show it once. Returns `None` otherwise.
    pub async fn ensure_admin(&self, password: Option<String>) -> Result<Option<String>> {
        self.ensure_admin_with(password, false).await
    }

    /// [`Repository::ensure_admin`], storing Digest HA1 values when `digest` (for a server
    /// started with Digest enabled).
    pub async fn ensure_admin_with(&self, password: Option<String>, digest: bool) -> Result<Option<String>> {
        let mut tx = self.write.begin().await?;
        ensure_collection(&mut tx, &DavPath::root().join(PUBLIC)?).await?;
        self.commit(tx).await?;
        if self.user_count().await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p, false),
            None => (random_password(20)?, true),
        };
        let opts = UserOptions { admin: true, digest, ..UserOptions::default() };
        match self.add_user(FIRST_ADMIN, &password, opts).await {
            Ok(_) => Ok(generated.then_some(password)),
            // Another process created it first: theirs stands.
            Err(Error::AlreadyExists) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Serves the host folder `dir` as `user`'s home, in place of their home in the store
    /// (which is kept, hidden, and comes back if the folder is unset).
    pub async fn set_home_folder(&self, user: &str, dir: Option<&std::path::Path>) -> Result<()> {
        let stored = home_of(user)?;
        let source = match dir {
            Some(d) => Some(self.host_folder(d, &stored).await?),
            None => None,
        };
        let mut tx = self.write.begin().await?;
        user_id(&mut tx, user).await?.ok_or(Error::NotFound)?;
        let current: Option<(String,)> = crate::db::query_as("SELECT source FROM mounts WHERE stored_path = ?")
            .bind(stored.key())
            .fetch_optional(&mut tx)
            .await?;
        if current.map(|(s,)| s) == source {
            // Unchanged (`wharf serve --folder` on every start): its properties stay.
            return Ok(());
        }
        // The properties of another folder's files mean nothing here (they cascade away).
        crate::db::query("DELETE FROM mounts WHERE stored_path = ?").bind(stored.key()).execute(&mut tx).await?;
        if let Some(source) = &source {
            insert_mount(&mut tx, &stored, HOST, source, false, None).await?;
        }
        self.commit(tx).await?;
        self.reload_mounts().await
    }
}

pub(super) async fn insert_mount(
    conn: &mut dyn Handle,
    stored: &DavPath,
    kind: &str,
    source: &str,
    read_only: bool,
    quota_bytes: Option<u64>,
) -> Result<()> {
    let quota = quota_bytes.map(|q| q.min(i64::MAX as u64) as i64);
    crate::db::query("INSERT INTO mounts (stored_path, kind, source, read_only, quota_bytes) VALUES (?, ?, ?, ?, ?)")
        .bind(stored.key())
        .bind(kind)
        .bind(source)
        .bind(read_only)
        .bind(quota)
        .execute(&mut *conn)
        .await
        .map_err(unique_or)?;
    Ok(())
}

pub(super) async fn user_id(conn: &mut dyn Handle, name: &str) -> Result<Option<i64>> {
    let row: Option<(i64,)> =
        crate::db::query_as("SELECT id FROM users WHERE name = ?").bind(name).fetch_optional(conn).await?;
    Ok(row.map(|(id,)| id))
}

/// The id of the collection at `path`, creating it and any missing ancestor. A file in
/// the way is a conflict: homes and shares are never silently put somewhere else.
pub(crate) async fn ensure_collection(conn: &mut dyn Handle, path: &DavPath) -> Result<i64> {
    let now = now_ns();
    let mut id = ROOT_ID;
    for (depth, name) in path.segments().iter().enumerate() {
        let row: Option<(i64, bool)> =
            crate::db::query_as("SELECT id, is_collection FROM resources WHERE parent_id = ? AND name = ?")
                .bind(id)
                .bind(&**name)
                .fetch_optional(&mut *conn)
                .await?;
        id = match row {
            Some((child, true)) => child,
            Some(_) => {
                let at = path.segments()[..=depth].join("/");
                return Err(Error::Conflict(format!("/{at} exists and is not a collection")));
            }
            None => resource::insert_collection(conn, id, name, now).await?,
        };
    }
    Ok(id)
}

/// Removes the mount serving `path` (a host folder is left as it is) and the subtree at
/// `path` (with its properties and locks), where there are such.
pub(super) async fn remove_collection(conn: &mut dyn Handle, path: &DavPath) -> Result<()> {
    crate::db::query("DELETE FROM mounts WHERE stored_path = ?").bind(path.key()).execute(&mut *conn).await?;
    let Some(target) = resource::lookup(conn, path).await? else {
        return Ok(());
    };
    crate::tree::remove_subtree(conn, &target).await?;
    if let Some(parent) = path.parent() {
        if let Some(p) = resource::lookup(conn, &parent).await? {
            resource::touch(conn, p.id, now_ns()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::condition::Preconditions;
    use crate::identity::ShareInfo;
    use crate::Config;

    async fn repo() -> (Repository, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Arc::new(wharf_backends::MemoryStore::new());
        (Repository::with_store(&url, store, Config::default()).await.unwrap(), dir)
    }

    fn p(s: &str) -> DavPath {
        DavPath::parse(s).unwrap()
    }

    async fn is_collection(r: &Repository, path: &str) -> bool {
        r.resolve(&p(path)).await.unwrap().is_some_and(|r| r.is_collection)
    }

    async fn hash_of(r: &Repository, name: &str) -> String {
        r.credentials(name).await.unwrap().unwrap().password_hash
    }

    #[tokio::test]
    async fn users_are_added_listed_changed_and_deleted() {
        let (r, _d) = repo().await;
        let alice = r.add_user("alice", "pw1", UserOptions { digest: true, ..Default::default() }).await.unwrap();
        r.add_user("bob", "pw2", UserOptions { read_only: true, admin: true, digest: false }).await.unwrap();
        assert!(is_collection(&r, "/home/alice").await && is_collection(&r, "/home/bob").await);
        let users = r.list_users().await.unwrap();
        assert_eq!(users[0], alice);
        assert_eq!((users[1].read_only, users[1].admin, users[1].digest), (true, true, false));
        assert_eq!(r.user_count().await.unwrap(), 2);

        let before = hash_of(&r, "alice").await;
        r.set_password("alice", "pw3", false).await.unwrap();
        assert!(super::super::password::verify_password(&hash_of(&r, "alice").await, "pw3"));
        assert_ne!(before, hash_of(&r, "alice").await);
        assert!(!r.list_users().await.unwrap()[0].digest, "changing without digest drops the HA1");
        assert!(matches!(r.set_password("carol", "x", false).await, Err(Error::NotFound)));

        let bob = r.set_user_flags("bob", Some(false), None).await.unwrap();
        assert_eq!((bob.read_only, bob.admin), (false, true));
        assert!(matches!(r.set_user_flags("carol", None, None).await, Err(Error::NotFound)));

        r.delete_user("bob").await.unwrap();
        assert!(!is_collection(&r, "/home/bob").await);
        assert!(is_collection(&r, "/home").await);
        assert_eq!(r.list_users().await.unwrap().len(), 1);
        assert!(matches!(r.delete_user("bob").await, Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn duplicates_bad_names_and_empty_passwords_are_refused() {
        let (r, _d) = repo().await;
        r.add_user("alice", "pw", UserOptions::default()).await.unwrap();
        assert!(matches!(r.add_user("alice", "pw", UserOptions::default()).await, Err(Error::AlreadyExists)));
        let long = "x".repeat(65);
        for bad in ["", ".hidden", "a/b", "a b", "ä", "..", "a:b", long.as_str()] {
            let res = r.add_user(bad, "pw", UserOptions::default()).await;
            assert!(matches!(res, Err(Error::BadRequest(_))), "{bad:?}: {res:?}");
        }
        r.add_user(&"x".repeat(64), "pw", UserOptions::default()).await.unwrap();
        r.add_user("A.b_c-9", "pw", UserOptions::default()).await.unwrap();
        assert!(matches!(r.add_user("dave", "", UserOptions::default()).await, Err(Error::BadRequest(_))));
        assert!(matches!(r.add_share("bad/name").await, Err(Error::BadRequest(_))));
    }

    #[tokio::test]
    async fn deleting_a_user_removes_their_home_subtree() {
        let (r, _d) = repo().await;
        r.add_user("alice", "pw", UserOptions::default()).await.unwrap();
        r.mkcol(&p("/home/alice/docs"), &Preconditions::default(), None).await.unwrap();
        r.delete_user("alice").await.unwrap();
        assert!(r.resolve(&p("/home/alice/docs")).await.unwrap().is_none());
        r.add_user("alice", "pw", UserOptions::default()).await.unwrap();
        assert!(r.resolve(&p("/home/alice/docs")).await.unwrap().is_none(), "a new alice starts empty");
    }

    #[tokio::test]
    async fn shares_are_granted_revoked_and_reach_the_principal() {
        let (r, _d) = repo().await;
        r.add_user("alice", "pw", UserOptions::default()).await.unwrap();
        r.add_user("ro", "pw", UserOptions { read_only: true, ..Default::default() }).await.unwrap();
        r.add_share("team").await.unwrap();
        assert!(is_collection(&r, "/shares/team").await);
        assert!(matches!(r.add_share("team").await, Err(Error::AlreadyExists)));
        r.grant("team", "alice", Rights::parse("rw").unwrap()).await.unwrap();
        r.grant("team", "alice", Rights::parse("rwl").unwrap()).await.unwrap();
        r.grant("team", "ro", Rights::ALL).await.unwrap();
        assert!(matches!(r.grant("team", "nobody", Rights::READ).await, Err(Error::NotFound)));
        assert!(matches!(r.grant("nothing", "alice", Rights::READ).await, Err(Error::NotFound)));
        assert!(matches!(r.grant("team", "alice", Rights::default()).await, Err(Error::BadRequest(_))));

        let shares = r.list_shares().await.unwrap();
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].grants, vec![("alice".into(), Rights::parse("rwl").unwrap()), ("ro".into(), Rights::ALL)]);
        let alice = r.principal_for("alice").await.unwrap();
        let (stored, rights) = alice.to_stored(&p("/team/a.txt")).unwrap();
        assert_eq!((stored, rights.to_string()), (p("/shares/team/a.txt"), "rwl".to_owned()));
        let ro = r.principal_for("ro").await.unwrap();
        assert_eq!(ro.to_stored(&p("/team/a.txt")).unwrap().1, Rights::READ);
        assert!(matches!(r.principal_for("nobody").await, Err(Error::NotFound)));

        r.revoke("team", "alice").await.unwrap();
        assert!(matches!(r.revoke("team", "alice").await, Err(Error::NotFound)));
        let alice = r.principal_for("alice").await.unwrap();
        assert_eq!(alice.to_stored(&p("/team/a.txt")).unwrap().0, p("/home/alice/team/a.txt"));

        r.add_share("empty").await.unwrap();
        assert_eq!(r.list_shares().await.unwrap()[0], ShareInfo { name: "empty".into(), grants: vec![], mount: None });
        r.mkcol(&p("/shares/team/sub"), &Preconditions::default(), None).await.unwrap();
        r.delete_share("team").await.unwrap();
        assert!(!is_collection(&r, "/shares/team").await);
        assert!(r.principal_for("ro").await.unwrap().to_stored(&p("/team")).unwrap().0 == p("/home/ro/team"));
        assert!(matches!(r.delete_share("team").await, Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn the_first_admin_is_created_once_and_public_exists() {
        let (r, _d) = repo().await;
        let generated = r.ensure_admin(None).await.unwrap().unwrap();
        assert_eq!(generated.len(), 20);
        assert!(is_collection(&r, "/public").await && is_collection(&r, "/home/admin").await);
        assert!(r.list_users().await.unwrap()[0].admin);
        assert!(super::super::password::verify_password(&hash_of(&r, FIRST_ADMIN).await, &generated));
        assert_eq!(r.ensure_admin(None).await.unwrap(), None, "users exist: nothing to do");

        let (r, _d) = repo().await;
        assert_eq!(r.ensure_admin(Some("given".into())).await.unwrap(), None, "a given password is not echoed");
        assert!(super::super::password::verify_password(&hash_of(&r, FIRST_ADMIN).await, "given"));
    }

    #[tokio::test]
    async fn a_file_in_the_way_of_a_home_is_a_conflict() {
        let (r, _d) = repo().await;
        let body: crate::ByteStream =
            Box::pin(futures_util::stream::once(async { Ok(bytes::Bytes::from_static(b"x")) }));
        r.put(&p("/home"), body, crate::PutOptions::default()).await.unwrap();
        assert!(matches!(r.add_user("alice", "pw", UserOptions::default()).await, Err(Error::Conflict(_))));
        assert!(r.list_users().await.unwrap().is_empty(), "nothing half-created");
    }
}
