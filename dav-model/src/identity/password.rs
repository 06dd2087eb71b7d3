//! Password hashing and the HTTP Digest secrets.
//!
//! Passwords are stored as argon2id PHC strings: memory-hard, salted, with the parameters
//! inside the string so they can be raised later without invalidating old hashes. Verifying
//! one takes tens of milliseconds on purpose, so it always runs on the blocking pool.
//!
//! RFC 7616 Digest cannot work from such a hash: the server needs HA1 = H(user:realm:password)
//! itself, which is as good as the password for Digest. It is therefore kept only for users
//! whose password was set with Digest enabled.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::{OsRng, RngCore};
use sha2::Digest as _;

use crate::{Error, Result};

/// The realm of every Digest HA1 and of the HTTP challenges. Changing it invalidates every
/// stored HA1, hence one constant.
pub const REALM: &str = "wharf";

/// Hashes a password with argon2id (default parameters) and a fresh random salt.
/// Slow by design: call it from the blocking pool or a command-line tool.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    OsRng.try_fill_bytes(&mut salt).map_err(|e| Error::Internal(format!("no randomness for a salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(format!("salt: {e}")))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Internal(format!("hashing the password: {e}")))?;
    Ok(hash.to_string())
}

/// [`hash_password`] on the blocking pool, so an async caller does not stall its thread.
pub async fn hash_password_async(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::Internal(format!("hashing task: {e}")))?
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches (and
/// is logged, since it means the database was edited by hand or damaged).
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "stored password hash is malformed");
            false
        }
    }
}

/// [`verify_password`] on the blocking pool: the hash is deliberately slow.
pub async fn verify_password_async(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&hash, &password)).await.unwrap_or(false)
}

/// A valid hash of a random password, verified against when the user does not exist, so
/// that "no such user" takes as long as "wrong password" and names can't be probed by timing.
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let password = random_password(20).unwrap_or_else(|_| "decoy".to_owned());
        // Hashing only fails without OS randomness; an empty decoy then still rejects
        // (and logs), it merely answers faster.
        hash_password(&password).unwrap_or_default()
    })
}

/// Lowercase hex of MD5 (`sha256 == false`) or SHA-256 of `data`: the `H` of RFC 7616
/// for the two algorithms it defines, for HA1, HA2 and the response alike.
pub fn digest_hex(sha256: bool, data: &str) -> String {
    if sha256 {
        hex(&sha2::Sha256::digest(data.as_bytes()))
    } else {
        hex(&md5::Md5::digest(data.as_bytes()))
    }
}

/// RFC 7616 HA1 = H(username ":" realm ":" password) in [`REALM`].
pub fn digest_ha1(user: &str, password: &str, sha256: bool) -> String {
    digest_hex(sha256, &format!("{user}:{REALM}:{password}"))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A random password of `len` letters and digits (about 5.95 bits each), for the first
/// administrator.
pub(crate) fn random_password(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        OsRng.try_fill_bytes(&mut buf).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        // Rejection sampling: only bytes below the largest multiple of the alphabet size,
        // so every character is equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        for b in buf.iter().map(|&b| b as usize).filter(|&b| b < limit) {
            if out.len() < len {
                out.push(ALPHABET[b % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// 32 random bytes, for per-process keys.
pub(crate) fn random_key() -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    OsRng.try_fill_bytes(&mut key).map_err(|e| Error::Internal(format!("no randomness for a key: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password(&h, ""));
    }

    #[test]
    fn hashes_are_salted() {
        let (a, b) = (hash_password("same").unwrap(), hash_password("same").unwrap());
        assert_ne!(a, b);
        assert!(verify_password(&a, "same") && verify_password(&b, "same"));
    }

    #[test]
    fn a_malformed_hash_matches_nothing() {
        assert!(!verify_password("not a hash", "not a hash"));
        assert!(!verify_password("", ""));
    }

    #[tokio::test]
    async fn async_verification_runs_on_the_blocking_pool() {
        let h = hash_password_async("pw".into()).await.unwrap();
        assert!(verify_password_async(h.clone(), "pw".into()).await);
        assert!(!verify_password_async(h, "px".into()).await);
        assert!(decoy_hash().starts_with("$argon2id$"));
    }

    #[test]
    fn digest_matches_the_rfc_examples() {
        // RFC 2617 section 3.5: Mufasa / testrealm@host.com / Circle Of Life.
        let md5 = digest_hex(false, "Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(md5, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(digest_hex(true, "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(digest_ha1("u", "p", false), digest_hex(false, "u:wharf:p"));
        assert_eq!(digest_ha1("u", "p", true).len(), 64);
    }

    #[test]
    fn random_passwords_are_long_and_distinct() {
        let (a, b) = (random_password(20).unwrap(), random_password(20).unwrap());
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
