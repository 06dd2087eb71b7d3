//! Logging in, for every protocol: the brute-force guard, password verification, and a
//! cache that keeps argon2 off the steady state.
//!
//! WebDAV clients send credentials with every request. Verifying an argon2id hash takes
//! tens of milliseconds on purpose, so doing it per request would cap a client at a few
//! dozen requests per second per core. A successful login is therefore remembered for a
//! minute under a keyed BLAKE3 hash of `user\0password`: the next request costs one hash
//! and a map lookup. The key is random per process and the password itself is never kept,
//! so the cache is no use to someone who can read this process's memory without the key,
//! and no use at all after a restart.
//!
//! Users are administered by another process (`wharf user ...`) while the server runs, so
//! [`Authenticator::start_watch`] polls a fingerprint of users, shares and grants and drops
//! every cached login when it changes.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::guard::{Guard, GuardConfig};
use super::password::{decoy_hash, random_key, verify_password};
use super::principal::Principal;
use crate::stats::{LoginCounters, LoginStats};
use crate::{Repository, Result};

/// How long a verified login is trusted without checking the password again.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Cached logins kept at most; the cache is emptied when it fills with live entries.
const CACHE_CAPACITY: usize = 1_024;
/// How often [`Authenticator::start_watch`] looks for changes made by other processes.
pub const WATCH_PERIOD: Duration = Duration::from_secs(2);

/// The answer to a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Ok(Principal),
    /// Wrong user or password. Wait `delay` before answering: the guard's back-off.
    Rejected {
        delay: Duration,
    },
    /// Too many failures for this user or address; nothing was checked.
    LockedOut {
        retry_after: Duration,
    },
}

struct Entry<T> {
    value: T,
    inserted: Instant,
}

/// What Digest needs of a user, loaded once per cache period.
#[derive(Clone)]
struct DigestUser {
    md5: Option<String>,
    sha256: Option<String>,
    principal: Principal,
}

#[derive(Default)]
struct Cache {
    /// Bumped by every invalidation; a login that started before one does not insert.
    generation: u64,
    logins: HashMap<[u8; 32], Entry<Principal>>,
    digest: HashMap<String, Entry<DigestUser>>,
}

/// Authenticates users against the repository. Share one per server (in an `Arc`).
pub struct Authenticator {
    repo: Arc<Repository>,
    guard: Guard,
    /// Per-process key of the login cache's hashes.
    key: [u8; 32],
    cache: Mutex<Cache>,
    /// Fingerprint of users and grants at the last watch tick.
    seen: Mutex<Option<blake3::Hash>>,
    /// Bounds concurrent argon2 verifications to the cores, so a flood of bad logins
    /// queues instead of occupying the whole blocking pool.
    hashing: Semaphore,
    verifications: AtomicU64,
    counts: LoginCounters,
}

impl Authenticator {
    pub fn new(repo: Arc<Repository>, guard: GuardConfig) -> Authenticator {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Authenticator {
            repo,
            guard: Guard::new(guard),
            key: process_key(),
            cache: Mutex::default(),
            seen: Mutex::default(),
            hashing: Semaphore::new(cores),
            verifications: AtomicU64::new(0),
            counts: LoginCounters::default(),
        }
    }

    /// The principal of requests without credentials.
    pub fn anonymous(&self) -> Principal {
        Principal::anonymous()
    }

    /// Checks `user`'s `password`, as sent from `source`. Lockouts are decided before any
    /// verification, so a locked-out guesser learns nothing and costs no hashing.
    pub async fn login(&self, user: &str, password: &str, source: IpAddr) -> LoginOutcome {
        if let Err(retry_after) = self.guard.check(user, source) {
            tracing::warn!(user = ?user, %source, ?retry_after, "login refused: locked out");
            LoginCounters::bump(&self.counts.locked_out);
            return LoginOutcome::LockedOut { retry_after };
        }
        let key = self.cache_key(user, password);
        if let Some(principal) = self.cached_login(&key) {
            self.succeeded(user, source).await;
            LoginCounters::bump(&self.counts.ok);
            return LoginOutcome::Ok(principal);
        }
        let generation = self.lock_cache().generation;
        match self.verify(user, password).await {
            Ok(true) => {}
            Ok(false) => return self.failed(user, source).await,
            Err(e) => return self.unavailable(user, source, e),
        }
        let principal = match self.repo.principal_for(user).await {
            Ok(p) => p,
            Err(e) => return self.unavailable(user, source, e),
        };
        self.insert(generation, |c| &mut c.logins, key, principal.clone());
        self.succeeded(user, source).await;
        LoginCounters::bump(&self.counts.ok);
        tracing::info!(user = ?user, %source, "login");
        LoginOutcome::Ok(principal)
    }

    /// The stored RFC 7616 HA1 of `user` (SHA-256 or MD5), for the HTTP layer to compute
    /// the expected Digest response. `None` when the user does not exist or has no Digest
    /// secret; then, as after a mismatch, call [`Authenticator::record_digest`] with
    /// `ok = false`, so failures are counted whatever their cause.
    pub async fn digest_ha1(&self, user: &str, sha256: bool) -> Option<String> {
        let entry = self.digest_user(user).await?;
        if sha256 {
            entry.sha256
        } else {
            entry.md5
        }
    }

    /// The outcome of a Digest check the HTTP layer made with [`Authenticator::digest_ha1`]:
    /// applies the lockout (even to a correct response) and the back-off, and gives the
    /// principal.
    pub async fn record_digest(&self, user: &str, source: IpAddr, ok: bool) -> LoginOutcome {
        if let Err(retry_after) = self.guard.check(user, source) {
            tracing::warn!(user = ?user, %source, ?retry_after, "digest login refused: locked out");
            LoginCounters::bump(&self.counts.locked_out);
            return LoginOutcome::LockedOut { retry_after };
        }
        if !ok {
            return self.failed(user, source).await;
        }
        let principal = match self.digest_user(user).await {
            Some(entry) => entry.principal,
            None => return self.failed(user, source).await,
        };
        self.succeeded(user, source).await;
        LoginCounters::bump(&self.counts.ok);
        LoginOutcome::Ok(principal)
    }

    /// Forgets every cached login (the next request of each user verifies again).
    pub fn invalidate_all(&self) {
        let mut cache = self.lock_cache();
        cache.generation += 1;
        cache.logins.clear();
        cache.digest.clear();
    }

    /// Compares the fingerprint of users, shares and grants with the last one seen and,
    /// if it changed (or on the first call), drops cached logins and the repository's
    /// cached path lookups: another process may have changed passwords, rights, homes or
    /// shares. Returns whether it invalidated.
    pub async fn refresh(&self) -> Result<bool> {
        let now = self.repo.identity_fingerprint().await?;
        let changed = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let changed = *seen != Some(now);
            *seen = Some(now);
            changed
        };
        if changed {
            self.invalidate_all();
            self.repo.lookups.invalidate();
            self.repo.reload_mounts().await?;
            tracing::debug!("users or shares changed: cached logins dropped");
        } else if self.repo.has_unavailable_mounts() {
            self.repo.reload_mounts().await?;
        }
        // Other servers' failed logins and lockouts, after the changes above: a failure
        // here must not keep them from being applied.
        if self.repo.is_shared() {
            match self.repo.login_failures(self.guard.config().lockout).await {
                Ok(failures) => {
                    self.guard.adopt(&failures);
                }
                Err(e) => tracing::warn!(error = %e, "other servers' failed logins could not be read"),
            }
        }
        Ok(changed)
    }

    /// Runs [`Authenticator::refresh`] every [`WATCH_PERIOD`] until the authenticator is
    /// dropped: changes made with `wharf user ...` apply within that period.
    pub fn start_watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(auth) = weak.upgrade() else { break };
                if let Err(e) = auth.refresh().await {
                    tracing::warn!(error = %e, "checking for user changes failed");
                }
            }
        })
    }

    /// Password hashes verified so far (cache misses): for metrics and tests.
    pub fn password_verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Login outcomes and lockouts since start, for monitoring.
    pub fn login_stats(&self) -> LoginStats {
        self.counts.snapshot(self.guard.lockouts())
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(user.as_bytes());
        h.update(b"\0");
        h.update(password.as_bytes());
        *h.finalize().as_bytes()
    }

    fn lock_cache(&self) -> MutexGuard<'_, Cache> {
        // Entries are plain values: whatever panicked mid-update left a usable map.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached_login(&self, key: &[u8; 32]) -> Option<Principal> {
        let cache = self.lock_cache();
        cache.logins.get(key).filter(|e| e.inserted.elapsed() < CACHE_TTL).map(|e| e.value.clone())
    }

    /// Adds an entry unless an invalidation happened since `generation` was read (the
    /// value might predate it). A full map first loses expired entries, then everything.
    fn insert<K: Eq + Hash, T>(
        &self,
        generation: u64,
        map: impl FnOnce(&mut Cache) -> &mut HashMap<K, Entry<T>>,
        key: K,
        value: T,
    ) {
        let mut cache = self.lock_cache();
        if cache.generation != generation {
            return;
        }
        let map = map(&mut cache);
        if map.len() >= CACHE_CAPACITY {
            map.retain(|_, e| e.inserted.elapsed() < CACHE_TTL);
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, Entry { value, inserted: Instant::now() });
    }

    /// Verifies against the stored hash, or against a decoy for an unknown user so both
    /// cases take as long.
    async fn verify(&self, user: &str, password: &str) -> Result<bool> {
        let stored = self.repo.credentials(user).await?.map(|c| c.password_hash);
        let known = stored.is_some();
        let password = password.to_owned();
        let _permit = self.hashing.acquire().await.map_err(|e| crate::Error::Internal(e.to_string()))?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        // The decoy is made (one slow hash) on first use, hence inside the blocking task.
        let ok = tokio::task::spawn_blocking(move || {
            let hash = match &stored {
                Some(h) => h.as_str(),
                None => decoy_hash(),
            };
            verify_password(hash, &password)
        })
        .await
        .unwrap_or(false);
        Ok(ok && known)
    }

    /// Counts the failure here and, on a database other servers share, there too: the
    /// database then holds every server's count.
    async fn failed(&self, user: &str, source: IpAddr) -> LoginOutcome {
        let mut delay = self.guard.failure(user, source);
        if self.repo.is_shared() {
            let keys = self.guard.shared_keys(user, source);
            match self.repo.record_login_failure(&keys, self.guard.config().lockout).await {
                Ok(records) => delay = delay.max(self.guard.adopt(&records)),
                Err(e) => tracing::error!(error = %e, "a failed login could not be recorded in the database"),
            }
        }
        LoginCounters::bump(&self.counts.failed);
        tracing::warn!(user = ?user, %source, "login failed");
        LoginOutcome::Rejected { delay }
    }

    /// Clears the counts of `user` and `source`; on a shared database there too, when
    /// there are any.
    async fn succeeded(&self, user: &str, source: IpAddr) {
        if !self.guard.knows(user, source) {
            return;
        }
        self.guard.success(user, source);
        if !self.repo.is_shared() {
            return;
        }
        let keys: Vec<String> = self.guard.shared_keys(user, source).into_iter().map(|(k, _)| k).collect();
        if let Err(e) = self.repo.clear_login_failures(&keys).await {
            tracing::error!(error = %e, "failed logins could not be cleared in the database");
        }
    }

    /// The database failed: not the client's fault, so nothing is counted against them.
    fn unavailable(&self, user: &str, source: IpAddr, e: crate::Error) -> LoginOutcome {
        tracing::error!(user = ?user, %source, error = %e, "login could not be checked");
        LoginCounters::bump(&self.counts.unavailable);
        LoginOutcome::Rejected { delay: Duration::ZERO }
    }

    async fn digest_user(&self, user: &str) -> Option<DigestUser> {
        let generation = {
            let cache = self.lock_cache();
            if let Some(e) = cache.digest.get(user).filter(|e| e.inserted.elapsed() < CACHE_TTL) {
                return Some(e.value.clone());
            }
            cache.generation
        };
        let loaded = async {
            let Some(c) = self.repo.credentials(user).await? else { return Ok(None) };
            let principal = self.repo.principal_for(user).await?;
            Ok::<_, crate::Error>(Some(DigestUser { md5: c.digest_md5, sha256: c.digest_sha256, principal }))
        };
        let entry = match loaded.await {
            Ok(entry) => entry?,
            Err(e) => {
                tracing::error!(user = ?user, error = %e, "digest secrets could not be read");
                return None;
            }
        };
        self.insert(generation, |c| &mut c.digest, user.to_owned(), entry.clone());
        tracing::info!(user = ?user, "digest user loaded");
        Some(entry)
    }

    #[cfg(test)]
    fn cached_keys(&self) -> Vec<[u8; 32]> {
        self.lock_cache().logins.keys().copied().collect()
    }
}

/// A random key; should the OS have no randomness, one derived from the clock and
/// std's randomly seeded hasher (weaker, still unknown outside this process).
fn process_key() -> [u8; 32] {
    random_key().unwrap_or_else(|e| {
        use std::hash::{BuildHasher, Hasher};
        tracing::warn!(error = %e, "no OS randomness for the login cache key");
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.write_u32(std::process::id());
        *blake3::hash(&h.finish().to_le_bytes()).as_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{password, UserOptions};
    use crate::{Config, DavPath};

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    async fn fixture(max_failures: u32) -> (Arc<Authenticator>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Arc::new(wharf_backends::MemoryStore::new());
        let repo = Arc::new(Repository::with_store(&url, store, Config::default()).await.unwrap());
        repo.add_user("alice", "secret", UserOptions { digest: true, ..Default::default() }).await.unwrap();
        let guard = GuardConfig { max_failures, max_address_failures: max_failures, lockout: Duration::from_secs(60) };
        (Arc::new(Authenticator::new(repo, guard)), dir)
    }

    fn principal(outcome: LoginOutcome) -> Principal {
        match outcome {
            LoginOutcome::Ok(p) => p,
            other => panic!("expected a principal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn repeated_logins_are_served_from_the_cache() {
        let (auth, _dir) = fixture(5).await;
        let started = Instant::now();
        for _ in 0..50 {
            let p = principal(auth.login("alice", "secret", HOME).await);
            assert_eq!(p.user.as_deref(), Some("alice"));
        }
        assert_eq!(auth.password_verifications(), 1, "only the first login verifies");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let home = p_to_stored(&auth.login("alice", "secret", HOME).await);
        assert_eq!(home, DavPath::parse("/home/alice").unwrap());
    }

    fn p_to_stored(outcome: &LoginOutcome) -> DavPath {
        principal(outcome.clone()).to_stored(&DavPath::root()).unwrap().0
    }

    #[tokio::test]
    async fn wrong_passwords_and_unknown_users_are_rejected_after_verifying() {
        let (auth, _dir) = fixture(5).await;
        assert_eq!(auth.login("alice", "wrong", HOME).await, LoginOutcome::Rejected { delay: Duration::ZERO });
        let second = auth.login("alice", "wrong", HOME).await;
        assert_eq!(second, LoginOutcome::Rejected { delay: Duration::from_millis(100) });
        assert!(matches!(auth.login("mallory", "secret", HOME).await, LoginOutcome::Rejected { .. }));
        assert_eq!(auth.password_verifications(), 3, "unknown users cost a (decoy) verification too");
        principal(auth.login("alice", "secret", HOME).await);
    }

    #[tokio::test]
    async fn failures_lock_out_without_verifying() {
        let (auth, _dir) = fixture(3).await;
        for _ in 0..3 {
            assert!(matches!(auth.login("alice", "guess", HOME).await, LoginOutcome::Rejected { .. }));
        }
        let verified = auth.password_verifications();
        let locked = auth.login("alice", "secret", HOME).await;
        assert!(matches!(locked, LoginOutcome::LockedOut { retry_after } if retry_after > Duration::from_secs(50)));
        assert_eq!(auth.password_verifications(), verified);
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(matches!(auth.login("alice", "secret", other).await, LoginOutcome::LockedOut { .. }), "per user");
    }

    #[tokio::test]
    async fn login_stats_count_outcomes_and_lockouts_begun() {
        let (auth, _dir) = fixture(2).await;
        principal(auth.login("alice", "secret", HOME).await);
        principal(auth.login("alice", "secret", HOME).await);
        for _ in 0..2 {
            auth.login("alice", "guess", HOME).await;
        }
        auth.login("alice", "secret", HOME).await;
        let s = auth.login_stats();
        assert_eq!((s.ok, s.failed, s.locked_out, s.unavailable), (2, 2, 1, 0));
        // The second failure locked out both the name and the address (both thresholds are 2).
        assert_eq!((s.user_lockouts, s.address_lockouts), (1, 1));
    }

    #[tokio::test]
    async fn a_password_change_applies_after_invalidation() {
        let (auth, _dir) = fixture(10).await;
        assert!(auth.refresh().await.unwrap(), "the first look records a baseline");
        assert!(!auth.refresh().await.unwrap());
        principal(auth.login("alice", "secret", HOME).await);
        auth.repo.set_password("alice", "better", false).await.unwrap();
        assert!(auth.refresh().await.unwrap(), "a new password version changes the fingerprint");
        assert!(matches!(auth.login("alice", "secret", HOME).await, LoginOutcome::Rejected { .. }));
        principal(auth.login("alice", "better", HOME).await);
        auth.repo.set_password("alice", "best", false).await.unwrap();
        auth.invalidate_all();
        assert!(matches!(auth.login("alice", "better", HOME).await, LoginOutcome::Rejected { .. }));
    }

    #[tokio::test]
    async fn grants_changed_elsewhere_reach_cached_principals_through_the_watch() {
        let (auth, _dir) = fixture(10).await;
        let watch = auth.start_watch();
        principal(auth.login("alice", "secret", HOME).await);
        auth.repo.add_share("team").await.unwrap();
        auth.repo.grant("team", "alice", crate::identity::Rights::READ).await.unwrap();
        let deadline = Instant::now() + WATCH_PERIOD * 3;
        loop {
            let p = principal(auth.login("alice", "secret", HOME).await);
            if p.to_stored(&DavPath::parse("/team/x").unwrap()).unwrap().0 == DavPath::parse("/shares/team/x").unwrap()
            {
                break;
            }
            assert!(Instant::now() < deadline, "the watch did not pick up the grant");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        watch.abort();
    }

    #[tokio::test]
    async fn changes_made_by_another_process_are_noticed() {
        let (auth, dir) = fixture(10).await;
        auth.refresh().await.unwrap();
        principal(auth.login("alice", "secret", HOME).await);
        // Its own connections to the same file, as `wharf user passwd` would have.
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Arc::new(wharf_backends::MemoryStore::new());
        let other = Repository::with_store(&url, store, Config::default()).await.unwrap();
        other.set_password("alice", "changed", false).await.unwrap();
        principal(auth.login("alice", "secret", HOME).await);
        assert!(auth.refresh().await.unwrap());
        assert!(matches!(auth.login("alice", "secret", HOME).await, LoginOutcome::Rejected { .. }));
        principal(auth.login("alice", "changed", HOME).await);
    }

    #[tokio::test]
    async fn cache_keys_reveal_nothing_of_the_password() {
        let (auth, _dir) = fixture(5).await;
        principal(auth.login("alice", "secret", HOME).await);
        let keys = auth.cached_keys();
        assert_eq!(keys.len(), 1);
        assert_ne!(keys[0], *blake3::hash(b"alice\0secret").as_bytes(), "keyed, not a plain hash");
        assert!(!keys[0].windows(6).any(|w| w == b"secret"));
        let other = Authenticator::new(auth.repo.clone(), GuardConfig::default());
        assert_ne!(other.cache_key("alice", "secret"), keys[0], "the key is per process");
    }

    #[tokio::test]
    async fn digest_gives_the_stored_ha1_and_counts_failures() {
        let (auth, _dir) = fixture(2).await;
        let ha1 = auth.digest_ha1("alice", true).await.unwrap();
        assert_eq!(ha1, password::digest_ha1("alice", "secret", true));
        assert_eq!(auth.digest_ha1("alice", false).await.unwrap(), password::digest_ha1("alice", "secret", false));
        assert_eq!(auth.digest_ha1("nobody", true).await, None);
        assert_eq!(principal(auth.record_digest("alice", HOME, true).await).user.as_deref(), Some("alice"));
        auth.repo.add_user("bob", "pw", UserOptions::default()).await.unwrap();
        assert_eq!(auth.digest_ha1("bob", true).await, None, "no HA1 unless set with digest");
        auth.record_digest("alice", HOME, false).await;
        auth.record_digest("alice", HOME, false).await;
        assert!(matches!(auth.record_digest("alice", HOME, true).await, LoginOutcome::LockedOut { .. }));
        assert_eq!(auth.password_verifications(), 0, "digest never runs argon2");
    }
}
