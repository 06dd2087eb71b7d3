//! HTTP authentication (RFC 7617 Basic, and RFC 7616 Digest when enabled): parsing the
//! `Authorization` header and answering challenges. Whether credentials are good, and
//! whether a user or address is locked out, is decided by the model's `Authenticator`,
//! which every protocol shares.

use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Response, StatusCode};
use base64::Engine;
use dav_model::identity::{LoginOutcome, Principal};

use super::digest::Checked;
use super::{empty, State};

/// The principal a request runs as, or the response to send instead (401 or 429).
pub async fn authenticate(state: &State, req: &Parts) -> Result<Principal, Response<Body>> {
    let source = crate::proxy::client_addr(&req.extensions);
    let Some(value) = req.headers.get(header::AUTHORIZATION) else {
        return if state.anonymous { Ok(state.auth.anonymous()) } else { Err(challenge(state, false)) };
    };
    let value = value.to_str().map_err(|_| challenge(state, false))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let outcome = if scheme.eq_ignore_ascii_case("basic") {
        let Some((user, password)) = basic_credentials(rest.trim()) else {
            return Err(challenge(state, false));
        };
        state.auth.login(&user, &password, source).await
    } else if scheme.eq_ignore_ascii_case("digest") && state.digest {
        let uri = req.uri.path_and_query().map_or("/", |p| p.as_str());
        match super::digest::verify(state, req.method.as_str(), uri, rest, source).await {
            Checked::Outcome(outcome) => outcome,
            Checked::Stale => return Err(challenge(state, true)),
            Checked::Malformed => return Err(challenge(state, false)),
        }
    } else {
        return Err(challenge(state, false));
    };
    match outcome {
        LoginOutcome::Ok(p) => Ok(p),
        LoginOutcome::Rejected { delay } => {
            // The model decides the back-off; waiting here slows a guessing client down
            // without holding anything but this connection.
            tokio::time::sleep(delay).await;
            Err(challenge(state, false))
        }
        LoginOutcome::LockedOut { retry_after } => Err(locked_out(retry_after)),
    }
}

/// `user:password` from a Basic credential. RFC 7617 lets the user id hold no colon,
/// so the first colon separates.
fn basic_credentials(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    // Windows sends `DOMAIN\user` when the user typed it so; Wharf names hold no
    // backslash, so the part after the last one is the user.
    let user = user.rsplit('\\').next().unwrap_or(user);
    Some((user.to_owned(), password.to_owned()))
}

/// 401 with a challenge per enabled scheme. `stale` marks an expired Digest nonce.
pub fn challenge(state: &State, stale: bool) -> Response<Body> {
    let mut r = empty(StatusCode::UNAUTHORIZED);
    let h = r.headers_mut();
    if state.digest {
        for algorithm in ["SHA-256", "MD5"] {
            if let Ok(v) = HeaderValue::from_str(&super::digest::challenge(algorithm, stale)) {
                h.append(header::WWW_AUTHENTICATE, v);
            }
        }
    }
    h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"wharf\", charset=\"UTF-8\""));
    r
}

fn locked_out(retry_after: Duration) -> Response<Body> {
    let mut r = empty(StatusCode::TOO_MANY_REQUESTS);
    let secs = retry_after.as_secs().max(1);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        assert_eq!(basic_credentials(&b64), Some(("alice".into(), "pa:ss".into())));
    }

    #[test]
    fn a_windows_domain_prefix_is_dropped_from_the_user_name() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("WORKGROUP\\alice:pw");
        assert_eq!(basic_credentials(&b64), Some(("alice".into(), "pw".into())));
    }

    #[test]
    fn garbage_basic_credentials_are_refused() {
        assert_eq!(basic_credentials("!!!"), None);
        let b64 = base64::engine::general_purpose::STANDARD.encode("no-colon");
        assert_eq!(basic_credentials(&b64), None);
    }
}
