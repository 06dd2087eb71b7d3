//! HTTP Digest (RFC 7616), offered only with `--digest`: it lets Windows authenticate over
//! plain HTTP without sending the password. Nonces are stateless (a timestamp and a keyed
//! BLAKE3 MAC of it), valid for five minutes; a stale one gets a fresh challenge with
//! `stale=true`. Nonce counts are not tracked, so a captured request can be replayed
//! within those minutes — HTTPS with Basic is the stronger choice. The key is the
//! database's (see `Repository::shared_secret`), so that a nonce from one node verifies
//! on every other node behind the same load balancer.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use dav_model::identity::LoginOutcome;

use super::State;

const NONCE_LIFETIME: u64 = 300;

static KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Sets the nonce key, once, before the server answers (later calls change nothing).
pub fn use_key(key: [u8; 32]) {
    let _ = KEY.set(key);
}

/// The key; a process that was never given one (unit tests) makes its own.
fn key() -> &'static [u8; 32] {
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        // Without randomness every nonce would be forgeable; refuse to go on.
        getrandom::fill(&mut k).expect("the OS random source is unavailable");
        k
    })
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn mac(ts: u64) -> String {
    blake3::keyed_hash(key(), ts.to_string().as_bytes()).to_hex()[..32].to_owned()
}

fn nonce() -> String {
    let ts = now();
    format!("{ts:x}-{}", mac(ts))
}

/// Whether a nonce is ours, and whether it is still fresh.
fn nonce_state(nonce: &str) -> (bool, bool) {
    let Some((ts, tag)) = nonce.split_once('-') else { return (false, false) };
    let Ok(ts) = u64::from_str_radix(ts, 16) else { return (false, false) };
    let ours = mac(ts) == tag;
    (ours, ours && now().saturating_sub(ts) <= NONCE_LIFETIME)
}

/// The `WWW-Authenticate` value for one algorithm.
pub fn challenge(algorithm: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "Digest realm=\"{}\", qop=\"auth\", algorithm={algorithm}, nonce=\"{}\"{stale}",
        dav_model::identity::REALM,
        nonce()
    )
}

/// `name=value` and `name="value"` pairs of a Digest credential.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((name, after)) = rest.split_once('=') {
        let name = name.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_owned(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((name, value));
        rest = tail.trim_start().trim_start_matches(',');
    }
    out
}

use dav_model::identity::password::digest_hex as hex_hash;

/// What a Digest credential came to.
pub enum Checked {
    /// Our nonce, but expired: the client should simply retry with a fresh one.
    Stale,
    /// Not a credential we can check (foreign nonce, wrong URI or realm).
    Malformed,
    Outcome(LoginOutcome),
}

/// Checks a Digest credential for `method` on `uri` and reports the outcome to the model.
pub async fn verify(state: &State, method: &str, uri: &str, credential: &str, source: IpAddr) -> Checked {
    let p = params(credential);
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let user = get("username");
    let sha256 = match get("algorithm") {
        "" | "MD5" => false,
        "SHA-256" => true,
        _ => return Checked::Malformed,
    };
    let (ours, fresh) = nonce_state(get("nonce"));
    if !ours || get("qop") != "auth" || get("uri") != uri || get("realm") != dav_model::identity::REALM {
        return Checked::Malformed;
    }
    if !fresh {
        return Checked::Stale;
    }
    let ok = match state.auth.digest_ha1(user, sha256).await {
        Some(ha1) => {
            let ha2 = hex_hash(sha256, &format!("{method}:{uri}"));
            let response = format!("{ha1}:{}:{}:{}:auth:{ha2}", get("nonce"), get("nc"), get("cnonce"));
            hex_hash(sha256, &response) == get("response")
        }
        None => false,
    };
    Checked::Outcome(state.auth.record_digest(user, source, ok).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_bare_parameters_are_read() {
        let p = params(r#"username="alice", realm="wharf", nc=00000001, qop=auth, uri="/a, b""#);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("username").as_deref(), Some("alice"));
        assert_eq!(get("nc").as_deref(), Some("00000001"));
        assert_eq!(get("qop").as_deref(), Some("auth"));
        assert_eq!(get("uri").as_deref(), Some("/a, b"));
    }

    #[test]
    fn our_fresh_nonce_is_accepted_and_a_forged_one_is_not() {
        assert_eq!(nonce_state(&nonce()), (true, true));
        assert!(!nonce_state("1-00000000000000000000000000000000").0);
    }

    #[test]
    fn rfc_7616_md5_example_response() {
        // RFC 7616 3.9.1: Mufasa / "Circle of Life" / http-auth@example.org.
        let ha1 = hex_hash(false, "Mufasa:http-auth@example.org:Circle of Life");
        let ha2 = hex_hash(false, "GET:/dir/index.html");
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let r = hex_hash(false, &format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
    }
}
